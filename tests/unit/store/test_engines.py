"""What every store engine guarantees, on a real SQLite file and a real PostgreSQL database:
dense indexes in commit order, one row per envelope id, durable across reopening, the Merkle tree
and its proofs, reads by kind. Engine-specific checks: ``test_sqlite.py``, ``test_postgres.py``."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from hotline.errorcodes import Code
from hotline.errors import LogError, SealError, StoreError, WireError
from hotline.keys import b64url
from hotline.store import Store, StoredEntry, open_store
from hotline.store.base import RECENT_BYTES, RECENT_ENTRIES, RecentEntries
from hotline.tlog import leaf_hash, root_of, verify_consistency, verify_inclusion
from tests.log_entries import envelope as envelope_entry
from tests.log_entries import health, overdue
from tests.log_entries import rejected as entry

KEY = bytes(range(32))  # the row-MAC key (the server derives it from the log key)

Opener = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "hotline.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def reopen(location: str) -> Opener:
    async def opened() -> Store:
        return await open_store(location, mac_key=KEY)
    return opened


@pytest.fixture
async def store(reopen: Opener) -> AsyncIterator[Store]:
    opened = await reopen()
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
    assert await store.size() == 100 and await store.refresh() == 100  # no other writer here
    assert [e.index for e in await store.entries(channel="c", after=97)] == [98, 99]
    assert [e.index for e in await store.entries(after=10, limit=3)] == [11, 12, 13]


async def test_same_envelope_id_is_stored_once(store: Store) -> None:
    first, again, concurrent = await asyncio.gather(
        store.append(entry(1), envelope_id="A" * 22), store.append(entry(2), envelope_id="A" * 22),
        store.append(entry(3), envelope_id="A" * 22))
    assert not first.duplicate and again.duplicate and concurrent.duplicate
    assert again.stored == first.stored == concurrent.stored
    assert await store.size() == 1
    assert (await store.by_envelope_id("A" * 22)) == first.stored


async def test_entries_survive_reopening(reopen: Opener) -> None:
    store = await reopen()
    await store.append(entry(1))
    head = store.tree_head()
    await store.close()
    store = await reopen()
    try:
        assert store.tree_head() == head
        assert (await store.entry(0)).entry.member == "m1"  # type: ignore[union-attr]
        assert (await store.append(entry(2))).stored.index == 1
    finally:
        await store.close()


async def test_tree_and_proofs_match_the_reference(store: Store) -> None:
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
    await store.verify_tail(0)  # every row carries this key's MAC


async def test_receipts_read_together_are_each_entrys_leaf_and_proof(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    results = await asyncio.gather(*(store.append(entry(n)) for n in range(37)))
    monkeypatch.setattr("hotline.store.base.RECEIPTS_PER_READ", 4)  # several reads
    wanted = [0, 5, 19, 20, 21, 28, 29]
    receipts = await store.receipts(wanted, 30)
    assert sorted(receipts) == wanted
    for index in wanted:
        assert receipts[index] == (results[index].stored.leaf, await store.inclusion_proof(index, 30))
    with pytest.raises(LogError):
        await store.receipts([30], 30)


async def test_selected_reads_only_the_kinds_asked_for_in_order(store: Store) -> None:
    for n, kind in enumerate(["heartbeat", "message", "echo", "ack", "heartbeat"]):
        await store.append(envelope_entry(n, kind))
    await store.append(overdue())
    await store.append(health())
    picked = [e.index async for e in store.selected(after=-1, envelope_kinds=("ack", "message"),
                                                    kinds=("overdue",))]
    assert picked == [1, 3, 5]
    assert [e.index for e in await store.last_of_kind("health")] == [6]


async def test_checkpoints_and_cosignatures_are_kept_once(store: Store) -> None:
    for n in range(3):
        await store.append(entry(n))
    await store.add_checkpoint(2, "2026-11-27T00:00:00.000Z", "note 2")
    await store.add_checkpoint(3, "2026-11-27T00:00:01.000Z", "note 3")
    assert await store.checkpoints(since=-1, limit=1) == [(2, "2026-11-27T00:00:00.000Z", "note 2")]
    assert await store.latest_checkpoint() == (3, "2026-11-27T00:00:01.000Z", "note 3")
    assert await store.checkpoint(2) == "note 2"
    assert await store.add_cosignature(3, "w", "line") is True
    assert await store.add_cosignature(3, "w", "again") is False  # a witness cosigns a size once
    assert await store.cosignatures(2, 3) == {3: ["line"]}
    assert await store.witnessed() == {"w": 3}
    page = await store.page(start=0, end=3, max_bytes=10**6, wanted=lambda kind, channel: True)
    assert [(row.index, row.leaf is not None) for row in page] == [(0, True), (1, True), (2, True)]


async def test_saved_state_is_replaced_in_place_and_only_this_logs_is_read_back(
        reopen: Opener, location: str) -> None:
    """State saved beside the log comes back as saved, across reopening; saved under another
    log's key (planted, or a file from elsewhere), it is ``store.damaged``, never used."""
    store = await reopen()
    try:
        assert await store.load_state("obligations") is None
        await store.save_state("obligations", b'{"size": 1}')
        await store.save_state("obligations", b'{"size": 2}')  # replaces it
        await store.save_state("other", b"x")
    finally:
        await store.close()
    again = await reopen()
    try:
        assert await again.load_state("obligations") == b'{"size": 2}'
        assert await again.load_state("other") == b"x"
    finally:
        await again.close()
    foreign = await open_store(location, mac_key=bytes(32))  # another log's row-MAC key
    try:
        await foreign.save_state("obligations", b'{"size": 99}')
    finally:
        await foreign.close()
    planted = await reopen()
    try:
        with pytest.raises(StoreError) as refused:
            await planted.load_state("obligations")
        assert refused.value.code == Code.STORE_DAMAGED and "MAC" in refused.value.message
        assert await planted.load_state("other") == b"x"  # each save stands alone
    finally:
        await planted.close()


