"""The store's one interface and what every engine shares (docs/ARCHITECTURE.md "Storage").

Theory of operation:
- ``Store`` holds the log's in-memory head (size, tree root, the tree's right border) and the
  sequencer: callers ``await append(...)``; one task collects every append waiting at that moment
  into one transaction (``_commit``, per engine), so a burst costs one durable commit. Futures
  resolve after COMMIT: ``accepted`` is never sent for an entry that a crash could lose.
- Indexes are 0, 1, 2, ... in commit order; each leaf is ``JCS(entry)`` with the index inside.
  An envelope id is UNIQUE: a resend returns the stored entry with ``duplicate=True``.
- Every read goes through ``_read`` with SQL written once, ``?`` for parameters (each engine
  binds them its own way); whatever is read back is checked before use: every leaf against its
  level-0 tree node (an edited leaf is ``store.damaged`` naming its index).
- Every row carries a MAC (``hotline.store.rowmac``) keyed from the log key: rows beyond the last
  signed checkpoint are the server's own only if their MAC verifies (``verify_tail``).
- Engines: ``hotline.store.sqlite`` (one file, the embedded default) and
  ``hotline.store.postgres`` (``postgresql://`` URLs); ``hotline.store.open_store`` picks one
  by the location.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hotline.entries import ROSTER_KINDS, Entry, EnvelopeEntry, channel_of, kind_of, leaf_bytes, with_index
from hotline.errorcodes import Code
from hotline.errors import LogError, SealError, StoreError, WireError
from hotline.keys import b64url
from hotline.store.records import Appended, StoredEntry, damaged
from hotline.store.rowmac import row_mac, row_mac_valid, state_mac
from hotline.tlog.merkle import (
    EMPTY_ROOT,
    Frontier,
    Node,
    consistency_nodes,
    consistency_proof,
    frontier_nodes,
    inclusion_nodes,
    inclusion_proof,
    leaf_hash,
)

# A stored leaf with its level-0 tree node, so every read can check one against the other.
LEAVES = "SELECT e.idx, e.leaf, n.hash FROM entries e LEFT JOIN nodes n ON n.level = 0 AND n.idx = e.idx"
INSERT_ENTRY = ("INSERT INTO entries (idx, time, kind, channel, envelope_id, leaf, envelope_kind, "
                "mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_NODE = "INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)"
RECENT_ENTRIES = 4096  # entries kept for lookups by envelope id (``RecentEntries``)
RECENT_BYTES = 8 << 20  # and at most this many bytes of their leaves
RECEIPTS_PER_READ = 256  # entries' proofs per node query: at 10^6 entries ~5,400 nodes, within
# the bound on a statement's parameters (SQLite 32,766; PostgreSQL 32,767)


@dataclass(frozen=True)
class KeptAttachment:
    """A stored attachment's content: its digest, size, when it was first kept, and whether no
    message has named it yet."""

    sha256: str
    size: int
    time: str
    unnamed: bool


@dataclass(frozen=True)
class Upload:
    """A party's upload of an attachment under way: ``received`` of its ``size`` bytes held."""

    party: str
    sha256: str
    size: int
    received: int

    def check_size(self, size: int) -> None:
        """Raises: WireError (``attachment.invalid``) if ``size`` is not this upload's."""
        if size != self.size:
            raise WireError(f"an upload of this digest of {self.size} bytes is under way, not "
                            f"of {size}", code=Code.ATTACHMENT_INVALID)


@dataclass(frozen=True)
class PageRow:
    """One row of a log API page: the leaf if it was asked for, else only its leaf hash."""

    index: int
    leaf: bytes | None
    hash: bytes  # the leaf hash (the row's level-0 tree node)


@dataclass
class Pending:
    entry: Entry
    envelope_id: str | None
    future: asyncio.Future[Appended]
    origin: object = None  # the caller's, handed back with the entry to ``on_commit``


Committed = Callable[[list[tuple[StoredEntry, object]]], None]
"""Told of each commit's new entries (with their appends' ``origin``), in index order, before the
store's head moves past them."""


@dataclass(frozen=True)
class Row:
    """An entry ready to insert: its values in ``INSERT_ENTRY``'s order, and what it appends."""

    values: tuple[Any, ...]
    appended: Appended


def blob(index: int, value: Any) -> bytes:
    """A stored leaf, hash or MAC as bytes; another type (a value edited in as text) is damage."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise damaged(int(index), f"a stored value is {type(value).__name__}, not bytes")


def checked(rows: Iterable[Sequence[Any]]) -> list[StoredEntry]:
    """``(idx, leaf, level-0 hash)`` rows as entries, each leaf checked against the tree."""
    found = []
    for index, stored, node in rows:
        leaf = blob(index, stored)
        if node is None or leaf_hash(leaf) != blob(index, node):
            raise damaged(int(index), "its leaf does not match the log's tree (its leaf hash)")
        found.append(StoredEntry(int(index), leaf))
    return found


def new_row(item: Pending, index: int, last_time: str, mac_key: bytes) -> Row:
    """The row for ``item`` at ``index``. Log times never go back (auditors check it): a caller
    that read the clock before an await may come after one that read it later."""
    entry = with_index(item.entry, index, time=max(item.entry.time, last_time))
    leaf = leaf_bytes(entry)
    envelope_kind = entry.envelope.kind.value if isinstance(entry, EnvelopeEntry) else None
    return Row((index, entry.time, kind_of(entry), channel_of(entry), item.envelope_id, leaf,
                envelope_kind, row_mac(mac_key, index, leaf)),
               Appended(StoredEntry(index, leaf, entry), duplicate=False))


def _ended(party: str, sha256: str) -> list[tuple[str, Sequence[Any]]]:
    """The statements that end ``party``'s upload of ``sha256``: its chunks, then itself."""
    owned = "WHERE party = ? AND sha256 = ?"
    return [(f"DELETE FROM upload_chunks {owned}", (party, sha256)),
            (f"DELETE FROM uploads {owned}", (party, sha256))]


