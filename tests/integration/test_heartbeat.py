"""Issue 5, acceptance 1–4: real agent processes heartbeat on `north-south` through a real server
process; the channel's health follows them, is logged, pushed to members and exported to
Prometheus. Interval 1 s, health sweep 0.1 s. Waits are for events (health frames, log lines),
with timeouts only as failure bounds."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hotline.audit.availability import build_availability
from hotline.canonical import dumps, parse
from hotline.client.connection import Client
from hotline.client.profile import Profile
from hotline.deployment import init_deployment
from hotline.entries import decode
from hotline.keyfiles import load_private_key
from hotline.roster import revocation, sign_document
from hotline.times import parse_time
from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow  # real servers or child processes in every test

INTERVAL = timedelta(seconds=1)
MISSED = 3
SWEEP = timedelta(seconds=0.1)
WAIT = 20.0
FAST = {"HOTLINE_HEALTH_SWEEP": "0.1", "HOTLINE_TLOG_CHECKPOINT_DELAY": "0.2"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Two parties, so two agents make the whole channel; heartbeats every second."""
    path = tmp_path / "home"
    init_deployment(path, parties=["north", "south"], heartbeat_interval=1, port=0,
                    origin="hotline.test", force=False)
    return path


class AgentProcess:
    """``hotline agent`` in a child process; its JSON log lines go to a file the test reads."""

    def __init__(self, home: Path, name: str) -> None:
        self.home, self.name = home, name
        self.log = home / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, url: str) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", "--home", str(self.home), "agent",
                 "--as", self.name, "--server", url, "--witness-every", "0.5"],
                stdout=subprocess.DEVNULL, stderr=log)

    def events(self, event: str) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [e for e in map(json.loads, lines) if e.get("event") == event]

    async def wait_for(self, event: str, count: int = 1) -> None:
        async def poll() -> None:
            while len(self.events(event)) < count:
                await asyncio.sleep(0.05)
        await asyncio.wait_for(poll(), WAIT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            self.proc.wait(timeout=15)
            self.proc = None


@pytest.fixture
def agents(home: Path) -> Iterator[dict[str, AgentProcess]]:
    running = {party: AgentProcess(home, f"{party}-agent") for party in ("north", "south")}
    try:
        yield running
    finally:
        for agent in running.values():
            agent.stop()


async def member(home: Path, url: str, name: str = "alice") -> Client:
    client = Client.for_profile(Profile.load(home, name))
    await client.connect(url)
    return client


async def state_becomes(client: Client, state: str) -> dict[str, Any]:
    """The health frame of north-south once it says ``state`` (as its JSON)."""
    async def wait() -> dict[str, Any]:
        while (now := client.health.get("north-south")) is None or now.state != state:
            client.health_changed.clear()
            await client.health_changed.wait()
        frame: dict[str, Any] = msgspec.to_builtins(now)
        return frame
    return await asyncio.wait_for(wait(), WAIT)


def logged(home: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{home / 'hotline.db'}?mode=ro", uri=True) as db:
        return [parse(leaf) for (leaf,) in db.execute("SELECT leaf FROM entries ORDER BY idx")]


def heartbeats(entries: list[dict[str, Any]], party: str) -> list[datetime]:
    return [parse_time(e["time"]) for e in entries if e["kind"] == "envelope"
            and e["envelope"]["kind"] == "heartbeat" and e["party"] == party]


def transitions(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e["kind"] == "health"]


def metrics(url: str) -> str:
    base = url.replace("ws://", "http://").removesuffix("/v1/ws")
    with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
        return str(response.read().decode())


@pytest.fixture
async def liaisons() -> AsyncIterator[list[Client]]:
    opened: list[Client] = []
    yield opened
    for client in opened:
        await client.close()


async def test_two_agents_bring_the_channel_up_and_members_see_it(
        home: Path, server_process: ServerProcess, agents: dict[str, AgentProcess],
        liaisons: list[Client]) -> None:
    url = server_process.start(**FAST)
    alice = await member(home, url)
    liaisons.append(alice)
    for agent in agents.values():
        agent.start(url)
    frame = await state_becomes(alice, "UP")
    assert set(frame["parties"]) == {"north", "south"}
    assert all(p["state"] == "UP" and p["last_heartbeat"] for p in frame["parties"].values())
    entries = logged(home)
    changes = transitions(entries)
    up = next(t for t in changes if t["to"] == "UP")
    # On a loaded machine the agents may start after the channel's first `missed` intervals: it
    # is then rightly DOWN (silent) first. Nothing else may come before UP.
    assert all(t["to"] == "DOWN" and "silent" in t["reason"] for t in changes[:changes.index(up)])
    assert up["from"] in ("UNKNOWN", "DOWN") and up["channel"] == "north-south"
    both_beating = max(heartbeats(entries, "north")[0], heartbeats(entries, "south")[0])
    assert parse_time(up["time"]) - both_beating <= 2 * INTERVAL  # UP within two intervals
    assert up["evidence"]  # the heartbeats and echoes it rests on, by log index
    scraped = metrics(url)
    assert 'hotline_channel_state{channel="north-south",hotline_channel_state="UP"} 1.0' in scraped
    assert 'hotline_heartbeat_age_seconds{channel="north-south",party="south"}' in scraped
    assert 'hotline_echo_rtt_seconds_count{channel="north-south"}' in scraped
    assert 'hotline_entries_accepted_total{kind="heartbeat"}' in scraped
    # each agent is also its party's witness: the server holds both parties' cosignatures
    for agent in agents.values():
        await agent.wait_for("witness.cosigned")
    with sqlite3.connect(f"file:{home / 'hotline.db'}?mode=ro", uri=True) as db:
        witnesses = {w for (w,) in db.execute("SELECT witness FROM cosignatures")}
    assert witnesses == {"north/north-agent", "south/south-agent"}  # stored as party/member


async def test_killed_agent_takes_the_channel_down_and_back_up(
        home: Path, server_process: ServerProcess, agents: dict[str, AgentProcess],
        liaisons: list[Client]) -> None:
    url = server_process.start(**FAST)
    alice = await member(home, url)
    liaisons.append(alice)
    for agent in agents.values():
        agent.start(url)
    await state_becomes(alice, "UP")
    agents["south"].kill()  # SIGKILL: no goodbye
    down = await state_becomes(alice, "DOWN")
    assert down["parties"]["south"]["condition"] == "silent"
    entries = logged(home)
    logged_down = transitions(entries)[-1]
    assert logged_down["to"] == "DOWN" and "south silent" in logged_down["reason"]
    last_south = heartbeats(entries, "south")[-1]
    detected = parse_time(logged_down["time"]) - last_south
    assert detected <= INTERVAL * (MISSED + 1) + SWEEP * 5  # interval × (K + 1) plus one sweep
    assert parse_time(logged_down["since"]) == last_south + INTERVAL

    agents["south"].start(url)
    await state_becomes(alice, "UP")
    back = transitions(logged(home))[-1]
    assert (back["from"], back["to"]) == ("DOWN", "UP")


async def test_server_restart_under_the_agents(home: Path, server_process: ServerProcess,
                                               agents: dict[str, AgentProcess],
                                               liaisons: list[Client]) -> None:
    url = server_process.start(**FAST)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    alice = await member(home, url)
    for agent in agents.values():
        agent.start(url)
    await state_becomes(alice, "UP")
    await alice.close()
    before = len(transitions(logged(home)))
    server_process.stop()
    stopped = datetime.now(UTC)
    # The outage lasts until every agent has retried past K + 1 intervals (their own retries are
    # the events waited for): long enough for the channel to be DOWN, not merely late.
    retries = 1
    while datetime.now(UTC) - stopped < INTERVAL * (MISSED + 1):
        retries += 1
        for agent in agents.values():
            await agent.wait_for("agent.unreachable", count=retries)
    assert server_process.start(port=port, **FAST) == url
    alice = await member(home, url)
    liaisons.append(alice)
    await state_becomes(alice, "UP")
    for agent in agents.values():  # they reconnected by themselves
        await agent.wait_for("agent.connected", count=2)
    entries = logged(home)
    after = transitions(entries)[before:]
    assert [t["to"] for t in after][-1] == "UP" and "DOWN" in [t["to"] for t in after]
    # the availability report, from the log alone, shows the outage with the heartbeats' own gap
    # (from the last heartbeat before the stop to the first of both after it) within one interval
    report = build_availability([decode(e) for e in entries], channel="north-south", since=None, until=None,
                                now=datetime.now(UTC))
    outage = report.outages[-1]
    assert outage.end is not None and "silent" in outage.cause
    # both parties fell silent at once: the server's (its host's) outage, not one party's
    assert outage.host and outage.silent == ("north", "south")
    last_before = max(t for p in ("north", "south") for t in heartbeats(entries, p) if t < stopped)
    back = max(min(t for t in heartbeats(entries, p) if t > stopped) for p in ("north", "south"))
    assert abs(outage.length - (back - last_before)) <= INTERVAL


async def test_revoked_agent_cannot_beat_and_its_party_falls_silent(
        home: Path, server_process: ServerProcess, agents: dict[str, AgentProcess],
        liaisons: list[Client]) -> None:
    url = server_process.start(**FAST)
    alice = await member(home, url)
    liaisons.append(alice)
    for agent in agents.values():
        agent.start(url)
    await state_becomes(alice, "UP")
    profile = Profile.load(home, "south-agent")
    doc = revocation(party="south", member="south-agent", key_id=profile.signing_key().key_id,
                     revoked_at=datetime.now(UTC))
    signed = sign_document(doc, load_private_key(home / "keys" / "authority-south.pem"))
    request = urllib.request.Request(url.replace("ws://", "http://").removesuffix("/v1/ws")
                                     + "/v1/roster", data=dumps(signed.to_json()).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    down = await state_becomes(alice, "DOWN")
    assert down["parties"]["south"]["condition"] == "silent"
    assert down["parties"]["north"]["state"] == "UP"
    assert agents["south"].proc is not None
    assert await asyncio.to_thread(agents["south"].proc.wait, WAIT) == 1  # refused: it exits
    assert "south silent" in transitions(logged(home))[-1]["reason"]
