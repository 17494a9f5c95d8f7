"""The PostgreSQL engine (issue 17): the database itself keeps the log append-only, whoever
connects (acceptance 3: the same statements as SQLite's refused, and TRUNCATE); the schema is
versioned and migrated once however many servers start together; two servers sharing one
database give out indexes densely and never twice; damage and an unreachable database are typed
errors that never show the password."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from hotline.entries import leaf_bytes, with_index
from hotline.errorcodes import Code
from hotline.errors import StoreError
from hotline.store import Store, open_store
from hotline.store.postgres import MIGRATIONS, SCHEMA_VERSION, public_url
from hotline.tlog import leaf_hash, root_of
from tests.log_entries import rejected as entry

KEY = bytes(range(32))


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    opened = await open_store(postgres_url, mac_key=KEY)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.mark.parametrize("statement", [
    "UPDATE entries SET leaf = '\\x00' WHERE idx = 0",
    "DELETE FROM entries WHERE idx = 0",
    "DELETE FROM entries",
    "TRUNCATE entries",
    "INSERT INTO entries (idx, time, kind, leaf) VALUES (0, 't', 'k', '\\x00') "
    "ON CONFLICT (idx) DO UPDATE SET leaf = EXCLUDED.leaf",
    "INSERT INTO entries (idx, time, kind, leaf) VALUES (5, 't', 'k', '\\x00')",
    "UPDATE nodes SET hash = '\\x00'",
    "DELETE FROM nodes",
    "TRUNCATE nodes",
    "UPDATE checkpoints SET note = 'forged'",
    "DELETE FROM checkpoints",
    "DELETE FROM cosignatures",
    "TRUNCATE checkpoints, cosignatures",
])
async def test_the_database_refuses_any_change_but_the_next_entry(store: Store, postgres_url: str,
                                                                  statement: str) -> None:
    await store.append(entry(1))
    await store.add_checkpoint(1, "2026-11-27T00:00:00.000Z", "note")
    await store.add_cosignature(1, "w", "line")
    conn = await asyncpg.connect(postgres_url)
    try:
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute(statement)
    finally:
        await conn.close()
    assert (await store.entry(0)).entry.member == "m1"  # type: ignore[union-attr]
    assert await store.size() == 1 and await store.checkpoint(1) == "note"
    assert (await store.append(entry(2))).stored.index == 1  # and the log goes on


async def test_the_schema_is_versioned_and_made_once_by_servers_starting_together(
        postgres_url: str) -> None:
    stores = await asyncio.gather(*(open_store(postgres_url, mac_key=KEY, lead=False)
                                    for _ in range(3)))
    try:
        conn = await asyncpg.connect(postgres_url)
        try:
            assert await conn.fetch("SELECT version FROM hotline_schema") == [(SCHEMA_VERSION,)]
            await conn.execute("INSERT INTO hotline_schema (version) VALUES ($1)", SCHEMA_VERSION + 1)
        finally:
            await conn.close()
    finally:
        for opened in stores:
            await opened.close()
    with pytest.raises(StoreError) as refused:  # a newer release made it: never guessed at
        await open_store(postgres_url, mac_key=KEY)
    assert refused.value.code == Code.STORE_OPEN_FAILED and "newer" in refused.value.message


async def test_two_servers_on_one_database_give_out_each_index_once(postgres_url: str) -> None:
    """Should two servers ever append at once (neither leading), the sequencer's lock on the log
    head still gives out each index once."""
    a = await open_store(postgres_url, mac_key=KEY, lead=False)
    b = await open_store(postgres_url, mac_key=KEY, lead=False)
    try:
        results = await asyncio.gather(*(store.append(entry(n))
                                         for n in range(60) for store in (a, b)))
        assert sorted(r.stored.index for r in results) == list(range(120))
        leaves = [r.stored.leaf for r in sorted(results, key=lambda r: r.stored.index)]
        await a.append(entry(1000))
        await b.append(entry(1001))  # each follows the other's appends into its tree
        last = (await b.entry(121)), (await a.entry(120))
        leaves += [last[1].leaf, last[0].leaf]  # type: ignore[union-attr]
        assert b.tree_head() == (122, root_of([leaf_hash(leaf) for leaf in leaves]))
        assert await a.root_at(120) == await b.root_at(120)
    finally:
        await a.close()
        await b.close()


async def test_rows_removed_behind_the_triggers_back_are_found_at_open(postgres_url: str) -> None:
    """An owner of the database can switch the triggers off: the next open finds the head, the
    entries and the tree disagreeing, and refuses to serve."""
    store = await open_store(postgres_url, mac_key=KEY)
    for n in range(5):
        await store.append(entry(n))
    await store.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("ALTER TABLE entries DISABLE TRIGGER ALL")
        await conn.execute("DELETE FROM entries WHERE idx >= 3")
    finally:
        await conn.close()
    with pytest.raises(StoreError) as refused:
        await open_store(postgres_url, mac_key=KEY)
    assert refused.value.code == Code.STORE_DAMAGED and "lost or removed" in refused.value.message


async def test_an_unreachable_database_is_a_typed_error_without_its_password(
        postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    wrong = urlunsplit(parts._replace(netloc="hotline:s3cret@", path="/no_such_database"))
    with pytest.raises(StoreError) as refused:
        await open_store(wrong, mac_key=KEY)
    assert refused.value.code == Code.STORE_OPEN_FAILED
    assert "s3cret" not in refused.value.message and "***" in refused.value.message
    assert public_url("postgresql://u:pw@db.example:5433/h") == "postgresql://u:***@db.example:5433/h"


async def test_one_store_leads_and_another_follows_until_it_is_gone(store: Store,
                                                                    postgres_url: str) -> None:
    assert store.leading.is_set()
    told: list[str] = []
    follower = await open_store(postgres_url, mac_key=KEY, standby=told.append)
    try:  # it opens at once, and appends beside the leader, but does not lead
        assert not follower.leading.is_set() and len(told) == 1 and "leads" in told[0]
        await store.append(entry(1))
        assert (await follower.append(entry(2))).stored.index == 1
        await store.close()  # the leader stops: the follower takes the lead by itself
        await asyncio.wait_for(follower.leading.wait(), 10)
        assert len(told) == 1 and await follower.refresh() == 2
        reader = await open_store(postgres_url)  # a reader (no row-MAC key) never leads
        assert await reader.size() == 2 and not reader.leading.is_set()
        await reader.close()
    finally:
        await follower.close()


async def test_a_leader_whose_session_ends_loses_the_lead_and_appends_no_more(
        store: Store, postgres_url: str) -> None:
    follower = await open_store(postgres_url, mac_key=KEY, standby=lambda _: None)
    admin = await asyncpg.connect(postgres_url)
    try:  # what a database restart, a failover or a cut network does to the leader's session
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = "
                            "'advisory' AND granted AND pid <> pg_backend_pid()")
        await asyncio.wait_for(store.session_lost.wait(), 10)
        assert store.problem is not None and "lead session" in store.problem
        with pytest.raises(StoreError) as refused:
            await store.append(entry(1))
        assert refused.value.code == Code.STORE_COMMIT_FAILED and "ended" in refused.value.message
        await asyncio.wait_for(follower.leading.wait(), 10)  # the follower leads now
        assert (await follower.append(entry(2))).stored.index == 0
        assert not follower.session_lost.is_set()
    finally:
        await admin.close()
        await follower.close()


async def test_a_follower_whose_listening_session_ends_stops(store: Store, postgres_url: str) -> None:
    """A follower that can no longer hear other servers' commits would fall silently behind."""
    follower = await open_store(postgres_url, mac_key=KEY, standby=lambda _: None)
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                            "query LIKE 'LISTEN%' AND pid <> pg_backend_pid()")
        await asyncio.wait_for(follower.session_lost.wait(), 10)
        assert follower.problem is not None and "listening session" in follower.problem
    finally:
        await admin.close()
        await follower.close()


