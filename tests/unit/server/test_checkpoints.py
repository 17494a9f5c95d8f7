"""hotline.server.checkpoints on a real SQLite store and a real hub: one checkpoint per new tree
head, written to the checkpoint file and pushed to every member; receipts that prove inclusion;
never two inconsistent checkpoints; and cosignatures heard only from the witnesses an agreement
names, one each.

The roster is built here with fixed keys: north's agent ``relay`` is a named witness; south's
agent, also called ``relay``, is not (names are per party)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hotline.audit.records import CheckpointNote
from hotline.entries import RejectedEntry, roster_entry
from hotline.errors import HotlineError, LogError
from hotline.keys import SigningKey
from hotline.roster import Member, Role, Roster, decode_document, enrollment, sign_document
from hotline.server.checkpoints import Checkpointer
from hotline.server.hub import Connection, Hub
from hotline.store import Store, open_store
from hotline.store.checkpointfile import read_checkpoint_file
from hotline.times import format_time
from hotline.tlog import Checkpoint, NoteVerifier, cosign, leaf_hash, verify_checkpoint, verify_inclusion
from hotline.tlog.note import parse_note

ORIGIN = "checkpoints.test"
T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
STAMP = int(T0.timestamp())


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(f"checkpoints/{label}".encode()).digest())


AUTH = {p: key(f"authority/{p}") for p in ("north", "south")}
LOG = key("log")
LOG_KEY = NoteVerifier(name=ORIGIN, public_key=LOG.public_key.raw)
AGENTS = {p: key(f"agent/{p}") for p in AUTH}


def roster_documents() -> list[dict[str, Any]]:
    docs = [{"kind": "enrollment", **sign_document(
        enrollment(party=p, member="relay", role=Role.AGENT, key=AGENTS[p].public_key,
                   not_before=T0 - timedelta(days=1), not_after=T0 + timedelta(days=1)), AUTH[p]).to_json()}
        for p in AUTH]
    agreement = {
        "type": "agreement", "channel": "north-south", "version": 1,
        "parties": [{"id": p, "authority": AUTH[p].key_id} for p in AUTH],
        "templates": [{"id": "message", "version": 1, "sha256": "0" * 64}],
        "heartbeat": {"interval": 10, "grace": 10}, "auditors": [],
        "witnesses": [{"id": "relay", "authority": AUTH["north"].key_id}],
        "effective": format_time(T0 - timedelta(days=1))}
    signed = sign_document(decode_document(agreement), *AUTH.values())
    docs.append({"kind": "agreement", "channel": "north-south", **signed.to_json()})
    return docs


@dataclass
class Log:
    store: Store
    hub: Hub
    checkpointer: Checkpointer
    now: list[datetime]
    folder: Path

    async def append(self, count: int) -> None:
        for n in range(count):
            await self.store.append(RejectedEntry(
                time=format_time(self.now[0]), party="north", member="alice", template="message",
                code="template.invalid", reason=f"attempt {n}", channel="north-south"))

    def checkpointer_again(self) -> Checkpointer:
        return make_checkpointer(self.store, self.hub, self.now, self.folder)


def make_checkpointer(store: Store, hub: Hub, now: list[datetime], folder: Path) -> Checkpointer:
    roster = Roster(authorities={p: k.public_key for p, k in AUTH.items()})
    for doc in roster_documents():
        roster.add({"document": doc["document"], "sigs": doc["sigs"]})
    return Checkpointer(store=store, hub=hub, roster=roster, key=LOG, origin=ORIGIN, delay=0.0,
                        clock=lambda: now[0], checkpoint_file=folder / "hotline.db.checkpoint")


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[Log]:
    store = await open_store(tmp_path / "hotline.db", mac_key=bytes(range(32)))
    now = [T0]
    hub = Hub(clock=lambda: now[0])
    checkpointer = make_checkpointer(store, hub, now, tmp_path)
    try:
        for doc in roster_documents():
            await store.append(roster_entry(doc, time=format_time(T0)))
        await checkpointer.load()
        yield Log(store, hub, checkpointer, now, tmp_path)
    finally:
        await checkpointer.stop()
        await store.close()


def member_connection(hub: Hub) -> Connection:
    """A member's session whose frames stay queued for the test to read (no sender task)."""
    conn = Connection(ws=web.WebSocketResponse(), member=Member("south", "bob", Role.LIAISON, "k"),
                      queue_size=64)
    hub.join(conn, ["north-south"])
    return conn


async def frames(conn: Connection) -> list[dict[str, Any]]:
    out = []
    while len(conn.queue):
        out.append(json.loads(await conn.queue.pop()))
    return out


