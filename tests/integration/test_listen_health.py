"""Issue 13, item 3: `hotline listen` shows the channel's health. With listeners running (text and
--json), the channel going DOWN and back UP prints each change once, as a line marked
[host, unsigned], with the reason the server logged; a listener started while the channel is
DOWN says so at once; and a replay from the start (--after -1) shows the same changes.

A real server whose clock stands still until the test moves it (so the heartbeats the real
agents send every second never go late on their own), the three parties' real heartbeat agents in
this event loop, real `hotline listen` processes. Waits are for lines and frames, with timeouts
only as failure bounds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hotline.agent.heartbeat import AgentState, HeartbeatAgent
from hotline.client.backoff import Backoff
from hotline.client.connection import Client
from hotline.client.lines import HOST
from hotline.client.profile import Profile
from hotline.deployment import init_deployment
from tests.conftest import Running, hotline_cli, running_server
from tests.integration.test_norms import add_drill_agreement, logged

pytestmark = pytest.mark.slow  # real servers or child processes in every test

CHANNEL = "north-south"
WAIT = 30.0
FAST = {"HOTLINE_HEALTH_SWEEP": "0.05", "HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}


class Clock:
    """The server's clock, standing still until the test moves it on."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The demo deployment with heartbeats every second: DOWN after three missed."""
    path = tmp_path / "home"
    init_deployment(path, parties=["north", "south", "mediator"], heartbeat_interval=1, port=0,
                    origin="hotline.test", force=False)
    return path


class Agents:
    """Each party's real heartbeat agent as a task of this event loop (witnessing off)."""

    def __init__(self, home: Path, url: str) -> None:
        self.home, self.url = home, url
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, party: str) -> None:
        name = f"{party}-agent"
        runner = HeartbeatAgent(Profile.load(self.home, name), servers=(self.url,),
                                state=AgentState.load(self.home / "state" / f"{name}.agent.json"),
                                backoff=Backoff(base=0.05, cap=0.3))
        self.tasks[party] = asyncio.create_task(runner.run(), name=name)

    async def stop(self, party: str) -> None:
        task = self.tasks.pop(party)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop_all(self) -> None:
        for party in list(self.tasks):
            await self.stop(party)


class Listener:
    """`hotline listen` in a child process; its stdout read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def next(self, *wanted: str) -> str:
        """The next line holding one of ``wanted`` (the lines before it are kept)."""
        assert self.process.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.process.stdout.readline(), WAIT)
            assert raw, f"listen ended: {self.lines}"
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            if any(w in line for w in wanted):
                return line

    async def health(self) -> str:
        """The next line that speaks of the channel's health (text or JSON)."""
        return await self.next("HEALTH", '"kind": "health')

    async def rest(self) -> list[str]:
        """Stop listening; every line it printed, the last ones included."""
        assert self.process.stdout is not None
        self.process.terminate()
        tail = (await asyncio.wait_for(self.process.stdout.read(), WAIT)).decode()
        self.lines.extend(tail.splitlines())
        return self.lines


@contextlib.asynccontextmanager
async def listening(home: Path, url: str, *args: str) -> AsyncIterator[Listener]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hotline.cli", "--home", str(home), "listen", "--as", "bob",
        "--server", url, "--no-ack", *args, stdout=asyncio.subprocess.PIPE)
    try:
        yield Listener(process)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have ended already
            process.terminate()
        await process.wait()


async def state_becomes(client: Client, state: str) -> None:
    """Wait for the server's live health frame of the channel to say ``state``."""
    async def wait() -> None:
        while (now := client.health.get(CHANNEL)) is None or now.state != state:
            client.health_changed.clear()
            await client.health_changed.wait()
    await asyncio.wait_for(wait(), WAIT)


def changes(home: Path) -> list[dict[str, Any]]:
    return [e for e in logged(home) if e["kind"] == "health"]


async def test_listen_shows_the_channel_going_down_and_up_live_and_on_replay(home: Path) -> None:
    clock = Clock()
    async with running_server(home, clock, **FAST) as server:
        agents = Agents(home, server.url)
        try:
            await go_down_and_up(server, home, clock, agents)
        finally:
            await agents.stop_all()
        # The clock stands still: no change after these. Replayed from the start, the same four
        # changes, each proven in the log, before the message alice sends now (--count 1 counts
        # the message: a HEALTH change is shown, not counted; heartbeats and echoes are not shown
        # without --all).
        logged_changes = changes(home)
        assert [(e["from"], e["to"]) for e in logged_changes] == [
            ("UNKNOWN", "DOWN"), ("DOWN", "UP"), ("UP", "DOWN"), ("DOWN", "UP")]
        alice = await server.client("alice")
        await alice.send(channel=CHANNEL, template="message", body={"text": "back up"})
        text = await asyncio.to_thread(hotline_cli, home, "listen", "--as", "bob", "--server",
                                       server.url, "--no-ack", "--after", "-1", "--count", "1")
        assert text.returncode == 0, text.stderr
        shown = [line for line in text.stdout.splitlines() if "HEALTH" in line]
        assert [line.split("] ", 1)[0] + "]" for line in shown] == [
            f"[{e['index']}]" for e in logged_changes]
        for line, entry in zip(shown, logged_changes, strict=True):
            assert line == (f"[{entry['index']}] {HOST} HEALTH {CHANNEL} {entry['to']} since "
                            f"{entry['since']} (was {entry['from']}): {entry['reason']}")
            assert f"[{entry['index']}] proven in the log" in text.stdout
        out = text.stdout.splitlines()
        message = next(i for i, line in enumerate(out) if "Text: back up " in line)
        assert message > max(out.index(line) for line in shown)  # in log order
        records = await asyncio.to_thread(hotline_cli, home, "listen", "--as", "bob", "--server",
                                          server.url, "--no-ack", "--after", "-1", "--count", "1",
                                          "--json")
        assert records.returncode == 0, records.stderr
        health = [r for r in map(json.loads, records.stdout.splitlines()) if r.get("kind") == "health"]
        assert health == [{"index": e["index"], "channel": CHANNEL, "kind": "health",
                           "verified": False,
                           "server": {"logged": e["time"], "from": e["from"], "to": e["to"],
                                      "since": e["since"], "reason": e["reason"]}}
                          for e in logged_changes]

        # --all: the heartbeats and echoes too, the changes among them in log order
        shown_all = [e for e in logged(home) if e.get("channel") == CHANNEL
                     and e["kind"] in ("envelope", "health")]
        counted = sum(e["kind"] == "envelope" for e in shown_all)
        every = await asyncio.to_thread(hotline_cli, home, "listen", "--as", "bob", "--server",
                                        server.url, "--no-ack", "--after", "-1", "--all",
                                        "--count", str(counted))
        assert every.returncode == 0, every.stderr
        heads = [line for line in every.stdout.splitlines()  # each entry's own line
                 if " proven in the log" not in line and not line.startswith("  ")]
        assert [h.split("] ", 1)[0] + "]" for h in heads] == [f"[{e['index']}]" for e in shown_all]
        assert [h for h in heads if "HEALTH" in h] == shown


