"""Issue 17: a follower on a shared PostgreSQL log, attacked through the database. Two real
servers in this process on one real PostgreSQL: the first leads (signs checkpoints), the second
follows. Whoever can write to the database can add a checkpoint row; a follower pushes a
checkpoint to its members only once its signature verifies with the log key and its root is the
follower's own tree's at that size, and says on ``/healthz`` that the database lies otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from hotline.client.connection import Client
from hotline.entries import OverdueEntry, decode_leaf
from hotline.keyfiles import load_log_key
from hotline.keys import SigningKey
from hotline.tlog import Checkpoint, sign_checkpoint
from hotline.wire.frames import Deliver
from tests.conftest import Running, running_server
from tests.integration.test_norms import Clock, add_drill_agreement

WAIT = 30.0  # seconds: a bound against hangs, never a synchronisation
SLOW_LEADER = {"HOTLINE_TLOG_CHECKPOINT_DELAY": "3600"}  # the test, not the leader, adds checkpoints


async def until(ready: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not ready():
            await asyncio.sleep(0.02)
    assert ready(), what


async def store_checkpoint(url: str, size: int, note: str) -> None:
    """What anyone who can write to the database can do: add a checkpoint row, and NOTIFY."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO checkpoints (size, time, note) VALUES ($1, $2, $3)",
                           size, "2026-12-07T00:00:00.000Z", note)
        await conn.execute("SELECT pg_notify('hotline_log', $1)", f"checkpoint {size}")
    finally:
        await conn.close()


async def grown(follower: Running) -> tuple[Client, int, bytes]:
    """alice sends one message through the follower: her client, and the tree head (size and
    root) once the follower holds it."""
    alice = await follower.client("alice")
    sent = await alice.send(channel="north-south", template="message", body={"text": "t"})
    store = follower.hotline.store
    await until(lambda: store.tree_head()[0] > sent.index, "the follower's head")
    return alice, *store.tree_head()


@pytest.fixture
def follower_home(home: Path, tmp_path: Path) -> Path:
    return tmp_path / "follower"


async def test_a_follower_adopts_the_logs_checkpoints_and_refuses_forged_ones(
        home: Path, follower_home: Path, postgres_url: str) -> None:
    key = load_log_key(home / "keys" / "log.pem")
    async with running_server(home, HOTLINE_STORE_URL=postgres_url, **SLOW_LEADER) as leader:
        shutil.copytree(home, follower_home)  # its home: a copy, with the checkpoint file
        async with running_server(follower_home, HOTLINE_STORE_URL=postgres_url) as follower:
            store, checkpointer = follower.hotline.store, follower.hotline.checkpointer
            assert leader.hotline.store.leading.is_set() and not store.leading.is_set()
            bob = await follower.client("bob")

            # A checkpoint signed with the log key over the follower's own tree: adopted, pushed
            # to its members, and the receipt of alice's message sent.
            alice, size, root = await grown(follower)
            honest = sign_checkpoint(Checkpoint(checkpointer.origin, size, root), key)
            await store_checkpoint(postgres_url, size, honest)
            await until(lambda: bob.checkpoint == honest, "bob got the adopted checkpoint")
            assert checkpointer.latest is not None and checkpointer.latest.size == size
            await until(lambda: size - 1 in alice.receipts, "alice's receipt, from the follower")
            assert store.problem is None

            # Signed by another key: refused, never pushed; /healthz names it.
            _, size, root = await grown(follower)
            forged = sign_checkpoint(Checkpoint(checkpointer.origin, size, root), SigningKey.generate())
            await store_checkpoint(postgres_url, size, forged)
            await until(lambda: store.problem is not None, "the follower refused it")
            assert "does not verify with the log key" in str(store.problem)
            assert checkpointer.latest.size < size and bob.checkpoint == honest


async def test_a_follower_refuses_a_checkpoint_over_another_tree(
        home: Path, follower_home: Path, postgres_url: str) -> None:
    """Signed with the real log key, but over a tree that is not the one in the database: what
    a host that holds the key and rewrote the database would publish."""
    key = load_log_key(home / "keys" / "log.pem")
    async with running_server(home, HOTLINE_STORE_URL=postgres_url, **SLOW_LEADER):
        shutil.copytree(home, follower_home)
        async with running_server(follower_home, HOTLINE_STORE_URL=postgres_url) as follower:
            store, checkpointer = follower.hotline.store, follower.hotline.checkpointer
            held = checkpointer.latest
            _, size, _ = await grown(follower)
            other = sign_checkpoint(Checkpoint(checkpointer.origin, size, bytes(32)), key)
            await store_checkpoint(postgres_url, size, other)
            await until(lambda: store.problem is not None, "the follower refused it")
            assert "signs another tree" in str(store.problem)
            assert checkpointer.latest is held


async def overdue_notices(url: str) -> list[int]:
    """The message index of each overdue notice in the log."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT leaf FROM entries WHERE kind = 'overdue' ORDER BY idx")
    finally:
        await conn.close()
    notices = [decode_leaf(bytes(row[0])) for row in rows]
    return [n.entry for n in notices if isinstance(n, OverdueEntry)]


async def test_deadlines_are_swept_once_by_whichever_server_leads(
        home: Path, follower_home: Path, postgres_url: str) -> None:
    """A drill owes an ack within a second. Sent through a follower, its deadline is swept by
    the leader, once; the notice reaches bob on the follower. The leader stops: the follower,
    whose obligations its feed kept from every server's entries, leads and sweeps the next."""
    add_drill_agreement(home)
    clock = Clock()
    sweep = {"HOTLINE_STORE_URL": postgres_url, "HOTLINE_PROTOCOLS_DEADLINE_SWEEP": "0.05"}
    async with contextlib.AsyncExitStack() as leading:
        leader = await leading.enter_async_context(running_server(home, clock, **sweep))
        shutil.copytree(home, follower_home)
        async with running_server(follower_home, clock, **sweep) as follower:
            alice, bob = await follower.client("alice"), await follower.client("bob")
            first = await alice.send(channel="north-south", template="drill", body={"text": "1"})
            await until(lambda: len(leader.hotline.deadlines) == 1, "the leader owes it")
            clock.offset += timedelta(seconds=2)  # its deadline passes
            assert (await next_overdue(bob)) == first.index
            await until(lambda: len(follower.hotline.deadlines) == 0, "the follower saw it swept")

            await leading.aclose()  # the leader stops: its session, and its lock, end
            await until(follower.hotline.store.leading.is_set, "the follower leads")
            second = await alice.send(channel="north-south", template="drill", body={"text": "2"})
            clock.offset += timedelta(seconds=2)
            assert (await next_overdue(bob)) == second.index
            assert await overdue_notices(postgres_url) == [first.index, second.index]


async def next_overdue(client: Client) -> int:
    """The message index of the next overdue notice delivered to ``client``."""
    async with asyncio.timeout(WAIT):
        while True:
            frame = await client.deliveries.get()
            if isinstance(frame, Deliver) and isinstance(frame.entry, OverdueEntry):
                return frame.entry.entry
