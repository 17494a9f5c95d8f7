"""Issue 13, acceptance 4: `hotline doctor` against a healthy, a stopped and a mis-pinned
deployment, run as a user runs it (a subprocess), against the real server with real keys. The
healthy deployment's three agents run in this loop; `doctor --wait` returns once the channel is
UP (the server's health frame), so no test waits on a clock."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotline.agent.heartbeat import AgentState, HeartbeatAgent
from hotline.canonical import dumps
from hotline.client.backoff import Backoff
from hotline.client.profile import Profile
from hotline.deployment import init_deployment
from hotline.keyfiles import load_private_key
from hotline.roster import revocation, sign_document
from tests.conftest import ServerProcess, running_server

FAST = {"HOTLINE_HEALTH_SWEEP": "0.1", "HOTLINE_TLOG_CHECKPOINT_DELAY": "0.2"}
ORIGIN = "hotline.test"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The demo's three parties, heartbeats every second (so the channel is UP within seconds)."""
    path = tmp_path / "home"
    init_deployment(path, parties=["north", "south", "mediator"], heartbeat_interval=1, port=0,
                    origin=ORIGIN, force=False)
    return path


def doctor(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hotline.cli", "--home", str(home), "doctor", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8", **env})


def marks(stdout: str) -> tuple[list[str], list[str]]:
    """The ✔ lines and the ✖ lines of a report (without their marks)."""
    lines = [line.strip() for line in stdout.splitlines()]
    return ([line[2:] for line in lines if line.startswith("✔ ")],
            [line[2:] for line in lines if line.startswith("✖ ")])


@contextlib.asynccontextmanager
async def agents(home: Path, url: str) -> AsyncIterator[None]:
    """Every party's heartbeat agent, in this loop."""
    tasks = []
    for party in ("north", "south", "mediator"):
        name = f"{party}-agent"
        runner = HeartbeatAgent(Profile.load(home, name), servers=(url,),
                                state=AgentState(home / "state" / f"{name}.agent.json"),
                                backoff=Backoff(base=0.05, cap=0.3))
        tasks.append(asyncio.create_task(runner.run(), name=name))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.mark.slow