async def go_down_and_up(server: Running, home: Path, clock: Clock, agents: Agents) -> None:
    alice = await server.client("alice")  # watches the live health frames, as the test's eyes
    clock.now += timedelta(seconds=4)  # nobody was ever heard: DOWN after three intervals
    await state_becomes(alice, "DOWN")

    async with listening(home, server.url) as text, listening(home, server.url, "--json") as js:
        # started while the channel is DOWN: both say so at once (the host's live word)
        now = await text.health()
        assert now.startswith(f"{HOST} HEALTH {CHANNEL} is DOWN now, since "), now
        assert "south silent: never heard" in now
        record = json.loads(await js.health())
        assert (record["kind"], record["channel"], record["server"]["state"]) == (
            "health_now", CHANNEL, "DOWN")

        for party in ("north", "south", "mediator"):
            agents.start(party)
        await state_becomes(alice, "UP")
        up = await text.health()
        assert f"{HOST} HEALTH {CHANNEL} UP since " in up and up.endswith(
            "(was DOWN): every party beats and answers: mediator, north, south"), up

        await agents.stop("south")  # south's agent stops: south falls silent
        clock.now += timedelta(seconds=5)
        await state_becomes(alice, "DOWN")
        down = await text.health()
        assert f"{HOST} HEALTH {CHANNEL} DOWN since " in down and "(was UP): " in down, down
        assert "south silent: no heartbeat since" in down

        agents.start("south")  # and is back
        await state_becomes(alice, "UP")
        again = await text.health()
        assert f"{HOST} HEALTH {CHANNEL} UP since " in again and "(was DOWN)" in again, again

        seen = [json.loads(await js.health()) for _ in range(3)]
        assert [(r["kind"], r["server"]["from"], r["server"]["to"]) for r in seen] == [
            ("health", "DOWN", "UP"), ("health", "UP", "DOWN"), ("health", "DOWN", "UP")]
        assert all(r["verified"] is False and r["channel"] == CHANNEL for r in seen)
        await agents.stop_all()
        # each change was printed once: no line for the frames that follow each change
        assert sum("HEALTH" in line for line in await text.rest()) == 4
        assert sum('"health' in line for line in await js.rest()) == 4


async def test_listen_shows_an_overdue_notice_live_and_on_replay(home: Path) -> None:
    """A drill owes an 'understood' ack within a second; nobody acks it (--no-ack): the host's
    overdue notice is shown on its own marked line, live and replayed, text and JSON."""
    add_drill_agreement(home)
    clock = Clock()
    async with running_server(home, clock, HOTLINE_PROTOCOLS_DEADLINE_SWEEP="0.05",
                              **FAST) as server:
        alice = await server.client("alice")
        before = len(logged(home)) - 1
        async with listening(home, server.url, "--after", str(before)) as text, \
                listening(home, server.url, "--after", str(before), "--json") as js:
            drill = await alice.send(channel=CHANNEL, template="drill", body={"text": "drill"})
            # each listener shows the drill (replayed or live): it is listening
            assert (await text.next(" drill id=")).startswith(f"[{drill.index}] ")
            assert json.loads(await js.next('"template": "drill"'))["index"] == drill.index
            clock.now += timedelta(seconds=2)  # the deadline passes
            notice = await text.next("OVERDUE")
            assert notice.startswith(f"[{drill.index + 1}] {HOST} OVERDUE ROUTINE drill "
                                     f"message [{drill.index}] was due "), notice
            assert notice.endswith(": no understood from mediator, south")
            record = json.loads(await js.next('"kind": "overdue"'))
            assert record["verified"] is False and record["server"]["missing"] == ["mediator", "south"]
        replay = await asyncio.to_thread(hotline_cli, home, "listen", "--as", "bob", "--server",
                                         server.url, "--no-ack", "--after", str(before),
                                         "--count", "2")
        assert replay.returncode == 0, replay.stderr
        assert notice in replay.stdout.splitlines()
