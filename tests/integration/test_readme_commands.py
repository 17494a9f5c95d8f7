"""Issue 13, acceptance 2: every command in the README's ```sh / ```bash / ```shell / ```console
blocks runs as written, in order, on a fresh clone: a temporary folder holding the repository's
tracked files, whose ``.venv`` is this interpreter (so ``./scripts/setup`` has nothing to
install) and whose ``hotline-data`` is a new deployment. Each command must exit 0 unless the
README marks it otherwise.

Markers are HTML comments (invisible on GitHub) on the lines right above a block, one per line:

    <!-- readme-test: skip (REASON) -->                the whole block is not run
    <!-- readme-test: skip `COMMAND` (REASON) -->      that command of the block is not run
    <!-- readme-test: background `COMMAND` -->         started in the background; the next
                                                       command waits until the server counts one
                                                       more member connection; it must still run
                                                       at the end, when it is stopped
    <!-- readme-test: background `COMMAND` until "TEXT" -->  ... ready once its output shows TEXT
    <!-- readme-test: exit N `COMMAND` -->             expected to exit N, not 0

`COMMAND` is the command as the block writes it, without its trailing comment (spaces and
quotes do not matter); `COMMAND*` names every command of the block that starts so. Commands
run in order and the test stops at the first that does not exit as expected.
A marker not right above a block, or whose PREFIX matches no command of its block, fails the
test, so markers cannot go stale silently. The one rewrite of a command's text: the port. The
deployment serves on a port the OS chose (``HOTLINE_INIT_PORT``, which ``hotline init`` reads
as its ``--port``), so ``localhost:8470`` and ``127.0.0.1:8470`` in a command become that port.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHELLS = ("sh", "bash", "shell", "console")
MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<body>.*?)\s*-->\s*$")
DIRECTIVE = re.compile(r"(?P<verb>skip|background|exit (?P<code>\d+))"
                       r"(?:\s+`(?P<prefix>[^`]+)`)?(?:\s+until\s+\"(?P<until>[^\"]+)\")?"
                       r"(?:\s+\((?P<reason>[^)]+)\))?$")
COMMAND_TIMEOUT = 30.0
READY_TIMEOUT = 20.0


@dataclass(frozen=True)
class Directive:
    verb: str  # skip, background, exit
    prefix: str | None
    code: int = 0
    until: str | None = None
    reason: str | None = None
    line: int = 0


@dataclass
class Block:
    line: int  # of the opening fence
    commands: list[str]
    directives: list[Directive] = field(default_factory=list)


def parse_directive(body: str, line: int) -> Directive:
    match = DIRECTIVE.fullmatch(body)
    if match is None:
        raise AssertionError(f"README.md:{line}: cannot read the marker {body!r}")
    verb = match["verb"].split()[0]
    if verb == "skip" and not match["reason"]:
        raise AssertionError(f"README.md:{line}: a skip marker says why, in parentheses")
    if verb != "skip" and not match["prefix"]:
        raise AssertionError(f"README.md:{line}: a {verb} marker names its command: `PREFIX`")
    return Directive(verb, match["prefix"], int(match["code"] or 0), match["until"],
                     match["reason"], line)


def commands_of(lines: list[str], console: bool) -> list[str]:
    """The block's commands: continuation lines joined, comments and (in console blocks)
    output lines left out."""
    commands: list[str] = []
    pending = ""
    for raw in lines:
        text = raw.rstrip()
        if not pending:
            if console:
                if not text.startswith("$ "):
                    continue
                text = text[2:]
            if not text.strip() or text.lstrip().startswith("#"):
                continue
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        commands.append(pending + text)
        pending = ""
    if pending:
        commands.append(pending)
    return commands


def blocks(text: str) -> list[Block]:
    """The README's shell blocks in order, each with the markers right above it."""
    found: list[Block] = []
    pending: list[Directive] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        if marker:
            pending.append(parse_directive(marker["body"], i + 1))
            i += 1
            continue
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if fence[1] in SHELLS:
                found.append(Block(i + 1, commands_of(lines[i + 1:end], fence[1] == "console"),
                                   pending))
            elif pending:
                raise AssertionError(f"README.md:{pending[0].line}: a marker above a ```{fence[1]} "
                                     "block, which is not run")
            pending = []
            i = end + 1
            continue
        if pending:
            raise AssertionError(f"README.md:{pending[0].line}: a marker not right above a block")
        i += 1
    return found