async def test_a_server_hears_of_another_servers_commits_and_follows_its_tree(
        postgres_url: str) -> None:
    """The ground of the fan-out between servers: each commit NOTIFYs the log's new size; a
    store that hears it brings its head up to the database's, the same tree as the writer's."""
    a = await open_store(postgres_url, mac_key=KEY, lead=False)
    b = await open_store(postgres_url, mac_key=KEY, lead=False)
    try:
        for n in range(3):
            await b.append(entry(n))
        await asyncio.wait_for(a.moved.wait(), 10)  # told by b's commits, not polled
        assert await a.size() == 0  # nothing moves until it refreshes
        assert await a.refresh() == 3 and a.tree_head() == b.tree_head()
        assert not a.moved.is_set()
        assert [e.entry.member for e in await a.entries(after=-1)] == ["m0", "m1", "m2"]
        assert (await a.append(entry(3))).stored.index == 3  # and appends after them
        assert not a.moved.is_set()  # its own commit tells it nothing new
        await asyncio.wait_for(b.moved.wait(), 10)
        assert await b.refresh() == 4 and b.tree_head() == a.tree_head()
        assert await b.consistency_proof(3, 4) == await a.consistency_proof(3, 4)
    finally:
        await a.close()
        await b.close()


async def test_a_database_that_went_back_is_refused_on_refresh(postgres_url: str) -> None:
    store = await open_store(postgres_url, mac_key=KEY, lead=False)
    try:
        for n in range(3):
            await store.append(entry(n))
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute("UPDATE log_head SET size = 1")  # the head is not append-only
        finally:
            await conn.close()
        with pytest.raises(StoreError) as refused:
            await store.refresh()
        assert refused.value.code == Code.STORE_DAMAGED and "went back" in refused.value.message
        assert store.problem is not None
    finally:
        await store.close()


