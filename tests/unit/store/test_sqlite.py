"""The store on a real SQLite file: append-only (acceptance 5), group commit, idempotent ids."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline.store import Store
from tests.log_entries import envelope as envelope_entry
from tests.log_entries import health, overdue
from tests.log_entries import rejected as entry

KEY = bytes(range(32))  # the row-MAC key (the server derives it from the log key)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "hotline.db", mac_key=KEY)
    try:
        yield opened
    finally:
        await opened.close()


async def test_indexes_are_consecutive_and_leaves_hold_them(store: Store) -> None:
    results = await asyncio.gather(*(store.append(entry(n)) for n in range(100)))
    assert [r.stored.index for r in results] == list(range(100))
    assert all(r.stored.entry.index == r.stored.index for r in results)
    assert results[5].stored.leaf == (b'{"channel":"c","code":"template.invalid","index":5,'
                                      b'"kind":"rejected","member":"m5","party":"p","reason":"r",'
                                      b'"template":"t","time":"2026-11-27T00:00:00.000Z"}')
    assert await store.size() == 100
    assert [e.index for e in await store.entries(channel="c", after=97)] == [98, 99]


async def test_same_envelope_id_is_stored_once(store: Store) -> None:
    first, again, concurrent = await asyncio.gather(
        store.append(entry(1), envelope_id="A" * 22), store.append(entry(2), envelope_id="A" * 22),
        store.append(entry(3), envelope_id="A" * 22))
    assert not first.duplicate and again.duplicate and concurrent.duplicate
    assert again.stored == first.stored == concurrent.stored
    assert await store.size() == 1
    assert (await store.by_envelope_id("A" * 22)) == first.stored


async def test_entries_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "hotline.db"
    store = await Store.open(path, mac_key=KEY)
    await store.append(entry(1))
    await store.close()
    store = await Store.open(path, mac_key=KEY)
    try:
        assert (await store.entry(0)).entry.member == "m1"  # type: ignore[union-attr]
        assert (await store.append(entry(2))).stored.index == 1
    finally:
        await store.close()


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


async def test_tree_and_proofs_match_the_reference(store: Store) -> None:
    from hotline.tlog import leaf_hash, root_of, verify_consistency, verify_inclusion
    results = await asyncio.gather(*(store.append(entry(n)) for n in range(37)))
    hashes = [leaf_hash(r.stored.leaf) for r in results]
    size, root = store.tree_head()
    assert (size, root) == (37, root_of(hashes))
    assert await store.root_at(20) == root_of(hashes[:20])
    for index in (0, 19, 36):
        proof = await store.inclusion_proof(index, size)
        verify_inclusion(leaf_hash=hashes[index], index=index, size=size, proof=proof, root=root)
    proof = await store.consistency_proof(20, 37)
    verify_consistency(old_size=20, new_size=37, old_root=root_of(hashes[:20]), new_root=root,
                       proof=proof)


async def test_tree_is_rebuilt_for_leaves_logged_before_it(tmp_path: Path) -> None:
    """A database from before the tree existed gets its nodes at the next open."""
    from hotline.tlog import leaf_hash, root_of
    path = tmp_path / "hotline.db"
    store = await Store.open(path, mac_key=KEY)
    leaves = [(await store.append(entry(n))).stored.leaf for n in range(5)]
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE nodes")  # as if written by the first release
    conn.close()
    store = await Store.open(path, mac_key=KEY)
    try:
        assert store.tree_head() == (5, root_of([leaf_hash(leaf) for leaf in leaves]))
    finally:
        await store.close()


async def test_selected_reads_only_the_kinds_asked_for_in_order(tmp_path: Path) -> None:
    """A start-up replay reads messages, acks and notices by index, never the heartbeats
    between them; a log written before envelope kinds were recorded still gives all its envelopes."""
    path = tmp_path / "hotline.db"
    store = await Store.open(path, mac_key=KEY)
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
    store = await Store.open(path, mac_key=KEY)  # adds the column back; the older rows have it empty
    try:
        assert await picked() == [0, 1, 2, 3, 4, 5]
        await store.append(envelope_entry(7, "heartbeat"))
        await store.append(envelope_entry(8, "message"))
        assert await picked(after=5) == [8]
    finally:
        await store.close()
