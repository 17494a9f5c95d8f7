"""Issue 13, items 2, 12 and 14 (the server side): the first minutes of a deployment as a newcomer
lives them. `./scripts/run --port P` gives members profiles for P; a member that cannot connect
is told what to try; a second agent for one party refuses to start; `serve` on a busy port or a
home without a deployment says so, and creates nothing. Real processes, real sockets, OS-chosen
ports; every process a test starts, it stops."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.agent.heartbeat import lock_state
from hotline.deployment import init_deployment
from tests.conftest import DEMO_ROSTER, ServerProcess, hotline_cli

pytestmark = pytest.mark.slow  # real servers or child processes in every test

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port the OS just chose as free (for a process that must be given its port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ready_venv(tmp: Path) -> Path:
    """A virtual environment as `scripts/setup` leaves it once installed (its stamp matches
    pyproject.toml), running this interpreter on this checkout: `scripts/run` finds nothing to
    install and runs `hotline` from it."""
    venv = tmp / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    hotline = venv / "bin" / "hotline"
    hotline.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hotline.cli "$@"\n')
    hotline.chmod(0o755)
    stamp = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    (venv / ".hotline-installed").write_text(stamp + "\n")
    return venv


def test_scripts_run_port_reaches_init_and_members_connect(tmp_path: Path) -> None:
    """Item 2: `./scripts/run --port P` served on P while `init` wrote profiles for 8470, so
    every member command failed. Now the deployment it creates names P, and `send` with the
    profile alone (no --server) is accepted."""
    home, port = tmp_path / "home", free_port()
    env = {**os.environ, "HOTLINE_HOME": str(home), "HOTLINE_VENV": str(ready_venv(tmp_path)),
           "PYTHONPATH": str(REPO)}
    env.pop("HOTLINE_SERVER", None)
    with (tmp_path / "run.log").open("w") as log:
        run = subprocess.Popen([str(REPO / "scripts" / "run"), "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert run.stdout is not None
        printed = []
        for line in run.stdout:  # init's lines, then the server's first line
            printed.append(line)
            if "listening on" in line:
                break
        text = "".join(printed)
        assert f"server port {port})" in text, text + (tmp_path / "run.log").read_text()
        assert f"listening on ws://127.0.0.1:{port}/v1/ws" in text
        assert f"ws://127.0.0.1:{port}/v1/ws" in (home / "profiles" / "alice.toml").read_text()
        sent = hotline_cli(home, "send", "--as", "alice", "--channel", "north-south",
                           "--field", "text=through the profile's own server")
        assert sent.returncode == 0, sent.stderr
        assert f"\naccepted index={DEMO_ROSTER} " in sent.stdout, sent.stdout
    finally:
        run.terminate()  # scripts/run execs the server: this stops it
        run.wait(timeout=30)
        if run.stdout is not None:
            run.stdout.close()


def test_connect_failed_says_what_to_try(home: Path) -> None:
    """Item 2: `connect.failed` said only the socket error. It names each URL tried, where the
    URLs came from, and what to try: is the server running, --server, HOTLINE_SERVER."""
    port = free_port()
    profile = home / "profiles" / "alice.toml"
    profile.write_text(profile.read_text().replace("127.0.0.1:0/", f"127.0.0.1:{port}/"))
    done = hotline_cli(home, "send", "--as", "alice", "--channel", "north-south",
                       "--field", "text=x")
    assert done.returncode == 1, done.stderr
    line = done.stderr.strip()
    assert line.startswith("error: connect.failed: no server answered: cannot connect to "
                           f"ws://127.0.0.1:{port}/v1/ws: ")
    for hint in ("Is the server running (`hotline serve`", "--server URL", "HOTLINE_SERVER=URL",
                 f"the profile's `servers` in {profile}"):
        assert hint in line, line


def test_a_second_agent_for_one_party_refuses_to_start(server_process: ServerProcess) -> None:
    """Item 12: two `hotline agent --as north-agent` ran side by side, interleaving heartbeat
    numbers. The first holds a lock on its state file for its life; the second exits 1 saying so;
    once the first is gone (even killed), the lock is free."""
    url = server_process.start()
    home = server_process.home
    first = subprocess.Popen([sys.executable, "-m", "hotline.cli", "--home", str(home), "agent",
                              "--as", "north-agent", "--server", url, "--witness-every", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stderr is not None
        for line in first.stderr:  # the lock is taken before it connects
            if "agent.connected" in line:
                break
        else:
            pytest.fail("the first agent never connected")
        second = hotline_cli(home, "agent", "--as", "north-agent", "--once", "--server", url)
        assert second.returncode == 1, second.stderr
        assert second.stderr.startswith(
            f"error: agent.already_running: another agent is already running as north-agent "
            f"(process {first.pid}): it holds {home / 'state' / 'north-agent.agent.json.lock'}. "
            "One agent per party: stop that one first")
    finally:
        first.kill()  # a crash: no clean-up code runs
        first.wait(timeout=30)
        if first.stderr is not None:
            first.stderr.close()
    with lock_state(home / "state" / "north-agent.agent.json", "north-agent"):
        pass  # the OS released it with the process


def test_serve_on_a_busy_port_fails_before_opening_a_database(server_process: ServerProcess,
                                                               tmp_path: Path) -> None:
    """Item 14: a second `serve` on a busy port said config.invalid, after opening the live
    database. It binds first: server.port_in_use, and its own (new) database is never made."""
    url = server_process.start()
    port = url.rsplit(":", 1)[1].split("/")[0]
    other = tmp_path / "other"
    init_deployment(other, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin="hotline.test", force=False)
    done = hotline_cli(other, "serve", "--port", port)
    assert done.returncode == 1, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("error: "))
    assert line.startswith(f"error: server.port_in_use: port {port} on 127.0.0.1 is in use")
    assert "Traceback" not in done.stderr
    assert not list(other.glob("hotline.db*"))


def test_serve_without_a_deployment_creates_nothing(tmp_path: Path, home: Path) -> None:
    """Item 14: `serve` on a missing home left a stray hotline.db. It refuses, saying to run
    `hotline init`, and creates nothing; a home missing a part (the templates folder) is
    refused before the database is made too."""
    missing = tmp_path / "missing"
    done = hotline_cli(missing, "serve", "--port", "0")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"error: config.no_deployment: {missing / 'hotline.toml'}: no "
                                  f"deployment in {missing}/ (no hotline.toml): make one with "
                                  f"`hotline --home {missing} init`")
    assert not missing.exists()

    shutil.rmtree(home / "protocols")
    broken = hotline_cli(home, "serve", "--port", "0")
    assert broken.returncode == 1 and "the protocol templates folder does not exist" in broken.stderr
    assert not list(home.glob("hotline.db*"))