async def test_a_healthy_deployment_is_all_ticks(home: Path) -> None:
    async with running_server(home, **FAST) as server, agents(home, server.url):
        result = await asyncio.to_thread(doctor, home, "--as", "alice", "--server", server.url,
                                         "--wait", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    ok, failed = marks(result.stdout)
    assert failed == []
    port = server.url.split(":")[2].split("/")[0]
    for expected in ("profile alice: alice, liaison of north, deployment hotline.test",
                     "private key readable: ",
                     f"server reachable: 127.0.0.1:{port} accepts connections",
                     "TLS: none, plain ws:// on loopback",
                     "server health: storage ok",
                     "origin hotline.test, as the profile pins",
                     "log key hotline.test+",
                     "latest checkpoint (size ",
                     "clock: this machine is ",
                     "enrolled: alice, liaison of north, by its pinned authority; valid until ",
                     "channels: north-south",
                     "encryption keys: published for this epoch (24 h epochs)",  # init made them
                     "north-south: UP, every party beats"):
        assert any(line.startswith(expected) for line in ok), (expected, result.stdout)
    assert result.stdout.rstrip().endswith("all checks passed")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
async def test_a_stopped_server_is_a_cross_with_what_to_do(home: Path) -> None:
    process = ServerProcess(home)
    url = process.start()
    process.stop()  # the deployment exists, its server does not run
    result = await asyncio.to_thread(doctor, home, "--as", "bob", "--server", url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    ok, failed = marks(result.stdout)
    assert ok[0].startswith("profile bob: bob, liaison of south")
    assert any(line.startswith("private key readable") for line in ok)
    port = url.split(":")[2].split("/")[0]
    assert len(failed) == 1 and failed[0].startswith(f"server reachable: nothing answers at "
                                                     f"127.0.0.1:{port}"), result.stdout
    hint = result.stdout.split(failed[0], 1)[1]
    assert "→ start the server (`hotline serve`" in hint
    assert "--server" in hint and "HOTLINE_SERVER" in hint


def repin(home: Path, name: str, setting: str, value: str) -> None:
    """Change one pinned setting of a profile, as a mistaken copy would."""
    path = home / "profiles" / f"{name}.toml"
    text, count = re.subn(rf'(?m)^{setting} = ".*"$', f'{setting} = "{value}"', path.read_text())
    assert count == 1
    path.write_text(text)


@pytest.mark.slow
async def test_a_profile_pinning_another_log_key_is_named(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    init_deployment(other, parties=["north", "south", "mediator"], heartbeat_interval=1, port=0,
                    origin=ORIGIN, force=False)  # same origin, its own log key
    foreign = Profile.load(other, "alice").log_key
    ours = Profile.load(home, "alice").log_key
    assert foreign is not None and ours is not None and foreign != ours
    repin(home, "alice", "log_key", foreign.to_text())
    async with running_server(home, **FAST) as server:
        result = await asyncio.to_thread(doctor, home, "--as", "alice", "--server", server.url)
    assert result.returncode == 1, result.stdout + result.stderr
    ok, failed = marks(result.stdout)
    served, pinned = ours.to_text().split("+"), foreign.to_text().split("+")
    wanted = (f"log key: the server signs with {served[0]}+{served[1]}, the profile pins "
              f"{pinned[0]}+{pinned[1]}")
    assert wanted in failed, result.stdout
    assert "origin hotline.test, as the profile pins" in ok
    assert not any(line.startswith("latest checkpoint") for line in ok)  # never with a key not pinned
    assert "Traceback" not in result.stderr


@pytest.mark.slow
async def test_a_profile_pinning_another_origin_is_named(home: Path) -> None:
    repin(home, "alice", "origin", "elsewhere.test")
    async with running_server(home, **FAST) as server:
        result = await asyncio.to_thread(doctor, home, "--as", "alice", "--server", server.url)
    assert result.returncode == 1, result.stdout + result.stderr
    ok, failed = marks(result.stdout)
    assert "origin: the server is 'hotline.test', the profile pins 'elsewhere.test'" in failed, \
        result.stdout
    assert any(line.startswith("log key hotline.test+") for line in ok)  # the log key still matches
    assert "another deployment's server" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
async def test_an_unknown_profile_and_an_encrypted_key_without_passphrase(home: Path,
                                                                         tmp_path: Path) -> None:
    result = await asyncio.to_thread(doctor, home, "--as", "alicia")  # a usage mistake, as everywhere
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: config.unknown_profile: ")
    assert "no profile 'alicia'" in result.stderr
    assert "known: alice, " in result.stderr

    locked = tmp_path / "locked"
    init_deployment(locked, parties=["north", "south"], heartbeat_interval=1, port=0,
                    origin=ORIGIN, force=False, passphrase=b"correct horse")
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_PASSPHRASE"}
    bare = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "hotline.cli", "--home",
                                   str(locked), "doctor", "--as", "alice"],
                                   capture_output=True, text=True, timeout=60,
                                   env={**env, "PYTHONIOENCODING": "utf-8"})
    assert bare.returncode == 1 and "Traceback" not in bare.stderr
    _, failed = marks(bare.stdout)
    assert any("is encrypted and HOTLINE_PASSPHRASE is not set" in line for line in failed)


@pytest.mark.slow
async def test_a_terminal_that_cannot_show_the_marks_gets_ascii(home: Path) -> None:
    async with running_server(home, **FAST) as server:
        result = await asyncio.to_thread(doctor, home, "--as", "carol", "--server", server.url,
                                         PYTHONIOENCODING="ascii")
    assert result.returncode == 1  # no agents: the channel is not UP
    assert result.stdout.isascii() and "Traceback" not in result.stderr
    assert "[ok] origin hotline.test, as the profile pins" in result.stdout
    assert "[FAIL] north-south: UNKNOWN" in result.stdout
    assert "-> start the heartbeat agent of each party not beating" in result.stdout


@pytest.mark.slow
async def test_tls_with_the_pinned_ca_and_a_server_of_another_ca(tmp_path: Path) -> None:
    """A `hotline init --tls` deployment: the certificate verifies against the pinned CA (its
    fingerprint shown); another deployment's server, with a valid certificate for the same
    127.0.0.1 from its own CA, is a ✖ on the TLS line and nothing after it is asked."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for path in (ours, theirs):
        made = await asyncio.to_thread(subprocess.run, [
            sys.executable, "-m", "hotline.cli", "--home", str(path), "init", "--tls", "--port", "0",
            "--origin", ORIGIN], capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
    async with running_server(ours, **FAST) as server, running_server(theirs, **FAST) as other:
        good = await asyncio.to_thread(doctor, ours, "--as", "alice", "--server", server.url)
        bad = await asyncio.to_thread(doctor, ours, "--as", "alice", "--server", other.url)
    ok, _ = marks(good.stdout)
    tls = next(line for line in ok if line.startswith("TLS: "))
    assert re.fullmatch(rf"TLS: the certificate verifies against the pinned CA {ours}/tls/ca\.pem "
                        r"\(SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}\)", tls), tls
    assert "origin hotline.test, as the profile pins" in ok
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    ok, failed = marks(bad.stdout)
    assert len(failed) == 1 and failed[0].startswith(
        f"TLS: the server's certificate does not verify against the pinned CA {ours}/tls/ca.pem"), \
        bad.stdout
    assert "certificate verify failed" in failed[0]
    assert not any(line.startswith(("origin", "log key", "enrolled")) for line in ok)


async def test_a_revoked_member_is_told_who_can_enroll_it_again(home: Path) -> None:
    key_id = Profile.load(home, "bob").signing_key().key_id
    doc = revocation(party="south", member="bob", key_id=key_id, revoked_at=datetime.now(UTC))
    signed = sign_document(doc, load_private_key(home / "keys" / "authority-south.pem"))
    (home / "roster" / "95-revoke-bob.json").write_text(dumps(signed.to_json()))  # imported at start
    async with running_server(home, **FAST) as server:
        result = await asyncio.to_thread(doctor, home, "--as", "bob", "--server", server.url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    ok, failed = marks(result.stdout)
    assert len(failed) == 1 and failed[0].startswith(
        "enrolled: the server refuses this key: auth.revoked: "), result.stdout
    assert "→ this key was revoked: ask south's authority to enroll a new key" in result.stdout
    assert "origin hotline.test, as the profile pins" in ok
    assert any(line.startswith("clock: ") for line in ok)