def bare(command: str) -> str:
    """A command without its trailing comment, its spaces collapsed: what a marker names."""
    words = shlex.shlex(command, posix=True, punctuation_chars=False)
    words.whitespace_split, words.commenters = True, "#"
    try:
        return " ".join(words)
    except ValueError:  # unbalanced quotes: leave it for the shell to refuse
        return " ".join(command.split())


def matches(pattern: str, command: str) -> bool:
    """``COMMAND`` names one command exactly (its comment aside); ``COMMAND*`` every command
    that starts so."""
    if pattern.endswith("*"):
        return bare(command).startswith(" ".join(pattern[:-1].split()))
    return bare(command) == bare(pattern)


def plan(block: Block) -> Iterator[tuple[str, Directive | None]]:
    """Each command with the marker that applies to it (None: run, expect exit 0)."""
    used: set[int] = set()
    for command in block.commands:
        chosen = None
        for n, directive in enumerate(block.directives):
            if directive.prefix is None or matches(directive.prefix, command):
                chosen = directive
                used.add(n)
                break
        yield command, chosen
    stale = [d for n, d in enumerate(block.directives) if n not in used]
    if stale:
        raise AssertionError(f"README.md:{stale[0].line}: marker `{stale[0].prefix}` matches no "
                             f"command of the block at line {block.line}")


