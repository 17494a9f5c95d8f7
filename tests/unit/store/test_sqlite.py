"""The SQLite engine: append-only triggers, WAL, a tree rebuilt for a log from before it, a log
from before envelope kinds (what every engine does: ``test_engines.py``)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline.errorcodes import Code
from hotline.errors import StoreError
from hotline.store import Store, open_store
from tests.log_entries import envelope as envelope_entry
from tests.log_entries import health, overdue
from tests.log_entries import rejected as entry

KEY = bytes(range(32))  # the row-MAC key (the server derives it from the log key)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(tmp_path / "hotline.db", mac_key=KEY)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.mark.parametrize("statement", [
    "UPDATE entries SET leaf = x'00' WHERE idx = 0",
    "DELETE FROM entries WHERE idx = 0",
    "DELETE FROM entries",
    "INSERT OR REPLACE INTO entries (idx, time, kind, leaf) VALUES (0, 't', 'k', x'00')",
    "INSERT INTO entries (idx, time, kind, leaf) VALUES (5, 't', 'k', x'00')",
])
async def test_entries_table_is_append_only(store: Store, statement: str) -> None:
    await store.append(entry(1))
    conn = sqlite3.connect(store.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement)
    finally:
        conn.close()
    assert (await store.entry(0)).entry.member == "m1"  # type: ignore[union-attr]
    assert await store.size() == 1


async def test_durability_settings(store: Store) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_tree_is_rebuilt_for_leaves_logged_before_it(tmp_path: Path) -> None:
    """A database from before the tree existed gets its nodes at the next open."""
    from hotline.tlog import leaf_hash, root_of
    path = tmp_path / "hotline.db"
    store = await open_store(path, mac_key=KEY)
    leaves = [(await store.append(entry(n))).stored.leaf for n in range(5)]
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE nodes")  # as if written by the first release
    conn.close()
    store = await open_store(path, mac_key=KEY)
    try:
        assert store.tree_head() == (5, root_of([leaf_hash(leaf) for leaf in leaves]))
    finally:
        await store.close()


async def test_selected_reads_only_the_kinds_asked_for_in_order(tmp_path: Path) -> None:
    """A start-up replay reads messages, acks and notices by index, never the heartbeats
    between them; a log written before envelope kinds were recorded still gives all its envelopes."""
    path = tmp_path / "hotline.db"
    store = await open_store(path, mac_key=KEY)
    kinds = ["heartbeat", "message", "echo", "ack", "heartbeat"]
    for n, kind in enumerate(kinds):
        await store.append(envelope_entry(n, kind))
    await store.append(overdue())
    await store.append(health())

    async def picked(after: int = -1) -> list[int]:
        return [e.index async for e in store.selected(after=after, envelope_kinds=("ack", "message"),
                                                      kinds=("overdue",))]
    assert await picked() == [1, 3, 5]
    assert await picked(after=1) == [3, 5]
    await store.close()

    # as if the first two entries had been logged by a release without the column
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX entries_envelope_kind")
    conn.execute("ALTER TABLE entries DROP COLUMN envelope_kind")
    conn.close()
    store = await open_store(path, mac_key=KEY)  # adds the column back; the older rows have it empty
    try:
        assert await picked() == [0, 1, 2, 3, 4, 5]
        await store.append(envelope_entry(7, "heartbeat"))
        await store.append(envelope_entry(8, "message"))
        assert await picked(after=5) == [8]
    finally:
        await store.close()


async def test_a_leaf_edited_in_as_text_is_damage_naming_its_index(store: Store) -> None:
    await store.append(entry(1))
    conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
    try:
        conn.execute("DROP TRIGGER entries_no_update")
        conn.execute("UPDATE entries SET leaf = CAST(leaf AS TEXT) WHERE idx = 0")
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(StoreError) as caught:
        await store.entry(0)
    assert caught.value.code == Code.STORE_DAMAGED and "entry 0" in caught.value.message
    assert store.problem is not None  # /healthz reports it