class RecentEntries:
    """The entries a store committed last, by envelope id, within ``RECENT_ENTRIES`` and
    ``RECENT_BYTES`` of leaves: entries never change once committed, so a lookup of one of
    them (``by_envelope_id``) needs no read of the database."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, StoredEntry] = OrderedDict()
        self._bytes = 0

    def add(self, committed: Iterable[tuple[str | None, StoredEntry]]) -> None:
        for envelope_id, stored in committed:
            if envelope_id is None or envelope_id in self._by_id:
                continue
            self._by_id[envelope_id] = stored
            self._bytes += len(stored.leaf)
        while len(self._by_id) > RECENT_ENTRIES or self._bytes > RECENT_BYTES:
            self._bytes -= len(self._by_id.popitem(last=False)[1].leaf)

    def get(self, envelope_id: str) -> StoredEntry | None:
        return self._by_id.get(envelope_id)


def tree_lost(leaves: int, size: int, advice: str) -> StoreError:
    return StoreError(f"the log's tree holds {leaves} leaves but the database only {size} "
                      f"entries: entries were lost or removed. {advice}", code=Code.STORE_DAMAGED)


class Store(ABC):
    """The narrow store interface the server uses (opened by ``hotline.store.open_store``)."""

    engine: str  # "sqlite" or "postgresql"
    location: str  # for operators' messages: the file, or the URL without its password
    restore_advice: str  # how to restore it: "together with its -wal from a backup"
    shared = False  # other servers may append to the same log (PostgreSQL)

    def __init__(self, *, batch: int, mac_key: bytes | None) -> None:
        self._batch = batch
        self._mac_key = mac_key
        self._queue: list[Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._size = 0  # committed entries; only the sequencer advances it
        self._frontier = Frontier()  # the tree's right border at self._size
        self._root = EMPTY_ROOT  # tree root at self._size
        self.committed = asyncio.Event()  # set after every commit (the checkpointer waits on it)
        self.upgraded = False  # this open added row MACs to a database whose rows have none
        self.problem: str | None = None  # the first damage or disk failure seen, for /healthz
        self._broken: StoreError | None = None  # set when no further commit can be right
        # Set when one of the store's database sessions ended (PostgreSQL: the database failed
        # over, the network cut, the session was terminated). A leader's lock went with it and
        # another server may lead now; a follower may have missed notifications. Either way the
        # server stops, and a supervisor starts it again on the database's new primary.
        self.session_lost = asyncio.Event()
        # Set when the database's log grew beyond this store's head by another server's commits
        # (PostgreSQL's NOTIFY): ``refresh`` brings the head up to it.
        self.moved = asyncio.Event()
        self._heard = 0  # the largest log size another server's commit was heard to reach
        # Set when another server stored a checkpoint (PostgreSQL's NOTIFY): followers adopt it.
        self.checkpointed = asyncio.Event()
        # Set while this store leads the log: one server at a time signs checkpoints, sweeps
        # deadlines and judges health. A SQLite file has one writer, which leads.
        self.leading = asyncio.Event()
        self.on_commit: Committed | None = None
        self._head = asyncio.Lock()  # the head (size, frontier, root) moves under it alone
        self._recent = RecentEntries()  # this store's latest commits, by envelope id

    def _start(self) -> None:
        self._task = asyncio.create_task(self._sequencer(), name="store-sequencer")

    # -- what each engine provides -------------------------------------------------------------

    @abstractmethod
    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """Rows of a query (``?`` parameters); ``store.read_failed`` on an engine error."""

    async def _read_bulk(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        """``_read`` for the log API's large pages (an engine may keep them off the member path)."""
        return await self._read(sql, params)

    async def _write(self, sql: str, params: Sequence[Any]) -> bool:
        """A small durable write outside the entry sequence; False if it would repeat a unique
        key (nothing written); ``store.write_failed`` on another engine error."""
        return await self._write_all([(sql, params)]) is not None

    @abstractmethod
    async def _write_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int] | None:
        """Several writes in one durable transaction; the rows each changed, or None if one
        would repeat a unique key (nothing written); ``store.write_failed`` on another engine
        error (nothing written)."""

    @abstractmethod
    async def _commit(self, batch: list[Pending]) -> list[Appended]:
        """Commit ``batch`` in one transaction, advancing ``_size``, ``_frontier`` and ``_root``
        only once it is durable; one result per pending append, in order."""

    async def _database_size(self) -> int:
        """The log's size as the database holds it now (another server may have appended)."""
        return self._size  # a SQLite file has one writer: this store

    async def refresh(self) -> int:
        """Bring the head up to the database's (entries appended by other servers sharing it),
        its tree border rebuilt from the stored nodes; returns the size. Entries stay as
        committed: read them with ``entries``.

        Raises:
            StoreError: ``store.damaged`` if the database's head is smaller than this store's
                (the log went back) or its tree does not hold.
        """
        async with self._head:
            self.moved.clear()
            size = await self._database_size()
            if size != self._size:
                self._frontier = await self._followed(size)
                self._size, self._root = size, self._frontier.root()
                self.committed.set()
            if self._heard <= self._size:  # what was heard while reading is in hand too
                self.moved.clear()
            return self._size

    @abstractmethod
    async def _reload(self) -> None:
        """Reload the head (size, frontier, root) from the database after a failed commit."""

    @abstractmethod
    def _is_failure(self, exc: BaseException) -> str | None:
        """What ``exc`` says of damage or a failing disk or database link (for ``/healthz``),
        or None when it is not such an error."""

    @abstractmethod
    async def _close_connections(self) -> None: ...

    # -- appends -----------------------------------------------------------------------------

    def enqueue(self, entry: Entry, *, envelope_id: str | None = None,
                origin: object = None) -> asyncio.Future[Appended]:
        """Queue ``entry`` (at index ``PENDING``: the sequencer assigns it, in enqueue order).

        The future resolves only after COMMIT. With ``envelope_id`` already stored it resolves to
        the stored entry with ``duplicate=True`` and nothing is written. ``origin`` is handed
        back with the new entry to ``on_commit`` (the server: the session that submitted it).
        """
        if self._closed:
            raise StoreError("store is closed", code=Code.STORE_CLOSED)
        if self._mac_key is None:
            raise StoreError("store opened without the row-MAC key: read only", code=Code.STORE_READ_ONLY)
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._queue.append(Pending(entry, envelope_id, future, origin))
        self._wakeup.set()
        return future

    async def append(self, entry: Entry, *, envelope_id: str | None = None,
                     origin: object = None) -> Appended:
        """``enqueue`` and wait for the commit."""
        return await self.enqueue(entry, envelope_id=envelope_id, origin=origin)

    @property
    def mac_key(self) -> bytes:
        assert self._mac_key is not None  # enqueue refuses appends without it
        return self._mac_key

    async def _sequencer(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch, self._queue = self._queue[:self._batch], self._queue[self._batch:]
                try:
                    if self._broken is not None:
                        raise self._broken
                    async with self._head:
                        results = await self._commit(batch)
                        self._recent.add((item.envelope_id, r.stored) for item, r
                                         in zip(batch, results, strict=True) if not r.duplicate)
                        if self.on_commit is not None:  # before anyone sees the head past them
                            self.on_commit([(r.stored, item.origin) for item, r
                                            in zip(batch, results, strict=True) if not r.duplicate])
                except Exception as exc:  # fail every caller of this batch, keep serving
                    self.note_failure(exc)
                    if self._broken is None:
                        try:  # the failed batch moved the in-memory frontier: reload it
                            async with self._head:
                                await self._reload()
                        except Exception as reload:
                            # without a frontier no commit can be right: refuse them all
                            self.note_failure(reload)
                            self._broken = StoreError(f"the log's tree cannot be reloaded: {reload}",
                                                      code=Code.STORE_DAMAGED)
                    error = StoreError(f"commit failed: {exc}", code=Code.STORE_COMMIT_FAILED)
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(error)
                    continue
                self.committed.set()
                for item, result in zip(batch, results, strict=True):
                    if not item.future.done():
                        item.future.set_result(result)
            if self._closed:
                return

    def note_failure(self, exc: BaseException) -> None:
        """Remember the first sign of damage or of a failing disk (``/healthz`` reports it):
        also called for the storage beside the database (the checkpoint file)."""
        if self.problem is not None:
            return
        if isinstance(exc, StoreError) and exc.code in (Code.STORE_DAMAGED, Code.STORE_SESSION_LOST,
                                                        Code.STORE_UNAUTHENTICATED_ROWS,
                                                        Code.STORE_CHECKPOINT_WRITE_FAILED):
            self.problem = exc.message
        else:
            self.problem = self._is_failure(exc)

    async def _read_entries(self, where: str, params: Sequence[Any] = ()) -> list[StoredEntry]:
        """Entries ``{LEAVES} {where}``, each leaf checked against its level-0 tree node."""
        rows = await self._read(f"{LEAVES} {where}", params)
        try:
            return checked(rows)
        except StoreError as exc:
            self.note_failure(exc)
            raise

    # -- the tree ------------------------------------------------------------------------------

    async def size(self) -> int:
        """Number of committed entries (kept in memory: no query)."""
        return self._size

    def tree_head(self) -> tuple[int, bytes]:
        """``(size, root)`` of everything committed so far."""
        return self._size, self._root

    async def _nodes(self, wanted: list[Node]) -> dict[Node, bytes]:
        if not wanted:
            return {}
        values = ",".join("(CAST(? AS BIGINT), CAST(? AS BIGINT))" for _ in wanted)
        # A join, not a row-value IN: SQLite 3.40 plans ``(level, idx) IN (VALUES ...)`` as a
        # full scan of the node table (0.3 s at 10^6 entries); the join uses the primary key.
        rows = await self._read(f"WITH wanted(l, i) AS (VALUES {values}) SELECT n.level, n.idx, "
                                "n.hash FROM wanted JOIN nodes n ON n.level = wanted.l AND "
                                "n.idx = wanted.i", [n for node in wanted for n in node])
        found = {(int(r[0]), int(r[1])): blob(r[1], r[2]) for r in rows}
        missing = [node for node in wanted if node not in found]
        if missing:
            error = StoreError(f"the log's tree has no node {missing[0]} (level, index)",
                               code=Code.STORE_DAMAGED)
            self.note_failure(error)
            raise error
        return found

    async def frontier_at(self, size: int) -> Frontier:
        """The tree's right border at ``size`` (O(log n) nodes read)."""
        nodes = await self._nodes(frontier_nodes(size))
        try:
            return Frontier.from_nodes(size, lambda level, index: nodes[level, index])
        except LogError as exc:
            raise StoreError(f"the log's tree is damaged: {exc.message}", code=Code.STORE_DAMAGED) from exc

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` (O(log n) reads).

        Raises:
            LogError: ``size`` beyond the committed tree, or ``index`` not below ``size``.
        """
        self._check_size(size)
        wanted = inclusion_nodes(index, size)
        return inclusion_proof(index, size, await self._nodes(wanted))

    async def receipts(self, indices: Sequence[int], size: int) -> dict[int, tuple[bytes, list[bytes]]]:
        """Each entry's leaf and its inclusion proof in the tree of ``size``: what a checkpoint's
        receipts carry, read together (the proofs share their upper nodes) in two queries per
        ``RECEIPTS_PER_READ`` entries.

        Raises:
            LogError: as ``inclusion_proof``; StoreError ``store.damaged``: an entry is missing.
        """
        self._check_size(size)
        found: dict[int, tuple[bytes, list[bytes]]] = {}
        for start in range(0, len(indices), RECEIPTS_PER_READ):
            chunk = indices[start:start + RECEIPTS_PER_READ]
            nodes = await self._nodes(sorted({n for i in chunk for n in inclusion_nodes(i, size)}))
            stored = {e.index: e for e in await self._read_entries(
                f"WHERE e.idx IN ({', '.join('CAST(? AS BIGINT)' for _ in chunk)})", chunk)}
            for index in chunk:
                if index not in stored:
                    error = damaged(index, "it is missing")
                    self.note_failure(error)
                    raise error
                found[index] = stored[index].leaf, inclusion_proof(index, size, nodes)
        return found

    async def consistency_proof(self, old: int, size: int) -> list[bytes]:
        self._check_size(size)
        wanted = consistency_nodes(old, size)
        return consistency_proof(old, size, await self._nodes(wanted))

    async def root_at(self, size: int) -> bytes:
        """Tree root at an earlier ``size`` (from its O(log n) complete subtrees)."""
        self._check_size(size)
        return (await self.frontier_at(size)).root()

    def _check_size(self, size: int) -> None:
        if size > self._size:
            raise LogError(f"size {size} is beyond the log's {self._size} entries", code=Code.LOG_BAD_RANGE)

    async def verify_tail(self, boundary: int) -> None:
        """Check the rows from ``boundary`` on (beyond the last signed checkpoint): each must be
        the next index, carry the row MAC (the log key's), and the tree over them must be the stored
        one. Rows below ``boundary`` are vouched for by the signed checkpoint of that size.

        Raises:
            StoreError: ``store.unauthenticated_rows`` naming the first row the server did not
                write, ``store.damaged`` for a gap or a tree that does not match the rows.
        """
        size, root = self.tree_head()
        if boundary >= size:
            return
        grown = await self._authenticated(
            await self.frontier_at(boundary), size,
            f"is beyond the last signed checkpoint ({boundary} entries) but")
        if grown.root() != root:
            raise StoreError(f"the log's tree over entries {boundary}..{size - 1} does not match "
                             "their leaves", code=Code.STORE_DAMAGED)

    async def _followed(self, size: int) -> Frontier:
        """The tree's border at ``size``, grown from this store's over the rows other servers
        appended since: each must carry the row MAC of a server holding the log key (so that no
        one who can merely write to the database gets a row into a signed checkpoint), and the
        tree stored over them must be the one their leaves make.

        Raises:
            StoreError: as ``verify_tail``; ``store.damaged`` if the database holds fewer
                entries than this store saw committed (the log went back).
        """
        if size < self._size:
            error = StoreError(f"the database's log holds {size} entries, fewer than the "
                               f"{self._size} this server saw committed: it went back. "
                               f"Restore {self.location} {self.restore_advice}",
                               code=Code.STORE_DAMAGED)
            self.note_failure(error)
            raise error
        grown = await self._authenticated(self._frontier.copy(), size,
                                          "was appended by another writer of the database but")
        if grown.root() != (await self.frontier_at(size)).root():
            raise StoreError(f"the log's tree over entries {self._size}..{size - 1} does not "
                             "match their leaves", code=Code.STORE_DAMAGED)
        return grown

    async def _authenticated(self, frontier: Frontier, end: int, what: str) -> Frontier:
        """``frontier`` grown over the rows from its size to ``end``, each of which must be the
        next index and carry the row MAC (``what`` says where the row stands, for the error)."""
        expected = frontier.size
        while expected < end:
            rows = await self._read("SELECT idx, leaf, mac FROM entries WHERE idx >= ? AND idx < ? "
                                    "ORDER BY idx LIMIT 1000", (expected, end))
            if not rows:
                raise damaged(expected, "it is missing")
            for index, leaf, mac in rows:
                if index != expected:
                    raise damaged(expected, "it is missing")
                leaf = blob(index, leaf)
                if self._mac_key is None or not row_mac_valid(
                        self._mac_key, index, leaf, None if mac is None else blob(index, mac)):
                    error = StoreError(
                        f"entry {index} {what} does not carry the row MAC of a server holding the "
                        f"log key: it was not written by a hotline server (entries {index}.."
                        f"{end - 1} are suspect). Find out who wrote to {self.location}, and "
                        f"restore it {self.restore_advice}", code=Code.STORE_UNAUTHENTICATED_ROWS)
                    self.note_failure(error)
                    raise error
                frontier.append(leaf_hash(leaf))
                expected += 1
        return frontier

    # -- checkpoints and cosignatures ----------------------------------------------------------

    async def add_checkpoint(self, size: int, time: str, note: str) -> None:
        if not await self._write("INSERT INTO checkpoints (size, time, note) VALUES (?, ?, ?)",
                                 (size, time, note)):
            raise StoreError(f"a checkpoint of size {size} is stored already",
                             code=Code.STORE_WRITE_FAILED)

    async def checkpoints(self, *, since: int = -1, limit: int = -1) -> list[tuple[int, str, str]]:
        """``(size, time, note)`` of the checkpoints larger than ``since``, oldest first."""
        bounded = " LIMIT ?" if limit >= 0 else ""
        rows = await self._read(f"SELECT size, time, note FROM checkpoints WHERE size > ? ORDER BY "
                                f"size{bounded}", (since, limit) if limit >= 0 else (since,))
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def latest_checkpoint(self) -> tuple[int, str, str] | None:
        """``(size, time, note)`` of the largest stored checkpoint."""
        rows = await self._read("SELECT size, time, note FROM checkpoints ORDER BY size DESC LIMIT 1")
        return (int(rows[0][0]), str(rows[0][1]), str(rows[0][2])) if rows else None

    async def checkpoint(self, size: int) -> str | None:
        rows = await self._read("SELECT note FROM checkpoints WHERE size = ?", (size,))
        return str(rows[0][0]) if rows else None

    async def add_cosignature(self, size: int, witness: str, line: str) -> bool:
        """Store a witness's cosignature line; False if it had already cosigned that size."""
        return await self._write("INSERT INTO cosignatures (size, witness, line) VALUES (?, ?, ?)",
                                 (size, witness, line))

    async def cosignatures(self, low: int, high: int | None = None) -> dict[int, list[str]]:
        """Cosignature lines of the checkpoints of sizes ``low..high`` (just ``low`` by default)."""
        found: dict[int, list[str]] = {}
        for size, _, line in await self.cosignature_rows(low, low if high is None else high):
            found.setdefault(size, []).append(line)
        return found

    async def cosignature_rows(self, low: int, high: int) -> list[tuple[int, str, str]]:
        """``(size, witness, line)`` of the cosignatures of sizes ``low..high``."""
        rows = await self._read("SELECT size, witness, line FROM cosignatures WHERE size BETWEEN ? "
                                "AND ? ORDER BY size, witness", (low, high))
        return [(int(size), str(witness), str(line)) for size, witness, line in rows]

    async def witnessed(self) -> dict[str, int]:
        """Each witness's largest cosigned checkpoint size (read once at start: O(cosignatures))."""
        rows = await self._read("SELECT witness, MAX(size) FROM cosignatures GROUP BY witness")
        return {str(witness): int(size) for witness, size in rows}

    # -- saved state ---------------------------------------------------------------------------

    async def save_state(self, name: str, data: bytes) -> None:
        """Save ``data`` as ``name``, replacing what was saved before: state derived from the
        log that a start may use instead of reading the log again (never the log itself)."""
        await self._write("INSERT INTO saved_state (name, data, mac) VALUES (?, ?, ?) ON CONFLICT "
                          "(name) DO UPDATE SET data = excluded.data, mac = excluded.mac",
                          (name, data, state_mac(self.mac_key, name, data)))

    async def load_state(self, name: str) -> bytes | None:
        """What was saved as ``name`` (None if nothing).

        Raises:
            StoreError: ``store.damaged``: its MAC does not verify (changed or planted).
        """
        rows = await self._read("SELECT data, mac FROM saved_state WHERE name = ?", (name,))
        if not rows:
            return None
        data, mac = rows[0]
        if (self._mac_key is None or not isinstance(data, bytes | memoryview)
                or not isinstance(mac, bytes | memoryview)
                or not hmac.compare_digest(state_mac(self._mac_key, name, bytes(data)), bytes(mac))):
            raise StoreError(f"the saved {name} in {self.location} does not carry this log's MAC",
                             code=Code.STORE_DAMAGED)
        return bytes(data)

    # -- attachments ---------------------------------------------------------------------------

    async def attachment_size(self, sha256: str) -> int | None:
        """The size of the stored, verified attachment of digest ``sha256`` (None: not held)."""
        rows = await self._read("SELECT size FROM attachments WHERE sha256 = ?", (sha256,))
        return int(rows[0][0]) if rows else None

    async def uploaded_by(self, party: str, sha256: str) -> int | None:
        """The size of the attachment of ``sha256`` if ``party`` finished an upload of it."""
        rows = await self._read("SELECT a.size FROM attachments a JOIN attachment_parties p ON "
                                "p.sha256 = a.sha256 WHERE p.sha256 = ? AND p.party = ?",
                                (sha256, party))
        return int(rows[0][0]) if rows else None

    async def upload_state(self, party: str, sha256: str) -> Upload | None:
        """``party``'s upload of ``sha256`` under way (None: none)."""
        rows = await self._read("SELECT size, received FROM uploads WHERE party = ? AND sha256 = ?",
                                (party, sha256))
        return Upload(party, sha256, int(rows[0][0]), int(rows[0][1])) if rows else None

    async def uploading(self, party: str) -> int:
        """The bytes ``party``'s uploads under way will hold (their sizes, not what arrived)."""
        rows = await self._read("SELECT COALESCE(SUM(size), 0) FROM uploads WHERE party = ?",
                                (party,))
        return int(rows[0][0])

    async def begin_upload(self, party: str, sha256: str, size: int, time: str) -> Upload:
        """``party``'s upload of ``sha256`` (``size`` bytes): begun now, or the one under way.

        Raises:
            StoreError: ``store.write_failed``; an upload under way of another size is kept
                (``attachment.invalid``: the caller names another size for the same digest).
        """
        await self._write("INSERT INTO uploads (party, sha256, size, received, time) VALUES "
                          "(?, ?, ?, 0, ?) ON CONFLICT (party, sha256) DO NOTHING",
                          (party, sha256, size, time))
        found = await self.upload_state(party, sha256)
        assert found is not None  # inserted, or there already
        found.check_size(size)
        return found

    async def add_upload_chunk(self, party: str, sha256: str, start: int, data: bytes,
                               time: str) -> bool:
        """Append ``data`` at byte ``start`` of ``party``'s upload of ``sha256``, durably, at
        ``time`` (the upload's last activity); False (nothing written) unless ``start`` is
        exactly what it holds so far and ``data`` fits in its size. A chunk is appended once
        however its senders race."""
        fits = ("EXISTS (SELECT 1 FROM uploads WHERE party = ? AND sha256 = ? AND received = ? "
                "AND size >= ?)")
        where = (party, sha256, start, start + len(data))
        changed = await self._write_all([
            (f"INSERT INTO upload_chunks (party, sha256, start, data) SELECT ?, ?, ?, ? WHERE {fits}",
             (party, sha256, start, data, *where)),
            ("UPDATE uploads SET received = received + ?, time = ? WHERE party = ? AND sha256 = ? "
             "AND received = ? AND size >= ?", (len(data), time, *where))])
        return changed == [1, 1]

    async def expire_uploads(self, before: str) -> int:
        """Drop every upload under way whose last chunk (or start) came before ``before``, with
        the chunks it held: an upload abandoned stops counting against its party's share.
        Returns how many were dropped."""
        changed = await self._write_all([
            ("DELETE FROM upload_chunks WHERE (party, sha256) IN (SELECT party, sha256 FROM "
             "uploads WHERE time < ?)", (before,)),
            ("DELETE FROM uploads WHERE time < ?", (before,))])
        return changed[1] if changed is not None else 0

    async def upload_chunks(self, party: str, sha256: str, *, after: int = -1,
                            limit: int = 64) -> list[tuple[int, bytes]]:
        """``(start, data)`` of the chunks of ``party``'s upload starting after byte ``after``."""
        rows = await self._read("SELECT start, data FROM upload_chunks WHERE party = ? AND "
                                "sha256 = ? AND start > ? ORDER BY start LIMIT ?",
                                (party, sha256, after, limit))
        return [(int(start), blob(start, data)) for start, data in rows]

    async def finish_upload(self, party: str, sha256: str, time: str) -> int:
        """Check ``party``'s complete upload of ``sha256`` against its digest, reading it a page
        of chunks at a time; if it matches, store it as the attachment of that digest (kept
        once, whoever uploaded it too), note that ``party`` uploaded it, and end the upload.
        Returns its size.

        Raises:
            SealError: ``attachment.digest_mismatch``: incomplete, or its bytes are not that
                digest's (the upload is dropped: it must be sent again).
            StoreError: ``store.write_failed``.
        """
        upload = await self.upload_state(party, sha256)
        if upload is None:
            raise WireError("no upload of this digest is under way", code=Code.ATTACHMENT_INVALID)
        digest, at = hashlib.sha256(), -1
        while page := await self.upload_chunks(party, sha256, after=at):
            for _, data in page:
                digest.update(data)
            at = page[-1][0]
        complete = upload.received == upload.size
        if not complete or b64url(digest.digest()) != sha256:
            if complete:
                await self.drop_upload(party, sha256)
            raise SealError(f"the upload holds {upload.received} of {upload.size} bytes"
                            + ("" if not complete else ", and they are not that digest's: send "
                               "it again"), code=Code.ATTACHMENT_DIGEST_MISMATCH)
        owned = "WHERE party = ? AND sha256 = ?"
        store = [
            # new content is named by no message yet (content kept before may be: never this)
            ("INSERT INTO attachment_unnamed (sha256, time) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 "
             "FROM attachments WHERE sha256 = ?) ON CONFLICT (sha256) DO NOTHING",
             (sha256, time, sha256)),
            ("INSERT INTO attachments (sha256, size, time) VALUES (?, ?, ?) ON CONFLICT (sha256) "
             "DO NOTHING", (sha256, upload.size, time)),
            ("INSERT INTO attachment_parties (sha256, party) VALUES (?, ?) ON CONFLICT (sha256, "
             "party) DO NOTHING", (sha256, party)),
            ("INSERT INTO attachment_chunks (sha256, start, data) SELECT sha256, start, data FROM "
             f"upload_chunks {owned} AND NOT EXISTS (SELECT 1 FROM attachment_chunks WHERE "
             "sha256 = ?)", (party, sha256, sha256)),
            *_ended(party, sha256)]
        # A party finishing the same content at the same moment stores its chunks first: then
        # they are there, and the second try only ends this upload.
        if await self._write_all(store) is None and await self._write_all(store) is None:
            raise StoreError("the attachment could not be stored: try again",
                             code=Code.STORE_WRITE_FAILED)
        return upload.size

    async def name_attachments(self, digests: Sequence[str]) -> None:
        """A message about to be logged names the content of ``digests``: it is kept from now on
        (done before the message is checked and logged, so content a logged entry names is never
        counted as unnamed, whatever fails in between)."""
        if digests:
            await self._write_all([("DELETE FROM attachment_unnamed WHERE sha256 = ?", (d,))
                                   for d in sorted(set(digests))])

    async def forget_unnamed(self, before: str) -> int:
        """Drop the content that no message named and that was first stored before ``before``,
        with who uploaded it: what a party uploads and never sends stops taking room. Returns
        how many were dropped. (One writer at a time here, so nothing names the content between
        the statements; PostgreSQL, with writers on many connections, does it in one.)"""
        old = "sha256 IN (SELECT sha256 FROM attachment_unnamed WHERE time < ?)"
        changed = await self._write_all([
            (f"DELETE FROM attachment_chunks WHERE {old}", (before,)),
            (f"DELETE FROM attachment_parties WHERE {old}", (before,)),
            (f"DELETE FROM attachments WHERE {old}", (before,)),
            ("DELETE FROM attachment_unnamed WHERE time < ?", (before,))])
        return changed[2] if changed is not None else 0

    async def attachment_list(self, *, after: str = "", limit: int = 100) -> list[KeptAttachment]:
        """The stored attachments with a digest after ``after``, in digest order (a copy's)."""
        rows = await self._read(
            "SELECT a.sha256, a.size, a.time, EXISTS (SELECT 1 FROM attachment_unnamed u WHERE "
            "u.sha256 = a.sha256) FROM attachments a WHERE a.sha256 > ? ORDER BY a.sha256 LIMIT ?",
            (after, limit))
        return [KeptAttachment(str(sha256), int(size), str(time), bool(unnamed))
                for sha256, size, time, unnamed in rows]

    async def attachment_uploaders(self, sha256: str) -> list[str]:
        """The parties that uploaded the content of ``sha256`` in full."""
        rows = await self._read("SELECT party FROM attachment_parties WHERE sha256 = ? ORDER BY "
                                "party", (sha256,))
        return [str(party) for (party,) in rows]

    async def add_attachment_chunks(self, sha256: str, chunks: Sequence[tuple[int, bytes]]) -> None:
        """Chunks of content being copied in (``keep_attachment`` then keeps it)."""
        await self._write_all([("INSERT INTO attachment_chunks (sha256, start, data) VALUES "
                                "(?, ?, ?)", (sha256, start, data)) for start, data in chunks])

    async def keep_attachment(self, held: KeptAttachment, parties: Sequence[str]) -> None:
        """Keep content copied in by ``add_attachment_chunks`` (its digest checked by the
        caller), as ``held`` says, uploaded by ``parties``."""
        await self._write_all([
            ("INSERT INTO attachments (sha256, size, time) VALUES (?, ?, ?)",
             (held.sha256, held.size, held.time)),
            *(("INSERT INTO attachment_parties (sha256, party) VALUES (?, ?)", (held.sha256, party))
              for party in parties),
            *([("INSERT INTO attachment_unnamed (sha256, time) VALUES (?, ?)",
                (held.sha256, held.time))] if held.unnamed else [])])

    async def drop_upload(self, party: str, sha256: str) -> None:
        await self._write_all(_ended(party, sha256))

    async def attachment_bytes(self, sha256: str, start: int, limit: int) -> bytes:
        """At most ``limit`` bytes of the stored attachment from byte ``start`` (fewer at its
        end; none past it): from the one stored chunk that holds ``start``."""
        rows = await self._read("SELECT start, data FROM attachment_chunks WHERE sha256 = ? AND "
                                "start <= ? ORDER BY start DESC LIMIT 1", (sha256, start))
        if not rows:
            return b""
        offset = start - int(rows[0][0])
        return blob(rows[0][0], rows[0][1])[offset:offset + limit]

    async def attachment_chunks(self, sha256: str, *, after: int = -1,
                                limit: int = 64) -> list[tuple[int, bytes]]:
        """``(start, data)`` of the stored attachment's chunks starting after byte ``after``."""
        rows = await self._read("SELECT start, data FROM attachment_chunks WHERE sha256 = ? AND "
                                "start > ? ORDER BY start LIMIT ?", (sha256, after, limit))
        return [(int(start), blob(start, data)) for start, data in rows]

    # -- entries -------------------------------------------------------------------------------

    async def entries(self, *, channel: str | None = None, after: int = -1,
                      limit: int = 1000) -> list[StoredEntry]:
        """Entries with index > ``after`` in index order, of one channel or of all."""
        if channel is None:
            return await self._read_entries("WHERE e.idx > ? ORDER BY e.idx LIMIT ?", (after, limit))
        return await self._read_entries("WHERE e.channel = ? AND e.idx > ? ORDER BY e.idx LIMIT ?",
                                        (channel, after, limit))

    async def page(self, *, start: int, end: int, max_bytes: int,
                   wanted: Callable[[str, str | None], bool]) -> list[PageRow]:
        """Rows ``start..end-1`` for the log API: the leaf of each row ``wanted(kind, channel)``
        accepts, only the leaf hash of the others (their leaves are never read). Stops before
        the wanted leaves would pass ``max_bytes``, after at least one row.

        Raises:
            StoreError: ``store.damaged`` naming a row whose leaf does not match the tree.
        """
        # length() of a blob reads no overflow page: the leaves are not read yet
        heads = await self._read_bulk(
            "SELECT e.idx, e.kind, e.channel, length(e.leaf), n.hash FROM entries e LEFT JOIN "
            "nodes n ON n.level = 0 AND n.idx = e.idx WHERE e.idx >= ? AND e.idx < ? "
            "ORDER BY e.idx", (start, end))
        rows: list[tuple[int, bool, bytes]] = []
        total = 0
        for index, kind, channel, length, node in heads:
            if node is None:
                raise damaged(int(index), "it has no leaf hash in the log's tree")
            visible = bool(wanted(str(kind), None if channel is None else str(channel)))
            if visible:
                if rows and total + int(length) > max_bytes:
                    break
                total += int(length)
            rows.append((int(index), visible, blob(index, node)))
        shown = [index for index, visible, _ in rows if visible]
        leaves: dict[int, bytes] = {}
        for at in range(0, len(shown), 500):
            chunk = shown[at:at + 500]
            leaves.update((int(i), blob(i, leaf)) for i, leaf in await self._read_bulk(
                f"SELECT idx, leaf FROM entries WHERE idx IN ({','.join('?' * len(chunk))})", chunk))
        page = []
        for index, visible, node in rows:
            leaf = leaves.get(index) if visible else None
            if visible and (leaf is None or leaf_hash(leaf) != node):
                error = damaged(index, "its leaf does not match the log's tree (its leaf hash)")
                self.note_failure(error)
                raise error
            page.append(PageRow(index, leaf, node))
        return page

    async def selected(self, *, after: int, envelope_kinds: Sequence[str],
                       kinds: Sequence[str] = (), before: int = 2 ** 62) -> AsyncIterator[StoredEntry]:
        """Entries with index > ``after`` and < ``before``, in index order, that are envelopes of
        ``envelope_kinds`` or entries of ``kinds``: found by index, so the entries around them
        (e.g. heartbeats) are never read. Envelopes logged before their kind was recorded are
        all included."""
        env_marks, kind_marks = ",".join("?" * len(envelope_kinds)), ",".join("?" * len(kinds))
        rows = await self._read(
            f"SELECT idx FROM entries WHERE envelope_kind IN ({env_marks or 'NULL'}) AND idx > ? "
            f"AND idx < ? UNION ALL SELECT idx FROM entries WHERE envelope_kind IS NULL AND kind "
            f"IN ('envelope', {kind_marks or 'NULL'}) AND idx > ? AND idx < ?",
            (*envelope_kinds, after, before, *kinds, after, before))
        indexes = sorted(int(r[0]) for r in rows)
        for start in range(0, len(indexes), 500):
            chunk = indexes[start:start + 500]
            for stored in await self._read_entries(
                    f"WHERE e.idx IN ({','.join('?' * len(chunk))}) ORDER BY e.idx", chunk):
                yield stored

    async def last_of_kind(self, kind: str) -> list[StoredEntry]:
        """The last entry of ``kind`` of each channel (e.g. each channel's latest health state)."""
        return await self._read_entries("WHERE e.idx IN (SELECT max(idx) FROM entries WHERE kind = ? "
                                        "GROUP BY channel) ORDER BY e.idx", (kind,))

    async def first_index_at(self, time: str) -> int:
        """The first index logged at or after ``time`` (the size if none): a binary search, since
        log times never go back (the sequencer keeps them monotonic)."""
        low, high = 0, self._size
        while low < high:
            mid = (low + high) // 2
            rows = await self._read("SELECT time FROM entries WHERE idx = ?", (mid,))
            if not rows:
                error = damaged(mid, "it is missing")
                self.note_failure(error)
                raise error
            if rows[0][0] < time:
                low = mid + 1
            else:
                high = mid
        return low

    async def entry(self, index: int) -> StoredEntry | None:
        found = await self._read_entries("WHERE e.idx = ?", (index,))
        return found[0] if found else None

    async def by_envelope_id(self, envelope_id: str) -> StoredEntry | None:
        """The entry logged under ``envelope_id``: one this store committed lately without a
        read (what an echo or an ack answers, most often), else from the database."""
        recent = self._recent.get(envelope_id)
        if recent is not None:
            return recent
        found = await self._read_entries("WHERE e.envelope_id = ?", (envelope_id,))
        return found[0] if found else None

    async def envelope_ids(self, start: int, end: int) -> dict[int, str]:
        """The envelope (or document) id each entry of ``start..end-1`` was logged under, for
        those logged under one (``hotline store copy`` logs each again under its own)."""
        rows = await self._read("SELECT idx, envelope_id FROM entries WHERE idx >= ? AND idx < ? "
                                "AND envelope_id IS NOT NULL", (start, end))
        return {int(index): str(envelope_id) for index, envelope_id in rows}

    async def roster_entries(self) -> list[StoredEntry]:
        marks = ",".join("?" for _ in ROSTER_KINDS)
        return await self._read_entries(f"WHERE e.kind IN ({marks}) ORDER BY e.idx", ROSTER_KINDS)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:  # the sequencer commits what is queued, then returns
            self._wakeup.set()
            await self._task
        await self._close_connections()
