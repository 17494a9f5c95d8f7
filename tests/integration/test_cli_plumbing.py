"""Issue 13, items 1, 4, 10, 14 and 15 (the command plumbing): every command turns a typed error
into ``error: CODE: message`` with its exit code (2 for a usage problem: an unknown profile, a
malformed URL, a duplicate field), never a traceback; every command that talks to a server takes
it the same way (``--server``, ``HOTLINE_SERVER``). Run as a user runs them: ``hotline`` in a
child process, against a real server where one is needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from hotline.cli import GROUPS, main
from hotline.client.logapi import http_base
from tests.conftest import DEMO_ROSTER, ServerProcess, hotline_cli

TIMEOUT = 60  # seconds: a command that hangs fails the test instead of the suite


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``hotline --home HOME ARGS`` with only ``env`` of the HOTLINE_* member variables set."""
    clean = {k: v for k, v in os.environ.items() if k not in ("HOTLINE_AS", "HOTLINE_SERVER")}
    return subprocess.run([sys.executable, "-m", "hotline.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=TIMEOUT, env={**clean, **env})


def leaves(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every runnable (sub)command of the click tree, nested groups included (through click's
    ``list_commands``/``get_command``, which import the lazily loaded ones)."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            yield from leaves(command, (*path, name))
        else:
            yield (*path, name), command


def command_at(path: tuple[str, ...]) -> click.Command:
    leaf: click.Command | None = main
    for name in path:
        assert isinstance(leaf, click.Group)
        leaf = leaf.get_command(click.Context(leaf), name)
    assert leaf is not None, path
    return leaf


def takes_as(command: click.Command) -> bool:
    return any(isinstance(p, click.Option) and "--as" in p.opts for p in command.params)


def minimal_args(command: click.Command, tmp: Path, *, profile: str | None) -> list[str]:
    """``--as PROFILE`` (if given and taken) and a plausible value for every other required
    parameter: enough for the command to get as far as loading the profile or the home."""
    signed = tmp / "signed.json"
    signed.write_text('{"document": {}, "sigs": []}')
    args: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option) and "--as" in param.opts:
            if profile is not None:
                args += ["--as", profile]
            continue
        if not param.required:
            continue
        kind = param.type
        if isinstance(kind, click.Path):
            value = str(signed)
        elif isinstance(kind, click.Choice):
            value = str(kind.choices[0])
        elif isinstance(kind, click.IntRange | click.FloatRange):
            value = str(kind.min if kind.min is not None else 1)
        else:
            value = "north-south"
        args += [value] if isinstance(param, click.Argument) else [param.opts[0], value]
    return args


# ``keys new|show --as NAME`` name a key file and ``join --as NAME`` the profile it makes, not a
# profile that must exist: covered by test_authority_cli.py and test_operator_cli.py
MEMBER_COMMANDS = sorted(" ".join(path) for path, command in leaves(main)
                         if takes_as(command) and path[0] not in ("keys", "join"))


def test_the_walk_finds_every_member_command() -> None:
    """The walk below reaches nested groups: a new command is covered without listing it."""
    assert {"send", "listen", "ack", "agent", "witness", "console", "client", "audit verify",
            "audit report", "audit availability", "audit export", "audit receipt",
            "agreement submit"} <= set(MEMBER_COMMANDS)


@pytest.mark.slow
@pytest.mark.parametrize("command", MEMBER_COMMANDS)
def test_every_command_with_an_unknown_profile_says_so_and_exits_2(
        command: str, home: Path, tmp_path: Path) -> None:
    """Item 1: `hotline send --as alicia ...` ended in a traceback. Every command taking --as,
    given a profile that does not exist, prints one `error: CODE: message` line naming the known
    profiles and exits 2 (a usage error)."""
    path = tuple(command.split())
    leaf = command_at(path)
    done = run(home, *path, *minimal_args(leaf, tmp_path, profile="alicia"))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 2, (done.returncode, done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("error: config.unknown_profile: ")
    assert "no profile 'alicia'" in errors[0] and "(known: alice, audrey, bob, carol" in errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(" ".join(path) for path, command in leaves(main)
                                           if not takes_as(command) and path != ("init",)))
def test_every_other_command_on_a_missing_home_fails_without_a_traceback(
        command: str, tmp_path: Path) -> None:
    """Item 1, the commands that take no profile: on a home holding nothing, each refuses with
    a typed error or a usage error (never a traceback) and creates nothing there."""
    missing = tmp_path / "nowhere"
    path = tuple(command.split())
    leaf = command_at(path)
    done = run(missing, *path, *minimal_args(leaf, tmp_path, profile=None))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (1, 2), (done.returncode, done.stdout, done.stderr)
    assert any(line.startswith(("error: ", "Error: ")) for line in done.stderr.splitlines())
    assert not missing.exists()


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("send", "--as", "alicia", "--channel", "north-south", "--field", "text=hi"),
    ("agent", "--as", "alicia"),
])
def test_send_and_agent_with_an_unknown_profile_as_in_the_issue(home: Path,
                                                              args: tuple[str, ...]) -> None:
    done = hotline_cli(home, *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: config.unknown_profile: ")


@pytest.mark.slow
@pytest.mark.parametrize("url", ["http://", "ws://", "ftp://host/", "ws://host:99999/v1/ws",
                                 "http://127.0.0.1:8470"])
def test_a_malformed_server_url_is_a_usage_error(home: Path, url: str) -> None:
    """Item 14: `--server http://` said connect.failed and exited 1. A URL that names no host,
    has another scheme, a bad port, or is HTTP to a WebSocket command exits 2 before anything
    connects, whether it comes from --server or HOTLINE_SERVER."""
    given = run(home, "send", "--as", "alice", "--channel", "north-south", "--field", "text=hi",
                "--server", url)
    from_env = run(home, "listen", "--as", "bob", HOTLINE_SERVER=url)
    for done in (given, from_env):
        assert done.returncode == 2, (url, done.stderr)
        assert "Invalid value for '--server'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_duplicate_field_is_refused_naming_it(server_process: ServerProcess) -> None:
    """Item 10: `--field text=a --field text=b` silently kept the last one. It is a usage error
    (exit 2) naming the field and both values, and nothing is sent."""
    url = server_process.start()
    home = server_process.home
    done = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel", "north-south",
                       "--field", "text=a", "--field", "text=b")
    assert done.returncode == 2, done.stderr
    assert "'text' is given twice (text='a' and text='b'): give each field once" in done.stderr
    with urllib.request.urlopen(http_base(url) + "/healthz", timeout=TIMEOUT) as answer:
        assert json.load(answer)["log_size"] == DEMO_ROSTER  # the roster `hotline init` wrote: nothing sent