async def test_an_entry_looked_up_by_id_soon_after_its_commit_is_the_databases(reopen: Opener) -> None:
    """The store keeps its latest commits for lookups by envelope id (an echo's heartbeat, an
    ack's message): the same entries a read of the database gives, within bounds."""
    store = await reopen()
    try:
        logged = [await store.append(envelope_entry(n, "message"), envelope_id=f"id-{n}")
                  for n in range(1, 6)]
        held = [await store.by_envelope_id(f"id-{n}") for n in range(1, 6)]
    finally:
        await store.close()
    again = await reopen()  # nothing committed by this one: every lookup reads the database
    try:
        read = [await again.by_envelope_id(f"id-{n}") for n in range(1, 6)]
        assert await again.by_envelope_id("id-9") is None
    finally:
        await again.close()
    assert held == read == [a.stored for a in logged]
    assert [h.entry for h in held if h is not None] == [r.entry for r in read if r is not None]


def test_recent_entries_are_bounded_in_number_and_bytes() -> None:
    recent = RecentEntries()
    recent.add((f"id-{n}", StoredEntry(n, b"x")) for n in range(RECENT_ENTRIES + 10))
    assert recent.get("id-9") is None and recent.get(f"id-{RECENT_ENTRIES + 9}") is not None
    big = RECENT_BYTES // 4 + 1
    recent.add((f"big-{n}", StoredEntry(n, b"x" * big)) for n in range(4))
    assert recent.get("big-0") is None and recent.get("big-3") is not None
    recent.add([(None, StoredEntry(0, b"y"))])  # an entry without an id is not kept


# -- attachments (issue 19) ---------------------------------------------------------------------

CHUNKS = [bytes([n]) * (1000 + n) for n in range(5)]
CONTENT = b"".join(CHUNKS)
DIGEST = b64url(hashlib.sha256(CONTENT).digest())
NOW = "2026-12-07T12:00:00.000Z"


async def send(store: Store, party: str, chunks: list[bytes], *, first: int = 0) -> None:
    start = sum(len(c) for c in chunks[:first])
    for chunk in chunks[first:]:
        assert await store.add_upload_chunk(party, DIGEST, start, chunk, NOW)
        start += len(chunk)


async def test_an_upload_cut_off_resumes_where_the_store_left_it(reopen: Opener) -> None:
    store = await reopen()
    try:
        await store.begin_upload("north", DIGEST, len(CONTENT), NOW)
        await send(store, "north", CHUNKS[:3])
    finally:
        await store.close()
    again = await reopen()  # the line was cut, the server restarted: nothing is lost
    try:
        held = await again.begin_upload("north", DIGEST, len(CONTENT), NOW)  # the one under way
        assert held.received == sum(map(len, CHUNKS[:3]))
        await send(again, "north", CHUNKS, first=3)
        assert await again.attachment_size(DIGEST) is None  # not before it is checked
        assert await again.finish_upload("north", DIGEST, NOW) == len(CONTENT)
        assert await again.attachment_size(DIGEST) == len(CONTENT)
        assert await again.upload_state("north", DIGEST) is None
        stored, at = b"", -1
        while page := await again.attachment_chunks(DIGEST, after=at, limit=2):
            stored += b"".join(data for _, data in page)
            at = page[-1][0]
        assert stored == CONTENT
    finally:
        await again.close()


async def test_a_chunk_not_at_the_end_of_what_is_held_is_refused_and_nothing_is_written(
        store: Store) -> None:
    await store.begin_upload("north", DIGEST, len(CONTENT), NOW)
    assert not await store.add_upload_chunk("north", DIGEST, 5, CHUNKS[0], NOW)  # a gap
    assert not await store.add_upload_chunk("south", DIGEST, 0, CHUNKS[0], NOW)  # not its upload
    await send(store, "north", CHUNKS[:1])
    assert not await store.add_upload_chunk("north", DIGEST, 0, CHUNKS[0], NOW)  # again
    assert not await store.add_upload_chunk("north", DIGEST, len(CHUNKS[0]), CONTENT, NOW)  # too long
    state = await store.upload_state("north", DIGEST)
    assert state is not None and state.received == len(CHUNKS[0])
    assert [start for start, _ in await store.upload_chunks("north", DIGEST)] == [0]
    with pytest.raises(WireError) as other_size:
        await store.begin_upload("north", DIGEST, len(CONTENT) + 1, NOW)
    assert other_size.value.code == Code.ATTACHMENT_INVALID


