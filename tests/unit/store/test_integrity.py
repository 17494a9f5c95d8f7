"""The start-up check (``hotline.store.integrity``) on real SQLite files: a database is accepted
only if it holds every checkpoint the log published (the checkpoint file, its own latest, each
witness's latest cosigned one) and every row beyond the latest carries the server's row MAC."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hotline.entries import RejectedEntry
from hotline.errors import StoreError
from hotline.keys import SigningKey
from hotline.store import Store, open_store, row_mac_key
from hotline.store.checkpointfile import (
    SavedCheckpoint,
    checkpoint_path,
    read_checkpoint_file,
    write_checkpoint_file,
)
from hotline.store.integrity import verify_store
from hotline.tlog import Checkpoint, NoteVerifier, sign_checkpoint
from tests.log_entries import rejected

ORIGIN = "hotline.test"
LOG_KEY = SigningKey.from_seed(bytes(range(32)))
VERIFIER = NoteVerifier(name=ORIGIN, public_key=LOG_KEY.public_key.raw)
TIME = "2026-12-01T00:00:00.000Z"


def entry(n: int) -> RejectedEntry:
    return rejected(n, time=TIME)


async def reopen(path: Path, key: SigningKey = LOG_KEY) -> Store:
    return await open_store(path, mac_key=row_mac_key(key))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await reopen(tmp_path / "hotline.db")
    for n in range(10):
        await opened.append(entry(n))
    try:
        yield opened
    finally:
        await opened.close()


async def note(store: Store, size: int, *, root: bytes | None = None) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, root or await store.root_at(size)), LOG_KEY)


async def publish(store: Store, size: int, *, root: bytes | None = None) -> str:
    """What the checkpointer does: the file first, then the database."""
    text = await note(store, size, root=root)
    write_checkpoint_file(checkpoint_path(store.path), SavedCheckpoint(size, TIME, text))
    await store.add_checkpoint(size, TIME, text)
    return text


async def refused(store: Store) -> StoreError:
    with pytest.raises(StoreError) as caught:
        await verify_store(store, file=checkpoint_path(store.path), verifier=VERIFIER)
    assert "\n" not in caught.value.message  # one line for `hotline serve`
    return caught.value


async def test_a_log_that_grew_from_its_checkpoints_is_accepted(store: Store) -> None:
    await publish(store, 8)
    await store.add_cosignature(8, "north-agent", "— north-agent line")
    trusted = await verify_store(store, file=checkpoint_path(store.path), verifier=VERIFIER)
    assert trusted is not None and trusted.size == 8  # rows 8 and 9: committed, MACs verify


async def test_rows_beyond_the_checkpoint_need_the_servers_mac(store: Store, tmp_path: Path) -> None:
    await publish(store, 10)
    await store.close()
    other = await reopen(store.path, SigningKey.from_seed(bytes(32)))  # not the log's key
    await other.append(entry(10))
    await other.close()
    reopened = await reopen(store.path)
    try:
        error = await refused(reopened)
    finally:
        await reopened.close()
    assert error.code == "store.unauthenticated_rows"
    assert error.message.startswith("entry 10 is beyond the last signed checkpoint (10 entries) "
                                    "but does not carry the row MAC of a server holding the log key")


async def test_a_smaller_database_is_rolled_back(store: Store) -> None:
    await publish(store, 10)
    write_checkpoint_file(checkpoint_path(store.path),
                          SavedCheckpoint(12, "2026-12-01T01:02:03.000Z",
                                          await note(store, 12, root=b"\x01" * 32)))
    error = await refused(store)
    assert error.code == "store.rolled_back"
    assert error.message.startswith(
        "the database holds 10 entries but checkpoint 12 was signed and published at "
        "2026-12-01T01:02:03.000Z (the checkpoint file ")
    assert ": 2 accepted entries are missing. Restore " in error.message


async def test_another_root_at_a_published_size_is_inconsistent(store: Store) -> None:
    await publish(store, 9, root=b"\x02" * 32)
    error = await refused(store)
    assert error.code == "store.inconsistent"
    assert error.message.startswith("the database's tree at size 9 is not the one checkpoint 9 "
                                    f"published at {TIME} (the checkpoint file ")


async def test_every_witness_s_latest_cosigned_checkpoint_must_be_held(store: Store) -> None:
    await store.add_checkpoint(7, TIME, await note(store, 7, root=b"\x03" * 32))  # another root
    await store.add_cosignature(7, "south-agent", "— south-agent line")
    await publish(store, 9)  # the file and the database's latest are fine
    error = await refused(store)
    assert error.code == "store.inconsistent"
    assert "checkpoint 7 published at" in error.message
    assert "(cosigned by witness south-agent)" in error.message


async def test_a_cosigned_checkpoint_the_database_lacks_is_inconsistent(store: Store) -> None:
    await publish(store, 9)
    await store.add_cosignature(10, "north-agent", "— north-agent line")
    error = await refused(store)
    assert (error.code, error.message.split(".")[0]) == (
        "store.inconsistent", "witness north-agent cosigned checkpoint 10, which the database "
        "does not hold")


async def test_a_checkpoint_file_signed_by_another_key_is_refused(store: Store) -> None:
    await publish(store, 9)
    forged = sign_checkpoint(Checkpoint(ORIGIN, 9, await store.root_at(9)),
                             SigningKey.from_seed(bytes(32)))
    write_checkpoint_file(checkpoint_path(store.path), SavedCheckpoint(9, TIME, forged))
    assert (await refused(store)).code == "store.checkpoint_file"


async def test_a_missing_checkpoint_file_is_refused_unless_upgrading(store: Store) -> None:
    await publish(store, 9)
    checkpoint_path(store.path).unlink()
    error = await refused(store)
    assert error.code == "store.checkpoint_missing"
    await store.close()

    # A database of the release before row MACs (and the checkpoint file): its rows have no MAC,
    # and at its first start they are the server's (the checkpoint then signed covers them).
    with sqlite3.connect(store.path) as db:
        db.execute("ALTER TABLE entries DROP COLUMN mac")
        db.executescript("DROP TRIGGER entries_next_index")
        db.execute("INSERT INTO entries (idx, time, kind, leaf) VALUES (10, ?, 'rejected', ?)",
                   (TIME, b'{"index":10,"kind":"rejected","time":"' + TIME.encode() + b'"}'))
    upgraded = await reopen(store.path)
    try:
        assert upgraded.upgraded and upgraded.tree_head()[0] == 11
        trusted = await verify_store(upgraded, file=checkpoint_path(store.path), verifier=VERIFIER)
        assert trusted is not None and trusted.size == 9
    finally:
        await upgraded.close()
    again = await reopen(store.path)  # the next start is no upgrade: the file is required
    try:
        assert not again.upgraded
        assert (await refused(again)).code == "store.checkpoint_missing"
    finally:
        await again.close()


async def test_a_tree_that_does_not_match_the_rows_beyond_the_checkpoint_is_damaged(
        store: Store) -> None:
    await publish(store, 8)
    await store.close()
    with sqlite3.connect(store.path) as db:  # the node over rows 8 and 9: the next root's part
        db.executescript("DROP TRIGGER nodes_no_update")
        db.execute("UPDATE nodes SET hash = ? WHERE level = 1 AND idx = 4", (b"\x04" * 32,))
    reopened = await reopen(store.path)
    try:
        error = await refused(reopened)
    finally:
        await reopened.close()
    assert (error.code, error.message) == (
        "store.damaged", "the log's tree over entries 8..9 does not match their leaves")


async def test_quick_check_refuses_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "hotline.db"
    store = await reopen(path)
    await store.append(entry(0))
    await store.close()
    data = bytearray(path.read_bytes())
    data[4096 + 5:4096 + 9] = b"\xff\xff\xff\xff"  # page 2's header: cell count and more
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as caught:
        await reopen(path)
    assert caught.value.code == "store.damaged"
    assert caught.value.message.startswith(f"PRAGMA quick_check found damage in {path}: *** in "
                                           "database main *** Page 2: "), caught.value.message


def test_the_checkpoint_file_is_replaced_atomically_and_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "hotline.db.checkpoint"
    write_checkpoint_file(path, SavedCheckpoint(3, TIME, "note\n"))
    write_checkpoint_file(path, SavedCheckpoint(4, TIME, "note\n"))
    assert read_checkpoint_file(path) == SavedCheckpoint(4, TIME, "note\n")
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    path.write_text('{"size": 4.0, "time": "x", "note": "y"}')
    with pytest.raises(StoreError) as caught:
        read_checkpoint_file(path)
    assert caught.value.code == "store.checkpoint_file"
