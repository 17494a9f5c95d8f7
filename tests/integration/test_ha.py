"""Issue 17, a first slice of acceptance 1: two ``hotline serve`` processes on one real
PostgreSQL. One leads the log (a PostgreSQL advisory lock); the other waits as a standby, not
listening. SIGKILL the leader: the standby takes the lead by itself, members' commands given both
servers fail over to it, every accepted message is delivered once in log order, the new leader
signs checkpoints that extend the old ones, and ``hotline audit verify`` passes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DEMO_ROSTER, ServerProcess, hotline_cli, running_server
from tests.integration.test_hybrid_keys import checkpointed
from tests.integration.test_rotation_audit import audit
from tests.postgres import crash, database_url, replicated

pytestmark = pytest.mark.slow
FAST = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "0.05"}
READY = 30.0  # seconds: a bound against hangs, never a synchronisation


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
    """The standby's line saying it waits: read as the server writes it (bounded)."""
    deadline = time.monotonic() + READY
    while not server.logged(event):
        assert server.proc is not None and server.proc.poll() is None, server.log.read_text()
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.05)


def send(home: Path, urls: list[str], text: str) -> int:
    done = hotline_cli(home, "send", "--as", "alice", *(a for u in urls for a in ("--server", u)),
                       "--channel", "north-south", "--template", "message", "--field", f"text={text}")
    assert done.returncode == 0, done.stderr
    found = re.search(r"accepted index=(\d+)", done.stdout)
    assert found is not None, done.stdout
    return int(found[1])


def test_the_standby_takes_the_lead_when_the_leader_is_killed(
        home: Path, postgres_url: str, servers: list[ServerProcess]) -> None:
    leader = serve(home, postgres_url, "a")
    servers.append(leader)
    a = leader.listening()
    standby = serve(home, postgres_url, "b")
    servers.append(standby)
    wait_for_log(standby, "store.standby")  # it waits, and does not listen
    first = send(home, [a], "before the failover")
    assert first == DEMO_ROSTER

    leader.kill()  # no handler runs; its session, and with it the lock, ends
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
        home: Path, postgres_url: str, postgres_server: object,
        servers: list[ServerProcess]) -> None:
    leader = serve(home, postgres_url, "a")
    servers.append(leader)
    a = leader.listening()
    standby = serve(home, postgres_url, "b")
    servers.append(standby)
    wait_for_log(standby, "store.standby")
    # what a database failover or a cut network does to the leader's session
    postgres_server.psql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE "  # type: ignore[attr-defined]
                         "locktype = 'advisory' AND granted;")
    assert leader.proc is not None
    assert leader.proc.wait(timeout=READY) == 1  # it stops rather than serve beside a new leader
    assert leader.logged("server.stopping") and "store.lead_lost" in leader.log.read_text()
    b = standby.listening()
    assert send(home, [a, b], "after the leader stepped down") == DEMO_ROSTER


async def test_a_promoted_synchronous_standby_holds_every_accepted_entry(home: Path) -> None:
    """Acceptance 2: the database's own failover. A primary and a synchronous streaming standby
    (``pg_basebackup``); the server accepts messages and signs checkpoints; the primary crashes
    (``pg_ctl stop -m immediate``), so the server loses the lead and stops appending; the
    standby is promoted and a server on it holds every entry any member was told was accepted,
    the same checkpoints, and goes on; the audit is clean."""
    with replicated() as (primary, standby):
        on_primary = database_url(primary.get_uri(), "hotline")
        async with running_server(home, HOTLINE_STORE_URL=on_primary, **FAST) as server:
            alice = await server.client("alice")
            accepted = [await alice.send(channel="north-south", template="message",
                                         body={"text": f"m{n}"}) for n in range(5)]
            await checkpointed(server)
            head, checkpoints = server.hotline.store.tree_head(), await server.hotline.store.checkpoints()
            await asyncio.to_thread(crash, primary)
            await asyncio.wait_for(server.hotline.store.lead_lost.wait(), READY)
        standby.psql("SELECT pg_promote();")
        on_standby = database_url(standby.get_uri(), "hotline")
        async with running_server(home, HOTLINE_STORE_URL=on_standby, **FAST) as server:
            store = server.hotline.store
            assert store.tree_head() == head and await store.checkpoints() == checkpoints
            for sent in accepted:
                assert (await store.entry(sent.index)) is not None
            bob = await server.client("bob")
            after = await bob.send(channel="north-south", template="message", body={"text": "on"})
            assert after.index == head[0]
            await checkpointed(server)
            code, out = await audit(home, server.url)
        assert code == 0, out