@pytest.mark.slow
def test_listen_on_an_unknown_channel_exits_1_naming_the_channels(
        server_process: ServerProcess) -> None:
    """Item 5: `hotline listen --channel nope` waited forever. It checks the channel against the
    member's channels once connected: channel.unknown, exit 1, listing them."""
    url = server_process.start()
    done = hotline_cli(server_process.home, "listen", "--as", "bob", "--server", url,
                       "--channel", "nope", timeout=TIMEOUT)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: channel.unknown: bob is a member of no channel 'nope' "
                                  "(channels: north-south)")


@pytest.mark.slow
def test_agreement_submit_reads_hotline_server(server_process: ServerProcess) -> None:
    """Item 4: `hotline agreement submit` ignored HOTLINE_SERVER. With only the variable set (no
    --server, no --as) it reaches the server, as every member command does."""
    url = server_process.start()
    home = server_process.home
    agreement = str(home / "roster" / "90-agreement-north-south-v1.json")
    done = run(home, "agreement", "submit", agreement, HOTLINE_SERVER=url)
    assert done.returncode == 0, done.stderr
    assert "agreement north-south version 1 logged at index" in done.stdout
    assert "(already logged)" in done.stdout  # `hotline init` put it in the roster folder
    # and the same failover as the member commands: a dead URL first, then the live one
    failover = run(home, "agreement", "submit", agreement,
                   HOTLINE_SERVER=f"ws://127.0.0.1:9/v1/ws {url}")
    assert failover.returncode == 0, failover.stderr
    nobody = run(home, "agreement", "submit", agreement, HOTLINE_SERVER="ws://127.0.0.1:9/v1/ws")
    assert nobody.returncode == 1 and "error: connect.failed: no server answered" in nobody.stderr
    assert "Is the server running (`hotline serve`" in nobody.stderr


