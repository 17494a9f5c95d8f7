"""Issue 17, acceptance 1 and 2: several ``hotline serve`` processes on one real PostgreSQL log.
Every server serves members and appends; one at a time leads (signs checkpoints, sweeps
deadlines, judges health: a PostgreSQL advisory lock) and the others follow it. SIGKILL the
leader, then a follower: every member's client and agent fails over by itself, every accepted
message reaches every member once and in log order, another server signs the next checkpoints,
and ``hotline audit verify`` passes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from hotline.client.backoff import Backoff
from hotline.client.outbox import Outbox, OutboxState
from hotline.client.profile import Profile
from hotline.console.link import EntryEvent, Event, Link, LinkStatus, ReceiptEvent, ResumedEvent, Welcomed
from hotline.deployment import init_deployment
from hotline.entries import EnvelopeEntry
from hotline.envelope import Kind
from hotline.norms.files import load_templates
from tests.conftest import DEMO_ROSTER, ServerProcess, hotline_cli
from tests.integration.test_rotation_audit import audit
from tests.postgres import crash, replicated

pytestmark = pytest.mark.slow
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
READY = 30.0  # seconds: a bound against hangs, never a synchronisation
LIAISONS = {"alice": 0, "bob": 1, "carol": 2}  # each starts on its own server, A, B or C
AGENTS = {"north-agent": 0, "south-agent": 1, "mediator-agent": 2}


def serve(home: Path, url: str, name: str) -> ServerProcess:
    """``hotline serve`` on the PostgreSQL log, started without waiting for it to listen."""
    server = ServerProcess(home, log=f"{name}.log")
    server.spawn(HOTLINE_STORE_URL=url, **FAST)
    return server


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def wait_for_log(server: ServerProcess, event: str) -> None:
    """A line the server writes (read as it writes it; bounded)."""
    deadline = time.monotonic() + READY
    while not server.logged(event):
        assert server.proc is not None and server.proc.poll() is None, server.log.read_text()
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.05)


async def until(ready: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(READY):
        while not ready():
            await asyncio.sleep(0.05)
    assert ready(), what


def rotated(urls: list[str], first: int) -> tuple[str, ...]:
    """The failover list of a client that starts on server ``first``."""
    return tuple(urls[first:] + urls[:first])


class Liaison:
    """A liaison's console line (``hotline.console.link``, without the screen): its outbox,
    and every event it saw."""

    def __init__(self, home: Path, name: str, servers: tuple[str, ...]) -> None:
        self.name = name
        profile = Profile.load(home, name)
        self.outbox = Outbox.open(home / "state" / f"{name}.ha-outbox.db")
        self.events: list[Event] = []
        self.link = Link(profile=profile, key=profile.signing_key(), outbox=self.outbox,
                         emit=self.events.append, servers=servers,
                         backoff=Backoff(base=0.05, cap=0.5), open_timeout=5.0)
        self.task = asyncio.create_task(self.link.run(), name=f"link-{name}")
        self.sent: list[str] = []
        template = load_templates(home / "protocols").latest("message")
        assert template is not None
        self.template = template

    async def send(self, text: str) -> None:
        envelope = self.link.build(channel="north-south", template="message",
                                   body={"text": text}, precedence="ROUTINE")
        envelope = await self.link.seal(envelope, self.template)  # to its readers, as typed
        item = self.link.store(envelope)  # in the outbox first: resent after a failover
        self.sent.append(item.id)
        self.link.send(item)

    def accepted(self) -> dict[str, int]:
        return {item.id: item.index for item in self.outbox.items()
                if item.state is OutboxState.ACCEPTED and item.index is not None}

    def messages(self) -> list[tuple[int, str]]:
        """(index, envelope id) of every other liaison's message delivered to this one, in the
        order delivered (its own it fetches once accepted)."""
        return [(e.index, e.entry.envelope.id) for e in self.events
                if isinstance(e, EntryEvent) and isinstance(e.entry, EnvelopeEntry)
                and e.entry.envelope.kind is Kind.MESSAGE and e.entry.envelope.sender != self.name]

    def out_of_order(self) -> list[int]:
        """Messages delivered live (outside a session's replay: from its ``resumed`` on) at an
        index not past every one delivered before. Within a replay the client's own rule
        (``hotline.client.streams``) allows one drop back, to the entries the replay began after
        (live ones sent just before it): ``host_problems`` says if it was broken."""
        wrong, last, replaying, theirs = [], -1, False, set(self.messages())
        for event in self.events:
            if isinstance(event, Welcomed):
                replaying = True
            elif isinstance(event, ResumedEvent):
                replaying = False
            elif (isinstance(event, EntryEvent) and isinstance(event.entry, EnvelopeEntry)
                  and (event.index, event.entry.envelope.id) in theirs):
                if not replaying and event.index <= last:
                    wrong.append(event.index)
                last = max(last, event.index)
        return wrong

    def host_problems(self) -> list[str]:
        """What the client refused of the server's deliveries (out of order, malformed)."""
        return [e.detail for e in self.events
                if isinstance(e, LinkStatus) and "host problem" in e.detail]

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.outbox.close()


def start_agent(home: Path, name: str, servers: tuple[str, ...]) -> subprocess.Popen[bytes]:
    args = [a for url in servers for a in ("--server", url)]
    with (home / f"{name}.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "hotline.cli", "--home", str(home), "agent",
                                 "--as", name, *args, "--witness-every", "1"],
                                stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ))