# -- a fresh clone -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clone(tmp: Path) -> Path:
    """The repository's tracked files (linked, not copied) and a ``.venv`` that is this
    interpreter, marked installed for this pyproject.toml so ``scripts/setup`` installs nothing."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    where = tmp / "clone"
    where.mkdir()
    for top in sorted({path.split("/")[0] for path in tracked}):
        (where / top).symlink_to(ROOT / top)
    bin_dir = where / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, run in (("python", f'exec {shlex.quote(sys.executable)} "$@"'),
                      ("hotline", f"exec {shlex.quote(sys.executable)} -c "  # as the entry point
                                  "\"import sys; sys.argv[0] = 'hotline'; from hotline.cli import main; "
                                  'main()" "$@"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{run}\n")
        (bin_dir / name).chmod(0o755)
    stamp = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    (where / ".venv" / ".hotline-installed").write_text(stamp + "\n")
    return where


@dataclass
class Background:
    command: str
    proc: subprocess.Popen[bytes]
    out: Path


class Reader:
    """Runs the README's commands in the clone, as its reader would in a shell."""

    def __init__(self, where: Path, port: int) -> None:
        self.where, self.port = where, port
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
        self.env = {**env, "PATH": f"{where / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
                    "PYTHONPATH": str(ROOT), "HOTLINE_INIT_PORT": str(port),
                    "PYTHONIOENCODING": "utf-8"}
        self.background: list[Background] = []
        self.failures: list[str] = []
        self.log: list[str] = []

    def text(self, command: str) -> str:
        return re.sub(r"\b(localhost|127\.0\.0\.1):8470\b", rf"\1:{self.port}", command)

    def run(self, command: str, expected: int) -> None:
        began = time.monotonic()
        try:
            done = subprocess.run(["bash", "-c", self.text(command)], cwd=self.where, env=self.env,
                                  capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.failures.append(f"{command}\n  did not end within {COMMAND_TIMEOUT:g} s")
            return
        self.log.append(f"$ {command}  -> exit {done.returncode} ({time.monotonic() - began:.1f} s)")
        if done.returncode != expected or "Traceback" in done.stderr:
            self.failures.append(f"{command}\n  exit {done.returncode}, expected {expected}\n"
                                 f"  stdout: {done.stdout[-600:]}\n  stderr: {done.stderr[-1200:]}")

    def connections(self) -> int | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as answer:
                return int(json.load(answer)["connections"])
        except OSError:
            return None

    def start(self, command: str, until: str | None) -> None:
        before = self.connections()
        out = self.where / f"background-{len(self.background)}.out"
        with out.open("wb") as sink:
            proc = subprocess.Popen(["bash", "-c", f"exec {self.text(command)}"], cwd=self.where,
                                    env=self.env, stdout=sink, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        started = Background(command, proc, out)
        self.background.append(started)
        self.log.append(f"$ {command} &")
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:  # a bounded wait for an event
            if until is not None and until in out.read_text(errors="replace"):
                return
            if until is None and (now := self.connections()) is not None and now > (before or 0):
                return
            time.sleep(0.05)
        why = "timed out" if proc.poll() is None else f"exited {proc.returncode}"
        self.failures.append(f"{command} &\n  not ready ({why}): "
                             f"{out.read_text(errors='replace')[-1200:]}")

    def stop_all(self) -> None:
        """Stop every background command, the last started first; each must still be running."""
        for started in reversed(self.background):
            if started.proc.poll() is not None:
                self.failures.append(f"{started.command} &\n  ended early, exit "
                                     f"{started.proc.returncode}: "
                                     f"{started.out.read_text(errors='replace')[-1200:]}")
                continue
            os.killpg(started.proc.pid, signal.SIGTERM)
            try:
                started.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(started.proc.pid, signal.SIGKILL)
                started.proc.wait()


# -- the tests -----------------------------------------------------------------------------------

def test_markers_are_read_as_documented() -> None:
    text = "\n".join([
        "<!-- readme-test: skip `./scripts/test` (the whole suite) -->",
        "<!-- readme-test: background `./scripts/run` until \"listening on\" -->",
        "```sh", "./scripts/run     # serve", "./scripts/test", "```", "",
        "```console", "$ hotline templates \\", "    launch-notification", "output", "```",
        "<!-- readme-test: exit 1 `hotline agreement submit*` -->",
        "```bash", "# a comment", "hotline agreement submit v2.json --as alice", "```"])
    first, second, third = blocks(text)
    assert [(c, d.verb if d else None) for c, d in plan(first)] == [
        ("./scripts/run     # serve", "background"), ("./scripts/test", "skip")]
    assert next(d for d in first.directives if d.verb == "background").until == "listening on"
    assert second.commands == ["hotline templates      launch-notification"]
    assert [(c, d.code if d else 0) for c, d in plan(third)] == [
        ("hotline agreement submit v2.json --as alice", 1)]
    with pytest.raises(AssertionError, match="not right above a block"):
        blocks("<!-- readme-test: skip (why) -->\n\n```sh\nls\n```")
    with pytest.raises(AssertionError, match="matches no command"):
        list(plan(blocks("<!-- readme-test: exit 1 `ls -l` -->\n```sh\nls -la\n```")[0]))
    agents = blocks("<!-- readme-test: background `hotline agent --as north-agent` -->\n```sh\n"
                    "hotline agent --as north-agent   # one per party\n"
                    "hotline agent --as north-agent --once\n```")[0]
    assert [d.verb if d else None for _, d in plan(agents)] == ["background", None]
    with pytest.raises(AssertionError, match="says why"):
        blocks("<!-- readme-test: skip -->\n```sh\nls\n```")


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    readme = blocks(README.read_text())
    steps = [(command, directive) for block in readme for command, directive in plan(block)]
    reader = Reader(clone(tmp_path), free_port())
    skipped = []
    try:
        for command, directive in steps:
            if directive is not None and directive.verb == "skip":
                skipped.append(f"{command}  ({directive.reason})")
            elif directive is not None and directive.verb == "background":
                reader.start(command, directive.until)
            else:
                reader.run(command, directive.code if directive else 0)
            if reader.failures:
                break  # what follows builds on it
    finally:
        reader.stop_all()
    ran = "\n".join(reader.log)
    assert not reader.failures, ("\n\n".join(reader.failures) + f"\n\nran:\n{ran}"
                                 + "\n\nskipped:\n" + "\n".join(skipped))