async def test_each_new_tree_head_is_signed_filed_and_pushed_once(log: Log) -> None:
    bob = member_connection(log.hub)
    await log.checkpointer.sign()
    size, root = log.store.tree_head()
    note = log.checkpointer.latest_note
    assert verify_checkpoint(note, LOG_KEY) == Checkpoint(ORIGIN, size, root) == log.checkpointer.latest
    assert await log.store.checkpoint(size) == note
    saved = read_checkpoint_file(log.folder / "hotline.db.checkpoint")
    assert saved is not None and (saved.size, saved.note, saved.time) == (size, note, format_time(T0))
    assert await frames(bob) == [{"type": "checkpoint", "note": note}]
    await log.checkpointer.sign()  # nothing new: nothing signed, nothing pushed
    assert await frames(bob) == []
    await log.append(2)
    await log.checkpointer.sign()
    (pushed,) = await frames(bob)
    assert verify_checkpoint(pushed["note"], LOG_KEY).size == size + 2


async def test_receipts_prove_inclusion_once_a_checkpoint_covers_the_entry(log: Log) -> None:
    bob = member_connection(log.hub)
    await log.append(3)
    size = log.store.tree_head()[0]
    log.checkpointer.want_receipt(bob, size - 1)
    log.checkpointer.want_receipt(bob, size)  # not committed yet: waits for a later checkpoint
    await log.checkpointer.sign()
    await log.checkpointer.stop()  # the receipts under way are sent
    checkpoint_frame, receipt = await frames(bob)
    assert checkpoint_frame["type"] == "checkpoint" and receipt["type"] == "receipt"
    assert (receipt["index"], receipt["size"], receipt["checkpoint"]) == (size - 1, size,
                                                                          checkpoint_frame["note"])
    leaf = base64.b64decode(receipt["leaf"])
    assert leaf == (await log.store.entry(size - 1)).leaf  # type: ignore[union-attr]
    verify_inclusion(leaf_hash=leaf_hash(leaf), index=size - 1, size=size,
                     proof=[base64.b64decode(h) for h in receipt["proof"]],
                     root=verify_checkpoint(receipt["checkpoint"], LOG_KEY).root_hash)
    await log.append(1)
    await log.checkpointer.sign()
    await log.checkpointer.stop()
    assert [f["type"] for f in await frames(bob)] == ["checkpoint", "receipt"]


async def test_a_tree_that_does_not_extend_the_last_checkpoint_is_never_signed(log: Log) -> None:
    """As if the database had been changed under the last signed checkpoint: the new root is not
    consistent with it, so nothing is signed, stored or pushed."""
    await log.checkpointer.sign()
    signed = log.checkpointer.latest
    assert signed is not None
    log.checkpointer.latest = Checkpoint(ORIGIN, signed.size, bytes(32))  # another history
    bob = member_connection(log.hub)
    await log.append(1)
    with pytest.raises(LogError) as caught:
        await log.checkpointer.sign()
    assert caught.value.code == "log.inconsistent"
    assert await log.store.checkpoint(signed.size + 1) is None and await frames(bob) == []
    log.checkpointer.latest = Checkpoint(ORIGIN, signed.size + 5, bytes(32))  # a larger one
    with pytest.raises(LogError, match="smaller than the last checkpoint"):
        await log.checkpointer.sign()


async def test_a_restarted_checkpointer_carries_on_from_what_it_published(log: Log) -> None:
    await log.append(2)
    await log.checkpointer.sign()
    again = log.checkpointer_again()
    await again.load()
    assert (again.latest, again.latest_note) == (log.checkpointer.latest, log.checkpointer.latest_note)


async def test_only_named_witnesses_are_heard_once_each(log: Log) -> None:
    await log.checkpointer.sign()
    size = log.store.tree_head()[0]
    body = parse_note(log.checkpointer.latest_note).body
    line = cosign(body, name="relay", key=AGENTS["north"], timestamp=STAMP)
    assert await log.checkpointer.add_cosignature(size, line) is True
    assert await log.checkpointer.add_cosignature(size, line) is False  # at most one each
    assert log.checkpointer.witnessed == {"north/relay": size}
    assert (await log.checkpointer.note_with_cosignatures()) == log.checkpointer.latest_note + line
    assert await log.checkpointer.witnessed_notes() == [
        CheckpointNote(size, log.checkpointer.latest_note + line)]

    stranger = cosign(body, name="relay", key=AGENTS["south"], timestamp=STAMP)  # not named
    refusals = [(size, stranger, "log.unknown_witness"), (size + 1, line, "log.no_checkpoint"),
                (True, line, "log.bad_cosignature"), (size, b"bytes", "log.bad_cosignature"),
                (size, "— relay not-a-signature", "log.bad_cosignature")]
    for at, text, code in refusals:
        with pytest.raises(HotlineError) as caught:  # its class follows from its code
            await log.checkpointer.add_cosignature(at, text)
        assert caught.value.code == code, (at, text)


async def test_a_cosignature_by_a_key_no_longer_valid_is_not_heard(log: Log) -> None:
    await log.checkpointer.sign()
    size = log.store.tree_head()[0]
    line = cosign(parse_note(log.checkpointer.latest_note).body, name="relay", key=AGENTS["north"],
                  timestamp=STAMP)
    log.now[0] = T0 + timedelta(days=2)  # past the enrollment's not_after
    with pytest.raises(HotlineError) as caught:  # its class follows from its code
        await log.checkpointer.add_cosignature(size, line)
    assert caught.value.code == "log.unknown_witness"
