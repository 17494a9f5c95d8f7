"""Shared fixtures: a real demo deployment on disk, a real server on a free loopback port, real
clients. Nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web

from hotline.agent.witness import witness_round
from hotline.canonical import JSONValue
from hotline.client.connection import Client, Delivered
from hotline.client.logapi import LogClient, http_base
from hotline.client.profile import Profile
from hotline.client.sealed_view import SealedView
from hotline.config import load_config
from hotline.deployment import init_deployment
from hotline.server.app import start
from hotline.server.appkeys import SERVER
from hotline.server.service import Hotline
from hotline.tlog import NoteVerifier
from tests.postgres import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]  # fixtures for every test

# What the demo deployment logs at the server's first start: 7 enrollments, the agreement, and
# this epoch's and the next one's encryption key of each of the 3 liaisons.
DEMO_ROSTER = 14


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test (or module) marked ``both_stores`` runs once with the log in SQLite and once in
    PostgreSQL; ``HOTLINE_TEST_STORE=postgres`` runs every test with it in PostgreSQL."""
    if metafunc.definition.get_closest_marker("both_stores") is not None:
        metafunc.parametrize("store_engine", ["sqlite", "postgres"], indirect=True)


@pytest.fixture(autouse=True)
def store_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the servers this test starts keep their log: with ``postgres``, a database of its
    own, given to ``running_server`` and ``ServerProcess`` as ``HOTLINE_STORE_URL``."""
    engine = getattr(request, "param", None) or os.environ.get("HOTLINE_TEST_STORE", "sqlite")
    if engine == "postgres":
        monkeypatch.setenv("HOTLINE_STORE_URL", request.getfixturevalue("postgres_url"))
    return str(engine)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh demo deployment (north, south, mediator; alice, bob, carol, agents, audrey)."""
    path = tmp_path / "home"
    init_deployment(path, parties=["north", "south", "mediator"], heartbeat_interval=10, port=0,
                    origin="hotline.test", force=False)
    return path


def without_epoch_keys(home: Path) -> Path:
    """``home`` with the epoch keys ``init`` made taken away (never logged), for a test that
    publishes its members' keys itself."""
    for path in [*(home / "roster").glob("epoch-*.json"), *(home / "keys" / "epoch").glob("*.pem")]:
        path.unlink()
    return home


@dataclass
class Running:
    home: Path
    url: str
    app: web.Application
    opened: list[Client] = field(default_factory=list)

    @property
    def hotline(self) -> Hotline:
        """The running service itself (the tests look at its sessions, never change them)."""
        return self.app[SERVER].service

    @property
    def log_key(self) -> NoteVerifier:
        """The log key the members pinned (alice's profile's)."""
        pinned = Profile.load(self.home, "alice").log_key
        assert pinned is not None
        return pinned

    async def client(self, name: str) -> Client:
        """A connected client of ``name``'s profile, closed when the test ends."""
        profile = Profile.load(self.home, name)
        client = Client.for_profile(profile)
        await client.connect(self.url, ssl_context=profile.tls_for(self.url))
        self.opened.append(client)
        return client

    def body_seen(self, client: Client, delivered: Delivered) -> dict[str, JSONValue]:
        return body_seen(self.home, client, delivered)


def body_seen(home: Path, client: Client, delivered: Delivered) -> dict[str, JSONValue]:
    """The body ``client``'s member reads: the sealed fields its epoch keys in ``home`` open
    (the demo's keys have no passphrase), the others marked sealed."""
    view = SealedView(home, party=client.party, member=client.member, passphrase=None,
                      templates=client.templates)
    return view.body(delivered.envelope, client.roster)


@contextlib.asynccontextmanager
async def running_server(home: Path, clock: Callable[[], datetime] | None = None,
                         **env: str) -> AsyncIterator[Running]:
    """The real aiohttp server of ``home`` on 127.0.0.1 with a free port, on the current loop;
    ``env`` holds HOTLINE_* setting overrides, ``clock`` stands in for the server's clock."""
    if "HOTLINE_STORE_URL" in os.environ:  # the log in PostgreSQL (``store_engine``)
        env = {"HOTLINE_STORE_URL": os.environ["HOTLINE_STORE_URL"], **env}
    config = load_config(home / "hotline.toml", home=home, env=env)
    runner, url = await (start(config) if clock is None else start(config, clock=clock))
    running = Running(home, url, runner.app)
    try:
        yield running
    finally:
        for client in running.opened:
            await client.close()
        await runner.cleanup()


