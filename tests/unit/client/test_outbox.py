"""The client's outbox (docs/ARCHITECTURE.md "Storage"): an envelope is stored signed before it is sent, kept
until
the server accepted it, and survives closing the file; refused ones are kept but never resent;
the resume cursor only moves forward."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hotline.client.outbox import Outbox, OutboxState, StagedFile
from hotline.envelope import AckKind, Envelope, Kind, ack_id, new_envelope_id
from hotline.errors import StoreError
from hotline.keys import SigningKey

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
KEY = SigningKey.from_seed(bytes(range(32)))


def envelope(n: int, *, text: str = "hello", kind: Kind = Kind.MESSAGE, reply_to: str | None = None,
             id: str | None = None) -> Envelope:
    body = {"ack": "received"} if kind is Kind.ACK else {"text": f"{text} {n}"}
    return Envelope.build(id=id or new_envelope_id(n.to_bytes(16, "big")), kind=kind,
                          channel="north-south", sender="alice", template="message",
                          precedence="ROUTINE", created=NOW, body=body, reply_to=reply_to)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox.open(tmp_path / "state" / "alice.outbox.db")
    yield box
    box.close()


def test_put_stores_the_signed_envelope_as_pending(outbox: Outbox) -> None:
    env = envelope(1)
    sig = env.sign(KEY)
    item = outbox.put(env, sig, now=NOW)
    assert item.state is OutboxState.PENDING and item.index is None
    assert item.envelope == env and item.envelope.canonical == env.canonical and item.sig == sig
    assert outbox.get(env.id) == item
    assert [i.id for i in outbox.pending()] == [env.id]
    # the stored signature still verifies the stored bytes
    item.envelope.verify(KEY.public_key, item.sig)


def test_pending_keeps_the_order_composed_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "box.db"
    box = Outbox.open(path)
    ids = []
    for n in (5, 1, 3):
        env = envelope(n)
        box.put(env, env.sign(KEY), now=NOW)
        ids.append(env.id)
    box.close()
    again = Outbox.open(path)
    try:
        assert [i.id for i in again.pending()] == ids
    finally:
        again.close()


def test_the_files_an_envelope_names_stay_with_it_until_it_is_settled(tmp_path: Path) -> None:
    """Issue 19: staged beside the outbox, listed with the envelope in one transaction, kept
    across a reopening (a crash), deleted once the server accepted or refused it."""
    path = tmp_path / "state" / "alice.outbox.db"
    box = Outbox.open(path)
    first, second = envelope(1), envelope(2)
    folders = [box.files_dir(first.id), box.files_dir(second.id)]
    assert folders[0] == tmp_path / "state" / "alice.outbox.files" / first.id
    staged = []
    for env, folder in zip((first, second), folders, strict=True):
        folder.mkdir(parents=True)
        (folder / "files-0").write_bytes(b"content")
        staged.append(StagedFile(str(folder / "files-0"), "A" * 43, 7))
        box.put(env, env.sign(KEY), now=NOW, files=[staged[-1]])
    box.close()
    box = Outbox.open(path)
    try:
        assert box.files(first.id) == [staged[0]] and box.files(envelope(3).id) == []
        box.mark_accepted(first.id, 12, now=NOW)
        box.mark_refused(second.id, "attachment.refused", "too large", now=NOW)
        assert box.files(first.id) == [] == box.files(second.id)
        assert not folders[0].exists() and not folders[1].exists()
    finally:
        box.close()


def test_accepted_leaves_the_pending_list_and_keeps_its_index(outbox: Outbox) -> None:
    first, second = envelope(1), envelope(2)
    for env in (first, second):
        outbox.put(env, env.sign(KEY), now=NOW)
    outbox.mark_accepted(first.id, 42, now=NOW)
    outbox.mark_accepted(first.id, 42, now=NOW)  # a duplicate `accepted` (a resend) changes nothing
    assert [i.id for i in outbox.pending()] == [second.id]
    accepted = outbox.get(first.id)
    assert accepted is not None and accepted.state is OutboxState.ACCEPTED and accepted.index == 42
    assert [i.id for i in outbox.items()] == [first.id, second.id]  # nothing is deleted
    with pytest.raises(StoreError) as caught:
        outbox.mark_accepted(first.id, 43, now=NOW)  # another index for the same id: a fault
    assert caught.value.code == "store.outbox_conflict"


def test_refused_is_kept_with_its_reason_and_never_resent(outbox: Outbox) -> None:
    env = envelope(1)
    outbox.put(env, env.sign(KEY), now=NOW)
    outbox.mark_refused(env.id, "norm.rate_limited", "too many", now=NOW)
    item = outbox.get(env.id)
    assert item is not None and item.state is OutboxState.REFUSED
    assert (item.code, item.reason) == ("norm.rate_limited", "too many")
    assert outbox.pending() == []
    outbox.mark_accepted(env.id, 7, now=NOW)  # a refusal is final
    item = outbox.get(env.id)
    assert item is not None and item.state is OutboxState.REFUSED


def test_putting_the_same_envelope_twice_is_a_no_op_but_another_with_its_id_is_refused(
        outbox: Outbox) -> None:
    env = envelope(1)
    first = outbox.put(env, env.sign(KEY), now=NOW)
    assert outbox.put(env, env.sign(KEY), now=NOW) == first
    other = envelope(1, text="changed")
    assert other.id == env.id
    with pytest.raises(StoreError) as caught:
        outbox.put(other, other.sign(KEY), now=NOW)
    assert caught.value.code == "store.outbox_conflict"


def test_an_ack_is_found_by_its_derived_id(outbox: Outbox) -> None:
    message = envelope(1)
    ident = ack_id(party="north", member="alice", reply_to=message.id, ack=AckKind.RECEIVED)
    ack = envelope(2, kind=Kind.ACK, reply_to=message.id, id=ident)
    outbox.put(ack, ack.sign(KEY), now=NOW)
    found = outbox.get(ident)
    assert found is not None and found.envelope.kind is Kind.ACK


def test_unknown_ids_are_refused(outbox: Outbox) -> None:
    with pytest.raises(StoreError) as caught:
        outbox.mark_accepted("A" * 22, 1, now=NOW)
    assert caught.value.code == "store.outbox_unknown"


def test_the_resume_cursor_only_moves_forward(outbox: Outbox) -> None:
    assert outbox.last_seen("north-south") is None
    outbox.see("north-south", 10)
    outbox.see("north-south", 4)  # an older entry shown late does not move it back
    outbox.see("other", 2)
    assert outbox.last_seen("north-south") == 10 and outbox.last_seen("other") == 2


def test_the_file_is_durable_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "box.db"
    box = Outbox.open(path)
    try:
        assert box._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert box._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        env = envelope(1)
        box.put(env, env.sign(KEY), now=NOW)
        # committed at once: another connection (another process, after a crash) sees it
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT id, state FROM outbox").fetchall() == [(env.id, "pending")]
    finally:
        box.close()


def test_a_file_that_is_not_an_outbox_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        Outbox.open(path)


def test_memos_are_kept_across_reopening_and_an_unreadable_one_is_none(tmp_path: Path) -> None:
    path = tmp_path / "alice.outbox.db"
    box = Outbox.open(path)
    assert box.recall("log_head") is None
    box.remember("log_head", {"size": 8, "root": "ab"})
    box.remember("log_head", {"size": 9, "root": "cd"})  # replaced, not added
    box.close()
    box = Outbox.open(path)
    assert box.recall("log_head") == {"size": 9, "root": "cd"}
    box.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE memo SET value = '{not json' WHERE name = 'log_head'")
    box = Outbox.open(path)
    assert box.recall("log_head") is None  # a cache: its reader starts afresh
    box.close()


def test_outbox_files_are_private(tmp_path: Path) -> None:
    """Issue 11, defect 14: the outbox holds every envelope the officer wrote. It and its -wal
    and -shm are 0600 in a 0700 folder whatever the umask, and an outbox made world-readable
    by an earlier release is tightened when opened."""
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "home" / "state" / "alice.outbox.db"
        box = Outbox.open(path)
        env = envelope(1)
        box.put(env, env.sign(KEY), now=NOW)  # a write: the -wal and -shm exist while open
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        assert [stat.S_IMODE(f.stat().st_mode) for f in files] == [0o600] * 3
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        box.close()

        older = tmp_path / "older.outbox.db"
        older.touch(mode=0o644)
        os.chmod(older, 0o644)
        Outbox.open(older).close()
        assert stat.S_IMODE(older.stat().st_mode) == 0o600
    finally:
        os.umask(old_umask)
