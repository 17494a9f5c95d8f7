"""Issue 17, a first slice of acceptance 1: two ``hotline serve`` processes on one real
PostgreSQL. One leads the log (a PostgreSQL advisory lock); the other waits as a standby, not
listening. SIGKILL the leader: the standby takes the lead by itself, members' commands given both
servers fail over to it, every accepted message is delivered once in log order, the new leader
signs checkpoints that extend the old ones, and ``hotline audit verify`` passes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DEMO_ROSTER, hotline_cli

pytestmark = pytest.mark.slow
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
READY = 30.0  # seconds: a bound against hangs, never a synchronisation


class Serve:
    """``hotline serve`` in a child process, on the PostgreSQL log, stopped by the test."""

    def __init__(self, home: Path, url: str, name: str) -> None:
        self.log = home / f"{name}.log"
        env = {**os.environ, **FAST, "HOTLINE_STORE_URL": url, "HOTLINE_SERVER_PORT": "0"}
        with self.log.open("w") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", "--home", str(home), "serve"],
                stdout=subprocess.PIPE, stderr=sink, text=True, env=env)

    def listening(self) -> str:
        """Block until the server prints the URL it listens on (it leads), or fail."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the event waited for; the process ends on failure
        assert "listening on " in line, (line, self.log.read_text())
        return line.rsplit(" ", 1)[1].strip()

    def logged(self, event: str) -> bool:
        return any(json.loads(line).get("event") == event
                   for line in self.log.read_text().splitlines() if line.startswith("{"))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def servers(home: Path, postgres_url: str) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    try:
        yield started
    finally:
        for serve in started:
            serve.stop()


def wait_for_log(serve: Serve, event: str) -> None:
    """The standby's line saying it waits: read as the server writes it (bounded)."""
    deadline = time.monotonic() + READY
    while not serve.logged(event):
        assert time.monotonic() < deadline and serve.proc.poll() is None, serve.log.read_text()
        time.sleep(0.05)


def send(home: Path, urls: list[str], text: str) -> int:
    done = hotline_cli(home, "send", "--as", "alice", *(a for u in urls for a in ("--server", u)),
                       "--channel", "north-south", "--template", "message", "--field", f"text={text}")
    assert done.returncode == 0, done.stderr
    found = re.search(r"accepted index=(\d+)", done.stdout)
    assert found is not None, done.stdout
    return int(found[1])


def test_the_standby_takes_the_lead_when_the_leader_is_killed(home: Path, postgres_url: str,
                                                              servers: list[Serve]) -> None:
    leader = Serve(home, postgres_url, "a")
    servers.append(leader)
    a = leader.listening()
    standby = Serve(home, postgres_url, "b")
    servers.append(standby)
    wait_for_log(standby, "store.standby")  # it waits, and does not listen
    first = send(home, [a], "before the failover")
    assert first == DEMO_ROSTER

    leader.stop(signal.SIGKILL)  # no handler runs; its session, and with it the lock, ends
    b = standby.listening()  # the standby took the lead by itself
    second = send(home, [a, b], "after the failover")  # a is dead: the command goes on to b
    assert second > first

    heard = hotline_cli(home, "listen", "--as", "bob", "--server", a, "--server", b, "--no-ack",
                        "--after", str(DEMO_ROSTER - 1), "--count", "2", "--json")
    assert heard.returncode == 0, heard.stderr
    lines = [line for line in map(json.loads, heard.stdout.splitlines()) if "sender" in line]
    assert [(m["index"], m["verified"]) for m in lines] == [(first, True), (second, True)]
    assert [m["body"]["text"] for m in lines] == ["before the failover", "after the failover"]
    verdict = hotline_cli(home, "audit", "verify", "--as", "audrey", "--server", b,
                          "--require-witnesses", "0")
    assert verdict.returncode == 0 and verdict.stdout.startswith("OK"), verdict.stdout + verdict.stderr


def test_a_leader_that_loses_its_database_session_stops_and_the_standby_leads(
        home: Path, postgres_url: str, postgres_server: object, servers: list[Serve]) -> None:
    leader = Serve(home, postgres_url, "a")
    servers.append(leader)
    a = leader.listening()
    standby = Serve(home, postgres_url, "b")
    servers.append(standby)
    wait_for_log(standby, "store.standby")
    # what a database failover or a cut network does to the leader's session
    postgres_server.psql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE "  # type: ignore[attr-defined]
                         "locktype = 'advisory' AND granted;")
    assert leader.proc.wait(timeout=READY) == 1  # it stops rather than serve beside a new leader
    assert leader.logged("server.stopping") and "store.lead_lost" in leader.log.read_text()
    b = standby.listening()
    assert send(home, [a, b], "after the leader stepped down") == DEMO_ROSTER