async def test_an_upload_is_stored_only_once_complete_and_its_digest_s(store: Store) -> None:
    await store.begin_upload("north", DIGEST, len(CONTENT), NOW)
    await send(store, "north", CHUNKS[:2])
    with pytest.raises(SealError) as short:
        await store.finish_upload("north", DIGEST, NOW)
    assert short.value.code == Code.ATTACHMENT_DIGEST_MISMATCH
    assert await store.upload_state("north", DIGEST) is not None  # kept: it resumes
    forged = [b"x" * len(c) for c in CHUNKS]
    await store.begin_upload("south", DIGEST, len(CONTENT), NOW)
    await send(store, "south", forged)
    with pytest.raises(SealError) as wrong:
        await store.finish_upload("south", DIGEST, NOW)
    assert wrong.value.code == Code.ATTACHMENT_DIGEST_MISMATCH
    assert await store.upload_state("south", DIGEST) is None  # dropped: it must be sent again
    assert await store.attachment_size(DIGEST) is None
    # another party's forged bytes never touched north's upload of the same digest
    await send(store, "north", CHUNKS, first=2)
    assert await store.finish_upload("north", DIGEST, NOW) == len(CONTENT)


async def test_an_upload_idle_past_the_expiry_is_dropped_with_its_chunks(store: Store) -> None:
    """Only uploads whose last chunk came before the cut-off: a live one stays, and a finished
    attachment is never touched."""
    other = b64url(hashlib.sha256(b"other").digest())
    await store.begin_upload("north", DIGEST, len(CONTENT), "2026-12-06T08:00:00.000Z")
    await store.begin_upload("south", DIGEST, len(CONTENT), "2026-12-06T08:00:00.000Z")
    assert await store.add_upload_chunk("south", DIGEST, 0, CHUNKS[0], "2026-12-07T11:00:00.000Z")
    await store.begin_upload("north", other, 5, "2026-12-06T09:00:00.000Z")
    assert await store.add_upload_chunk("north", other, 0, b"other", "2026-12-06T09:00:00.000Z")
    assert await store.finish_upload("north", other, NOW) == 5
    assert await store.expire_uploads("2026-12-07T00:00:00.000Z") == 1
    assert await store.upload_state("north", DIGEST) is None
    south = await store.upload_state("south", DIGEST)  # a chunk came after the cut-off
    assert south is not None and south.received == len(CHUNKS[0])
    assert await store.uploading("north") == 0 and await store.attachment_size(other) == 5
    assert await store.expire_uploads("2026-12-07T00:00:00.000Z") == 0


async def test_content_no_message_named_is_forgotten_after_the_cutoff(store: Store) -> None:
    """What a party uploads and never names goes once it is older than the cut-off; content a
    message named stays, and so does content stored before this rule existed (never listed);
    another party's later upload of kept content does not make it forgettable again."""
    def digest_of(data: bytes) -> str:
        return b64url(hashlib.sha256(data).digest())

    async def keep(party: str, data: bytes, time: str) -> str:
        digest = digest_of(data)
        await store.begin_upload(party, digest, len(data), time)
        assert await store.add_upload_chunk(party, digest, 0, data, time)
        await store.finish_upload(party, digest, time)
        return digest

    unnamed = await keep("north", b"never sent", "2026-12-06T08:00:00.000Z")
    named = await keep("north", b"sent", "2026-12-06T08:00:00.000Z")
    await store.name_attachments([named, named])
    await keep("south", b"sent", "2026-12-07T11:00:00.000Z")  # kept content: stays named
    recent = await keep("south", b"just now", "2026-12-07T11:00:00.000Z")
    assert await store.forget_unnamed("2026-12-07T00:00:00.000Z") == 1
    assert await store.attachment_size(unnamed) is None
    assert await store.uploaded_by("north", unnamed) is None
    assert await store.attachment_chunks(unnamed) == []
    assert await store.attachment_size(named) == 4 and await store.uploaded_by("south", named) == 4
    assert await store.attachment_size(recent) == 8  # not old enough yet
    assert await store.forget_unnamed("2026-12-08T00:00:00.000Z") == 1  # now it is
    assert await store.attachment_size(named) == 4


async def test_the_same_content_from_two_parties_is_kept_once(store: Store) -> None:
    for party in ("north", "south"):
        await store.begin_upload(party, DIGEST, len(CONTENT), NOW)
        await send(store, party, CHUNKS)
        assert await store.finish_upload(party, DIGEST, NOW) == len(CONTENT)
    assert len(await store.attachment_chunks(DIGEST, limit=100)) == len(CHUNKS)