async def test_a_row_no_server_wrote_never_enters_a_servers_tree(postgres_url: str) -> None:
    """Whoever can write to the database, without the log key, can add the next row, its tree
    nodes, move the head and NOTIFY. The row carries no row MAC of the log key: a server that
    follows the log refuses it, on refresh and before appending after it, so no checkpoint it
    signs covers it; /healthz names it."""
    a = await open_store(postgres_url, mac_key=KEY, lead=False)
    b = await open_store(postgres_url, mac_key=KEY, lead=False)
    try:
        await a.append(entry(0))
        assert await b.refresh() == 1  # a server's row: followed
        leaf = leaf_bytes(with_index(entry(1), 1))
        nodes = (await a.frontier_at(1)).append(leaf_hash(leaf))
        rogue = await asyncpg.connect(postgres_url)
        try:
            await rogue.execute("INSERT INTO entries (idx, time, kind, channel, leaf, mac) VALUES "
                                "(1, $1, 'rejected', 'c', $2, $3)", "2026-11-27T00:00:00.000Z",
                                leaf, bytes(32))
            await rogue.executemany("INSERT INTO nodes (level, idx, hash) VALUES ($1, $2, $3)", nodes)
            await rogue.execute("UPDATE log_head SET size = 2")
            await rogue.execute("SELECT pg_notify('hotline_log', '2')")
        finally:
            await rogue.close()
        await asyncio.wait_for(b.moved.wait(), 10)
        with pytest.raises(StoreError) as refused:
            await b.refresh()
        assert refused.value.code == Code.STORE_UNAUTHENTICATED_ROWS
        assert "entry 1" in refused.value.message and "row MAC" in refused.value.message
        with pytest.raises(StoreError) as failed:  # nor does it append after it
            await b.append(entry(2))
        assert "row MAC" in failed.value.message
        assert b.tree_head()[0] == 1 and b.problem is not None and "entry 1" in b.problem
        assert (await b.entry(1)) is not None  # it is there; nothing this server holds covers it
    finally:
        await a.close()
        await b.close()


async def test_a_database_of_schema_1_is_upgraded_in_place(postgres_url: str) -> None:
    """A database made by the first release on PostgreSQL (schema 1) gets the tables of the
    later ones (saved state, attachments) at the next open; its log is untouched."""
    conn = await asyncpg.connect(postgres_url)
    try:
        async with conn.transaction():
            for statement in MIGRATIONS[1]:
                await conn.execute(statement)
    finally:
        await conn.close()
    upgraded = await open_store(postgres_url, mac_key=KEY)
    try:
        await upgraded.append(entry(1))
        await upgraded.save_state("obligations", b"{}")
        assert await upgraded.load_state("obligations") == b"{}"
    finally:
        await upgraded.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        assert await conn.fetch("SELECT version FROM hotline_schema") == [(SCHEMA_VERSION,)]
    finally:
        await conn.close()