@pytest.fixture
async def server(home: Path) -> AsyncIterator[Running]:
    async with running_server(home) as running:
        yield running


class ServerProcess:
    """``hotline serve`` in a child process, stopped (or killed) by the test."""

    def __init__(self, home: Path, log: str = "server.log") -> None:
        self.home = home
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log = home / log  # the server's stderr: JSON log lines

    def start(self, *args: str, port: int = 0, **settings: str) -> str:
        """Start ``hotline serve`` (``args``: its options; ``port`` 0: the OS picks one;
        ``settings``: HOTLINE_* overrides) and return its WebSocket URL once it listens."""
        self.spawn(*args, port=port, **settings)
        return self.listening()

    def spawn(self, *args: str, port: int = 0, **settings: str) -> None:
        """Start ``hotline serve`` without waiting for it to listen (``listening`` waits)."""
        env = {**os.environ, "HOTLINE_SERVER_PORT": str(port), **settings}
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", "--home", str(self.home), "serve", *args],
                stdout=subprocess.PIPE, stderr=log, text=True, env=env)

    def listening(self) -> str:
        """Block until the server prints the URL it listens on (or exits: RuntimeError)."""
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until the server prints its URL (or exits)
        if "listening on " not in line:
            code = self.proc.poll()  # None: still running (it printed something else)
            self.stop()
            raise RuntimeError(f"server did not start: {line!r} (exit status {code}); its log: "
                               f"{self.log.read_text()[-1500:]}")
        self.url = line.rsplit(" ", 1)[1].strip()
        return self.url

    def logged(self, event: str) -> bool:
        """Whether the server's log has a line of ``event``."""
        return any(json.loads(line).get("event") == event
                   for line in self.log.read_text().splitlines() if line.startswith("{"))

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, nothing is flushed."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self._reap()

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            self._reap()

    def _reap(self) -> None:
        assert self.proc is not None
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


@pytest.fixture
def server_process(home: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(home)
    try:
        yield process
    finally:
        process.stop()


def copy_database(source: Path, target: Path) -> None:
    """Replace ``target``'s database files with ``source``'s, as someone holding the disk of a
    stopped server would: every ``hotline.db*`` file (the database, its WAL, and the checkpoint
    record the server keeps beside it)."""
    target.mkdir(exist_ok=True)
    for old in target.glob("hotline.db*"):
        old.unlink()
    for path in source.glob("hotline.db*"):
        shutil.copy2(path, target / path.name)


def hotline_cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the ``hotline`` command as a user would."""
    return subprocess.run([sys.executable, "-m", "hotline.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout)


WITNESSES = ("north-agent", "south-agent", "mediator-agent")  # those the demo agreement names


def witness_once(home: Path, url: str, name: str) -> int | None:
    """One round of ``name``'s witness against the server at ``url``, in this process, as
    `hotline witness --once` runs it: the size it cosigned, or None if nothing was new."""
    profile = Profile.load(home, name)
    assert profile.log_key is not None
    return witness_round(LogClient(http_base(url), ssl_context=profile.tls_for(url)),
                         state_path=home / "state" / f"{name}.witness.json",
                         log_key=profile.log_key, name=name, key=profile.signing_key(),
                         timestamp=int(time.time()))


async def witness_all(home: Path, url: str, names: tuple[str, ...] = WITNESSES) -> None:
    """Every named witness of the demo deployment cosigns the log's current checkpoint (the
    default audit policy requires all of them)."""
    for name in names:
        await asyncio.to_thread(witness_once, home, url, name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts a server process is slow (README, "Tests"): the fast inner loop
    (``-m "not slow"``) must not grow one by accident."""
    for item in items:
        if "server_process" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("slow"):
            raise pytest.UsageError(f"{item.nodeid} starts a server process: mark it @pytest.mark.slow")
