"""Issue 20, defect 7: hostile exports. A real log is exported once per module (a real server,
alice's message, every witness's cosignature); each case edits one line of a copy, as anyone
holding the file could, and runs `hotline audit verify --export` on it. Every malformed line is
one line on stderr, ``FAILED: export NAME line N: ...`` naming the line and what is wrong, with
exit code 1: never a traceback, never OK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.audit.export import MAX_LINE
from hotline.cli import main
from hotline.deployment import init_deployment
from hotline.display import unsafe
from tests.conftest import DEMO_ROSTER, hotline_cli, running_server, witness_all

WAIT = 10.0


@dataclass(frozen=True)
class Built:
    home: Path
    lines: list[str]  # the export's lines, without their newlines


async def _build(home: Path, export: Path) -> None:
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        alice = await server.client("alice")
        index = (await alice.send(channel="north-south", template="message", body={"text": "hi"})).index
        await asyncio.wait_for(alice.receipt(index), WAIT)
        await witness_all(home, server.url)
        exported = await asyncio.to_thread(hotline_cli, home, "audit", "export", "--as", "audrey",
                                           "--server", server.url, "--out", str(export))
        assert exported.returncode == 0, exported.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("export")
    home, export = base / "home", base / "export.jsonl"
    init_deployment(home, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin="hotline.test", force=False)
    asyncio.run(_build(home, export))
    return Built(home, export.read_text().splitlines())


def verify(home: Path, export: Path, tmp_path: Path) -> tuple[int, str, str]:
    """`hotline audit verify --export`, in this process: exit code, stdout, stderr. An exception
    escaping the command (a traceback) fails the test."""
    result = CliRunner().invoke(main, ["--home", str(home), "audit", "verify", "--as", "audrey",
                                       "--export", str(export), "--state", str(tmp_path / "fresh.json")])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


def first(lines: list[str], kind: str) -> int:
    """The index in ``lines`` of the first line of ``kind``."""
    return next(n for n, line in enumerate(lines) if json.loads(line)["type"] == kind)


def edit_line(kind: str, edit: Callable[[dict[str, object]], object], offset: int = 0) -> Callable[
        [list[str]], tuple[list[str], int]]:
    """Replace the ``offset``-th line of ``kind`` by ``edit`` of its object (JSON-encoded, or the
    text ``edit`` returns)."""
    def apply(lines: list[str]) -> tuple[list[str], int]:
        number = first(lines, kind) + offset
        value = edit(json.loads(lines[number]))
        lines[number] = value if isinstance(value, str) else json.dumps(value)
        return lines, number + 1
    return apply


def replace_line(kind: str, text: str, offset: int = 0) -> Callable[[list[str]], tuple[list[str], int]]:
    return edit_line(kind, lambda _: text, offset)


def drop(record: dict[str, object], key: str) -> dict[str, object]:
    return {k: v for k, v in record.items() if k != key}


def repeated(lines: list[str]) -> tuple[list[str], int]:
    number = first(lines, "entry") + 3
    return [*lines[:number + 1], lines[number], *lines[number + 1:]], number + 2


def swapped(lines: list[str]) -> tuple[list[str], int]:
    number = first(lines, "entry") + 3
    lines[number], lines[number + 1] = lines[number + 1], lines[number]
    return lines, number + 1


def cut_mid_line(lines: list[str]) -> tuple[list[str], int]:
    return [*lines[:-1], lines[-1][:40]], len(lines)  # written without its newline below


HASH32 = "A" * 43 + "="
CASES: dict[str, tuple[Callable[[list[str]], tuple[list[str], int]], str]] = {
    # the defect as found
    "non-JSON line": (replace_line("entry", "{not json", 2), "not valid JSON"),
    "list for a checkpoint": (replace_line("checkpoint", "[1, 2]"), 'not a JSON object with a "type"'),
    "200k-deep list": (replace_line("entry", "[" * 200_000 + "]" * 200_000), "nested too deeply"),
    "200k-deep object": (replace_line("entry", '{"a":' * 200_000 + "1" + "}" * 200_000),
                         "nested too deeply"),
    "checkpoint without size": (edit_line("checkpoint", lambda r: drop(r, "size")),
                                "a checkpoint record is malformed: checkpoint is missing size"),
    "checkpoint with a string size": (edit_line("checkpoint", lambda r: {**r, "size": "18"}),
                                      "checkpoint.size must be an integer, not str"),
    # truncated files
    "cut in the middle of a line": (cut_mid_line, "the file ends in the middle of this line (truncated)"),
    "empty line": (replace_line("entry", "", 4), "not valid JSON"),
    # wrong types everywhere
    "header size as text": (edit_line("log", lambda r: {**r, "size": "18"}),
                            "the header is malformed: header.size must be an integer, not str"),
    "witnessed note null": (edit_line("witnessed", lambda r: {**r, "note": None}),
                            "a witnessed record is malformed: checkpoint.note must be text, not null"),
    "index as text": (edit_line("entry", lambda r: {**r, "index": "3"}, 3),
                       "entry.index must be an integer, not str"),
    "negative index": (edit_line("entry", lambda r: {**r, "index": -1}, 3),
                       "entry.index is out of range (>= 0)"),
    "leaf as number": (edit_line("entry", lambda r: {**r, "leaf": 5}, 3),
                       "entry.leaf must be text or null, not int"),
    "leaf not base64": (edit_line("entry", lambda r: {**r, "leaf": "%%%"}, 3), "'leaf' is not base64"),
    "entry as list": (edit_line("entry", lambda r: {**r, "entry": [1]}, 3),
                      "entry.entry must be an object or null, not array"),
    "leaf and hash": (edit_line("entry", lambda r: {**r, "hash": HASH32}, 3),
                      "an entry holds either a 'leaf' or a 'hash'"),
    "short hash": (edit_line("entry", lambda r: {"type": "entry", "index": 3, "hash": "AA=="}, 3),
                   "'hash' is not 32 bytes"),
    "unknown field": (edit_line("entry", lambda r: {**r, "evil": 1}, 3), "entry has unknown field(s) evil"),
    "not UTF-8": (replace_line("entry", '{"type":"entry","index":3,"leaf":"\udcff"}', 3),
                  "not UTF-8"),
    # huge numbers
    "index beyond 2^53": (replace_line("entry", '{"type":"entry","index":' + "9" * 400 + "}", 3),
                          "an integer is outside"),
    "size beyond 2^53": (edit_line("checkpoint", lambda r: {**r, "size": 2**60}), "an integer is outside"),
    # records out of place
    "duplicate index": (repeated, "entry 3 where entry 4 belongs (a repeat or out of order)"),
    "entries swapped": (swapped, "entry 4 where entry 3 belongs (entries are missing)"),
    "checkpoint among the entries": (edit_line("entry", lambda r: {"type": "checkpoint", "size": 1,
                                                                   "note": ""}, 3),
                                     "a 'checkpoint' record among the entries"),
    "unknown type with escapes": (edit_line("entry", lambda r: {**r, "type": "\x1b[2J\u202e"}, 3),
                                  "a '␛[2J⟨U+202E⟩' record among the entries"),
    "line over the bound": (replace_line("entry", '{"type":"entry","index":3,"leaf":"'
                                         + "A" * MAX_LINE + '"}', 3), f"longer than {MAX_LINE} bytes"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_malformed_line_is_one_failed_line_naming_it(built: Built, tmp_path: Path,
                                                          case: str) -> None:
    edit, expected = CASES[case]
    lines, number = edit(list(built.lines))
    path = tmp_path / "hostile.jsonl"
    text = "\n".join(lines) + ("" if edit is cut_mid_line else "\n")
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    code, out, err = verify(built.home, path, tmp_path)
    assert code == 1 and "OK" not in out, (case, out, err)
    assert len(err.splitlines()) == 1, (case, err)
    assert err.startswith(f"FAILED: export hostile.jsonl line {number}: "), (case, err)
    assert expected in err, (case, err)
    assert not unsafe(err.rstrip("\n")), (case, err)


def test_the_export_untouched_verifies(built: Built, tmp_path: Path) -> None:
    """The cases above start from an export that passes: each failure is the edit's."""
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(built.lines) + "\n")
    code, out, err = verify(built.home, path, tmp_path)
    assert code == 0 and out.startswith("OK: log hotline.test"), err


@pytest.mark.parametrize(("case", "expected"), [
    ("no header", 'export hostile.jsonl line 1: not a header ({"type": "log", ...}): the file is '
                  "not a hotline log export"),
    ("empty file", "export hostile.jsonl: the file is empty, not a hotline log export"),
    # the export's checkpoint covers the roster and alice's message; the cut keeps 7 entries
    ("cut at a line end", f"checkpoint of size {DEMO_ROSTER + 1} (from the log) was signed, but the "
                          "log now has 7 entries: it was truncated or rolled back"),
])
def test_files_that_are_not_whole_exports_fail_in_one_line(built: Built, tmp_path: Path, case: str,
                                                           expected: str) -> None:
    lines = {"no header": built.lines[1:], "empty file": [],
             "cut at a line end": built.lines[:first(built.lines, "entry") + 7]}[case]
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    code, _, err = verify(built.home, path, tmp_path)
    assert (code, err) == (1, f"FAILED: {expected}\n")