@pytest.mark.slow
def test_a_liaison_is_told_she_is_not_a_witness(server_process: ServerProcess) -> None:
    """Item 14: `hotline witness --as carol` (a liaison) said connect.failed. Her profile is not
    an agent's: a usage error saying so. An agent profile whose key no agreement names as a
    witness is told that the server refuses its cosignatures (log.unknown_witness), exit 1, not
    connect.failed."""
    url = server_process.start()
    home = server_process.home
    carol = hotline_cli(home, "witness", "--as", "carol", "--once", "--server", url)
    assert carol.returncode == 2, carol.stderr
    assert "carol is a liaison, not an agent: only a party's agent witnesses the log" in carol.stderr
    audrey = hotline_cli(home, "agent", "--as", "audrey", "--once", "--server", url)
    assert audrey.returncode == 2 and "audrey is an auditor, not an agent" in audrey.stderr

    # an agent profile (a misconfigured one) holding a key that is no named witness's
    rogue = (home / "profiles" / "north-agent.toml").read_text()
    rogue = rogue.replace('member = "north-agent"', 'member = "rogue-agent"')
    rogue = rogue.replace("north-agent.pem", "carol.pem")
    assert "rogue-agent" in rogue and "carol.pem" in rogue
    (home / "profiles" / "rogue-agent.toml").write_text(rogue)
    refused = hotline_cli(home, "witness", "--as", "rogue-agent", "--once", "--server", url)
    assert refused.returncode == 1, refused.stderr
    line = next(x for x in refused.stderr.splitlines() if x.startswith("error: "))
    assert line.startswith("error: log.unknown_witness: rogue-agent (north) is not a witness the "
                           "log's agreements name, so the server refuses its cosignatures")
    assert "connect.failed" not in refused.stderr


@pytest.mark.slow
def test_an_auditor_is_an_auditor(server_process: ServerProcess) -> None:
    """Item 15: "a auditor". The server's refusal of an auditor's message says "an auditor"."""
    url = server_process.start()
    done = hotline_cli(server_process.home, "send", "--as", "audrey", "--server", url,
                       "--channel", "north-south", "--field", "text=hello")
    assert done.returncode == 1, done.stderr
    assert "an auditor may not send message envelopes" in done.stderr
    assert "a auditor" not in done.stderr


@pytest.mark.slow
def test_ack_kind_is_explained(home: Path) -> None:
    """Item 15: `ack --kind` had no help text."""
    shown = hotline_cli(home, "ack", "--help")
    text = " ".join(shown.stdout.split())
    assert "received: the message arrived" in text and "understood: a person read" in text


def test_each_command_is_loaded_only_when_it_runs() -> None:
    """``hotline.cli.GROUPS``: every name resolves to the command of that name, and a ceremony
    command imports neither the store nor the network client (each ``hotline`` process a
    ceremony or a script starts pays only for what it uses)."""
    ctx = click.Context(main)
    for name in GROUPS:
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
    probe = ("import sys; from hotline.cli import main\n"
             "try:\n    main(['keys', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('sqlite_utils', 'websockets', 'aiohttp', 'hotline.member_cli',"
             " 'hotline.server.app') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