async def checkpoint_sizes(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        return [int(r[0]) for r in await conn.fetch("SELECT size FROM checkpoints ORDER BY size")]
    finally:
        await conn.close()


def leader_of(procs: list[ServerProcess]) -> int:
    """The one live server that logged taking the lead (the first started leads from the start)."""
    live = [n for n, p in enumerate(procs) if p.proc is not None and p.proc.poll() is None]
    took = [n for n in live if procs[n].logged("store.leading")]
    return took[0] if took else live[0]


async def test_three_servers_one_log_failover_of_the_leader_then_of_a_follower(
        tmp_path: Path, postgres_url: str, servers: list[ServerProcess]) -> None:
    """Acceptance 1 of issue 17."""
    home = tmp_path / "home"
    init_deployment(home, parties=["north", "south", "mediator"], heartbeat_interval=2, port=0,
                    origin="hotline.test", force=False)
    servers.append(serve(home, postgres_url, "a"))
    servers[0].listening()  # the first leads
    for name in "bc":  # each server's home a copy of the first's, with its checkpoint file
        copy = Path(shutil.copytree(home, tmp_path / f"home-{name}"))
        servers.append(serve(copy, postgres_url, name))
        servers[-1].listening()
    urls = [s.url for s in servers]
    for follower in servers[1:]:
        wait_for_log(follower, "store.following")
    agents = [start_agent(home, name, rotated(urls, n)) for name, n in AGENTS.items()]
    liaisons = {name: Liaison(home, name, rotated(urls, n)) for name, n in LIAISONS.items()}
    try:
        rounds = 0

        async def load(n: int) -> None:  # a steady load: each liaison sends, round after round
            nonlocal rounds
            for _ in range(n):
                for liaison in liaisons.values():
                    await liaison.send(f"{liaison.name} round {rounds}")
                rounds += 1
                await asyncio.sleep(0.05)  # the pace of the load, not a synchronisation

        def all_accepted() -> bool:
            return all(len(x.accepted()) == len(x.sent) for x in liaisons.values())

        await until(lambda: all(x.link.proved_ahead for x in liaisons.values()),
                    "every liaison connected, with the keys it seals to proven logged")
        await load(10)
        await until(all_accepted, "the first messages accepted")
        before = await checkpoint_sizes(postgres_url)

        # The leader dies mid-load: its members fail over; another server takes the lead.
        dead = leader_of(servers)
        servers[dead].kill()
        await load(10)
        await until(lambda: any(p.proc is not None and p.logged("store.leading")
                                for p in servers), "another server took the lead")
        await until(all_accepted, "every message accepted after the leader died")
        size_then = max(max(x.accepted().values()) for x in liaisons.values()) + 1
        signed: list[int] = []

        async def signed_beyond() -> bool:
            signed[:] = await checkpoint_sizes(postgres_url)
            return bool(signed) and signed[-1] >= size_then
        async with asyncio.timeout(READY):  # the new leader signs checkpoints (bounded)
            while not await signed_beyond():
                await asyncio.sleep(0.05)
        assert signed[:len(before)] == before  # nothing signed earlier went away

        # Then a follower dies: its members fail over too; the leader goes on signing.
        leader = leader_of(servers)
        follower = next(n for n, p in enumerate(servers) if p.proc is not None and n != leader)
        servers[follower].kill()
        await load(10)
        await until(all_accepted, "every message accepted after a follower died")

        # Every accepted message reaches every other liaison once, in log order.
        accepted = {i: idx for x in liaisons.values() for i, idx in x.accepted().items()}
        assert len(accepted) == 3 * rounds and len(set(accepted.values())) == len(accepted)
        for liaison in liaisons.values():
            theirs = {i for x in liaisons.values() if x is not liaison for i in x.sent}
            await until(lambda lz=liaison, t=theirs: t <= {i for _, i in lz.messages()},
                        f"{liaison.name} got every other liaison's messages")
            indexes = [index for index, _ in liaison.messages()]
            assert len(indexes) == len(set(indexes)), f"{liaison.name}: a message shown twice"
            assert not liaison.out_of_order(), f"{liaison.name}: out of log order"
            assert all(accepted[i] == index for index, i in liaison.messages())
            assert not [e for e in liaison.events if isinstance(e, ReceiptEvent) and not e.ok]
            assert not liaison.host_problems()
        survivor = servers[leader].url
        assert all(agent.poll() is None for agent in agents)  # they failed over, still running
    finally:
        for liaison in liaisons.values():
            await liaison.close()
        for agent in agents:
            agent.terminate()
            agent.wait(timeout=15)
    code, out = await audit(home, survivor)
    assert code == 0 and out.startswith("OK"), out


def healthz(ws_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(ws_url.replace("ws://", "http://").replace("/v1/ws", "/healthz"),
                                timeout=READY) as answer:
        return cast(dict[str, Any], json.load(answer))


def send(home: Path, url: str, text: str) -> int:
    """``hotline send`` as alice; the index it was accepted at."""
    done = hotline_cli(home, "send", "--as", "alice", "--server", url, "--channel", "north-south",
                       "--template", "message", "--field", f"text={text}")
    assert done.returncode == 0, done.stderr
    found = re.search(r"accepted index=(\d+)", done.stdout)
    assert found is not None, done.stdout
    return int(found[1])


def test_a_leader_that_loses_its_database_session_starts_again_and_follows(
        home: Path, postgres_url: str, postgres_server: object,
        servers: list[ServerProcess]) -> None:
    leader = serve(home, postgres_url, "a")
    servers.append(leader)
    leader.listening()
    follower = serve(home, postgres_url, "b")
    servers.append(follower)
    b = follower.listening()  # a follower serves at once
    wait_for_log(follower, "store.following")
    # what a database failover or a cut network does to the leader's session
    postgres_server.psql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE "  # type: ignore[attr-defined]
                         "locktype = 'advisory' AND granted;")
    again = leader.listening()  # it closed its sessions and started again by itself
    assert leader.logged("server.restarting") and "store.session_lost" in leader.log.read_text()
    deadline = time.monotonic() + READY
    while sorted(healthz(url)["store"]["leader"] for url in (again, b)) != [False, True]:
        assert time.monotonic() < deadline, "not exactly one leader"  # whichever took the lock
        time.sleep(0.05)
    assert send(home, again, "through the restarted server") == DEMO_ROSTER
    assert send(home, b, "through the new leader") == DEMO_ROSTER + 1


def test_a_promoted_synchronous_standby_holds_every_accepted_entry_and_the_server_reconnects(
        home: Path, servers: list[ServerProcess]) -> None:
    """Acceptance 2: the database's own failover. A primary and a synchronous streaming standby
    (``pg_basebackup``); the server's URL names both hosts with ``target_session_attrs=
    read-write``. It accepts messages; the primary crashes (``pg_ctl stop -m immediate``), the
    standby is promoted; the server starts again by itself on the promoted standby, which holds
    every entry any member was told was accepted; the line goes on and the audit is clean."""
    with replicated() as (primary, standby):
        sockets = [parse_qs(urlsplit(node.get_uri()).query)["host"][0] for node in (primary, standby)]
        url = f"postgresql://postgres@/hotline?host={','.join(sockets)}&target_session_attrs=read-write"
        server = serve(home, url, "a")
        servers.append(server)
        a = server.listening()
        accepted = [send(home, a, f"m{n}") for n in range(5)]
        crash(primary)
        standby.psql("SELECT pg_promote();")
        b = server.listening()  # started again by itself, on the promoted standby
        assert server.logged("server.restarting")
        assert send(home, b, "after the failover") == accepted[-1] + 1  # nothing accepted lost
        heard = hotline_cli(home, "listen", "--as", "bob", "--server", b, "--no-ack", "--after",
                            str(DEMO_ROSTER - 1), "--count", "6", "--json")
        assert heard.returncode == 0, heard.stderr
        lines = [line for line in map(json.loads, heard.stdout.splitlines()) if "sender" in line]
        assert [(m["index"], m["verified"]) for m in lines] == [(i, True) for i in
                                                                [*accepted, accepted[-1] + 1]]
        verdict = hotline_cli(home, "audit", "verify", "--as", "audrey", "--server", b,
                              "--require-witnesses", "0")
        assert verdict.returncode == 0 and verdict.stdout.startswith("OK"), verdict.stdout + verdict.stderr
