"""SQLite store: one sequencer thread with group commit, append-only entries (DESIGN.md §10).

Theory of operation:
- One thread owns the only write connection (sqlite3 connections refuse other threads). Callers
  ``await append(...)``; a writer task collects every append waiting at that moment into one
  transaction, so a burst costs one fsync (``synchronous=FULL``: a commit returns only once the
  WAL is on disk). Futures resolve after COMMIT: ``accepted`` is never sent for an entry that a
  crash could lose.
- The sequencer assigns indexes 0, 1, 2, ... in commit order and writes the leaf bytes
  ``JCS(entry)`` with the index inside. An envelope id is UNIQUE: a resend returns the stored entry
  with ``duplicate=True`` instead of a second row.
- Triggers refuse UPDATE and DELETE, and refuse any INSERT whose index is not exactly the next one
  (which also stops ``INSERT OR REPLACE`` overwriting a row). They stop accidents; the signed
  Merkle log is what stops an attacker holding the file.
- Reads use a second thread with its own read-only connection, so they never queue behind fsyncs.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from hotline.canonical import canonical_bytes
from hotline.errors import LogError, StoreError
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

ROSTER_KINDS = ("enrollment", "revocation", "agreement")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS entries (
        idx INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        channel TEXT,
        envelope_id TEXT UNIQUE,
        leaf BLOB NOT NULL,
        envelope_kind TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS entries_channel ON entries (channel, idx)",
    "CREATE INDEX IF NOT EXISTS entries_kind ON entries (kind, idx)",
    """CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
        BEGIN SELECT RAISE(ABORT, 'entries are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
        BEGIN SELECT RAISE(ABORT, 'entries are append-only: DELETE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS entries_next_index BEFORE INSERT ON entries
        WHEN NEW.idx IS NOT (SELECT COALESCE(MAX(idx), -1) + 1 FROM entries)
        BEGIN SELECT RAISE(ABORT, 'entries are append-only: index must be the next one'); END""",
    # Merkle tree: the hash of every complete subtree (level, index), so a proof costs O(log n)
    # reads (hotline.tlog.merkle). Written in the same transaction as the leaves.
    """CREATE TABLE IF NOT EXISTS nodes (
        level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)) WITHOUT ROWID""",
    # Signed checkpoints, oldest first, and the witnesses' cosignature lines for them.
    """CREATE TABLE IF NOT EXISTS checkpoints (
        size INTEGER PRIMARY KEY, time TEXT NOT NULL, note TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cosignatures (
        size INTEGER NOT NULL, witness TEXT NOT NULL, line TEXT NOT NULL,
        PRIMARY KEY (size, witness))""",
    *(f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} are append-only: {verb} refused'); END"""
      for table in ("nodes", "checkpoints", "cosignatures") for verb in ("UPDATE", "DELETE")),
]


@dataclass(frozen=True)
class StoredEntry:
    index: int
    leaf: bytes
    parsed: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def entry(self) -> dict[str, Any]:
        """The entry object (the leaf bytes are its RFC 8785 encoding)."""
        if self.parsed is not None:
            return self.parsed
        value: dict[str, Any] = json.loads(self.leaf)
        return value


@dataclass(frozen=True)
class Appended:
    entry: StoredEntry
    duplicate: bool


@dataclass
class _Pending:
    entry: dict[str, Any]
    envelope_id: str | None
    future: asyncio.Future[Appended]


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    else:
        conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _init_txn(db: sqlite_utils.Database) -> None:
    for statement in _SCHEMA:
        db.execute(statement)
    # The envelope's kind, so a start-up replay reads messages and acks without the heartbeats
    # around them. A log created before the column gets it empty for its older rows (append-only:
    # never filled in), and readers count an empty one as any envelope kind.
    if "envelope_kind" not in {row[1] for row in db.execute("PRAGMA table_info(entries)").fetchall()}:
        db.execute("ALTER TABLE entries ADD COLUMN envelope_kind TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS entries_envelope_kind ON entries (envelope_kind, idx)")


def _next_index(conn: sqlite3.Connection) -> int:
    (last,) = conn.execute("SELECT MAX(idx) FROM entries").fetchone()  # O(log n): the rowid
    return 0 if last is None else int(last) + 1


def _insert_nodes(conn: sqlite3.Connection, frontier: Frontier, leaf: bytes) -> None:
    conn.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)",
                     frontier.append(leaf_hash(leaf)))


def _load_frontier(conn: sqlite3.Connection, size: int) -> Frontier:
    """The tree's right border; leaves logged before the tree existed are hashed in now."""
    (leaves,) = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM nodes WHERE level = 0").fetchone()

    def get(level: int, index: int) -> bytes:
        row = conn.execute("SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)).fetchone()
        if row is None:
            raise KeyError((level, index))
        return bytes(row[0])

    frontier = Frontier.from_nodes(int(leaves), get)
    if leaves < size:
        conn.execute("BEGIN IMMEDIATE")
        for (leaf,) in conn.execute("SELECT leaf FROM entries WHERE idx >= ? ORDER BY idx",
                                    (leaves,)).fetchall():
            _insert_nodes(conn, frontier, bytes(leaf))
        conn.execute("COMMIT")
    return frontier


def _append_txn(conn: sqlite3.Connection, frontier: Frontier,
                batch: list[_Pending]) -> tuple[list[Appended], bytes]:
    """Commit a batch in one transaction; returns one result per pending append, in order, and
    the tree root after the batch. On failure the caller reloads the frontier (it has moved)."""
    results: list[Appended] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        size = _next_index(conn)
        row = conn.execute("SELECT time FROM entries WHERE idx = ?", (size - 1,)).fetchone()
        last_time = str(row[0]) if row else ""
        for item in batch:
            if item.envelope_id is not None:
                row = conn.execute("SELECT idx, leaf FROM entries WHERE envelope_id = ?",
                                   (item.envelope_id,)).fetchone()
                if row is not None:
                    results.append(Appended(StoredEntry(row[0], bytes(row[1])), duplicate=True))
                    continue
            entry = {"index": size, **item.entry}
            # Log times never go back (auditors check it): a caller that read the clock before
            # an await may come after one that read it later.
            entry["time"] = last_time = max(entry["time"], last_time)
            leaf = canonical_bytes(entry)
            envelope = entry.get("envelope") if entry["kind"] == "envelope" else None
            conn.execute("INSERT INTO entries (idx, time, kind, channel, envelope_id, leaf, "
                         "envelope_kind) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (size, entry["time"], entry["kind"], entry.get("channel"),
                          item.envelope_id, leaf, envelope["kind"] if envelope else None))
            _insert_nodes(conn, frontier, leaf)
            results.append(Appended(StoredEntry(size, leaf, entry), duplicate=False))
            size += 1
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results, frontier.root()


class Store:
    """The narrow store interface the server uses (DESIGN.md §11: a PostgreSQL backend would
    implement these same coroutines)."""

    def __init__(self, path: Path, *, batch: int = 512) -> None:
        self.path = path
        self._batch = batch
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-reader")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._queue: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._size = 0  # committed entries; only the sequencer advances it
        self._frontier = Frontier()  # owned by the writer thread
        self._root = EMPTY_ROOT  # tree root at self._size
        self.committed = asyncio.Event()  # set after every commit (the checkpointer waits on it)

    @classmethod
    async def open(cls, path: Path, *, batch: int = 512) -> Store:
        store = cls(path, batch=batch)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(store._writer, store._open_writer)
            await loop.run_in_executor(store._reader, store._open_reader)
        except sqlite3.Error as exc:
            store._shutdown_threads()
            raise StoreError(f"cannot open database {path}: {exc}", code="store.open_failed") from exc
        store._task = asyncio.create_task(store._sequencer(), name="store-sequencer")
        return store

    def _open_writer(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wconn = _connect(self.path, readonly=False)
        _init_txn(sqlite_utils.Database(self._wconn, execute_plugins=False))
        self._size = _next_index(self._wconn)
        self._frontier = _load_frontier(self._wconn, self._size)
        self._root = self._frontier.root()

    def _open_reader(self) -> None:
        self._rconn = _connect(self.path, readonly=True)

    def enqueue(self, entry: dict[str, Any], *, envelope_id: str | None = None) -> asyncio.Future[Appended]:
        """Queue ``entry`` (without ``index``: the sequencer assigns it, in enqueue order).

        The future resolves only after COMMIT. With ``envelope_id`` already stored it resolves to
        the stored entry with ``duplicate=True`` and nothing is written.
        """
        if self._closed:
            raise StoreError("store is closed", code="store.closed")
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(entry, envelope_id, future))
        self._wakeup.set()
        return future

    async def append(self, entry: dict[str, Any], *, envelope_id: str | None = None) -> Appended:
        """``enqueue`` and wait for the commit."""
        return await self.enqueue(entry, envelope_id=envelope_id)

    async def _sequencer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch, self._queue = self._queue[:self._batch], self._queue[self._batch:]
                assert self._wconn is not None
                try:
                    results, root = await loop.run_in_executor(
                        self._writer, _append_txn, self._wconn, self._frontier, batch)
                except Exception as exc:  # fail every caller of this batch, keep serving
                    self._frontier = await loop.run_in_executor(
                        self._writer, _load_frontier, self._wconn, self._size)
                    error = StoreError(f"commit failed: {exc}", code="store.commit_failed")
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(error)
                    continue
                self._size, self._root = max([self._size, *(r.entry.index + 1 for r in results)]), root
                self.committed.set()
                for item, result in zip(batch, results, strict=True):
                    if not item.future.done():
                        item.future.set_result(result)
            if self._closed:
                return

    async def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            assert self._rconn is not None
            return list(self._rconn.execute(sql, tuple(params)).fetchall())
        try:
            return await asyncio.get_running_loop().run_in_executor(self._reader, run)
        except sqlite3.Error as exc:
            raise StoreError(f"read failed: {exc}", code="store.read_failed") from exc

    async def size(self) -> int:
        """Number of committed entries (kept in memory: no query)."""
        return self._size

    def tree_head(self) -> tuple[int, bytes]:
        """``(size, root)`` of everything committed so far."""
        return self._size, self._root

    async def _nodes(self, wanted: list[Node]) -> dict[Node, bytes]:
        if not wanted:
            return {}
        values = ",".join("(?, ?)" for _ in wanted)
        # A join, not a row-value IN: SQLite 3.40 plans ``(level, idx) IN (VALUES ...)`` as a
        # full scan of the node table (0.3 s at 10^6 entries); the join uses the primary key.
        rows = await self._read(f"WITH wanted(l, i) AS (VALUES {values}) SELECT n.level, n.idx, "
                                "n.hash FROM wanted JOIN nodes n ON n.level = wanted.l AND "
                                "n.idx = wanted.i", [n for node in wanted for n in node])
        return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` (O(log n) reads).

        Raises:
            LogError: ``size`` beyond the committed tree, or ``index`` not below ``size``.
        """
        self._check_size(size)
        wanted = inclusion_nodes(index, size)
        return inclusion_proof(index, size, await self._nodes(wanted))

    async def consistency_proof(self, old: int, size: int) -> list[bytes]:
        self._check_size(size)
        wanted = consistency_nodes(old, size)
        return consistency_proof(old, size, await self._nodes(wanted))

    async def root_at(self, size: int) -> bytes:
        """Tree root at an earlier ``size`` (from its O(log n) complete subtrees)."""
        self._check_size(size)
        nodes = await self._nodes(frontier_nodes(size))
        return Frontier.from_nodes(size, lambda level, index: nodes[level, index]).root()

    def _check_size(self, size: int) -> None:
        if size > self._size:
            raise LogError(f"size {size} is beyond the log's {self._size} entries", code="log.bad_range")

    async def add_checkpoint(self, size: int, time: str, note: str) -> None:
        await self._write("INSERT INTO checkpoints (size, time, note) VALUES (?, ?, ?)", (size, time, note))

    async def checkpoints(self, *, since: int = -1, limit: int = -1) -> list[tuple[int, str, str]]:
        """``(size, time, note)`` of the checkpoints larger than ``since``, oldest first."""
        rows = await self._read("SELECT size, time, note FROM checkpoints WHERE size > ? ORDER BY size "
                                "LIMIT ?", (since, limit))
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def checkpoint(self, size: int) -> str | None:
        rows = await self._read("SELECT note FROM checkpoints WHERE size = ?", (size,))
        return str(rows[0][0]) if rows else None

    async def add_cosignature(self, size: int, witness: str, line: str) -> bool:
        """Store a witness's cosignature line; False if it had already cosigned that size."""
        try:
            await self._write("INSERT INTO cosignatures (size, witness, line) VALUES (?, ?, ?)",
                              (size, witness, line))
        except StoreError as exc:
            if "UNIQUE" in exc.message:
                return False
            raise
        return True

    async def cosignatures(self, low: int, high: int | None = None) -> dict[int, list[str]]:
        """Cosignature lines of the checkpoints of sizes ``low..high`` (just ``low`` by default)."""
        rows = await self._read("SELECT size, line FROM cosignatures WHERE size BETWEEN ? AND ? "
                                "ORDER BY size, witness", (low, low if high is None else high))
        found: dict[int, list[str]] = {}
        for size, line in rows:
            found.setdefault(int(size), []).append(str(line))
        return found

    async def witnessed(self) -> dict[str, int]:
        """Each witness's largest cosigned checkpoint size (read once at start: O(cosignatures))."""
        rows = await self._read("SELECT witness, MAX(size) FROM cosignatures GROUP BY witness", ())
        return {str(witness): int(size) for witness, size in rows}

    async def _write(self, sql: str, params: Iterable[Any]) -> None:
        """A small write outside the entry sequence, on the writer thread (durable on return)."""
        def run() -> None:
            assert self._wconn is not None
            self._wconn.execute(sql, tuple(params))
        try:
            await asyncio.get_running_loop().run_in_executor(self._writer, run)
        except sqlite3.Error as exc:
            raise StoreError(f"write failed: {exc}", code="store.write_failed") from exc

    async def entries(self, *, channel: str | None = None, after: int = -1,
                      limit: int = 1000) -> list[StoredEntry]:
        """Entries with index > ``after`` in index order, of one channel or of all."""
        if channel is None:
            rows = await self._read("SELECT idx, leaf FROM entries WHERE idx > ? ORDER BY idx LIMIT ?",
                                    (after, limit))
        else:
            rows = await self._read("SELECT idx, leaf FROM entries WHERE channel = ? AND idx > ? "
                                    "ORDER BY idx LIMIT ?", (channel, after, limit))
        return [StoredEntry(r[0], bytes(r[1])) for r in rows]

    async def selected(self, *, after: int, envelope_kinds: Sequence[str],
                       kinds: Sequence[str] = ()) -> AsyncIterator[StoredEntry]:
        """Entries with index > ``after``, in index order, that are envelopes of
        ``envelope_kinds`` or entries of ``kinds``: found by index, so the entries around them
        (e.g. heartbeats) are never read. Envelopes logged before their kind was recorded are
        all included."""
        env_marks, kind_marks = ",".join("?" * len(envelope_kinds)), ",".join("?" * len(kinds))
        rows = await self._read(
            f"SELECT idx FROM entries WHERE envelope_kind IN ({env_marks}) AND idx > ? UNION ALL "
            f"SELECT idx FROM entries WHERE envelope_kind IS NULL AND kind IN ('envelope', "
            f"{kind_marks or 'NULL'}) AND idx > ?", (*envelope_kinds, after, *kinds, after))
        indexes = sorted(int(r[0]) for r in rows)
        for start in range(0, len(indexes), 500):
            chunk = indexes[start:start + 500]
            found = await self._read(f"SELECT idx, leaf FROM entries WHERE idx IN "
                                     f"({','.join('?' * len(chunk))}) ORDER BY idx", chunk)
            for index, leaf in found:
                yield StoredEntry(int(index), bytes(leaf))

    async def last_of_kind(self, kind: str) -> list[StoredEntry]:
        """The last entry of ``kind`` of each channel (e.g. each channel's latest health state)."""
        rows = await self._read("SELECT idx, leaf FROM entries WHERE idx IN (SELECT max(idx) FROM "
                                "entries WHERE kind = ? GROUP BY channel) ORDER BY idx", (kind,))
        return [StoredEntry(r[0], bytes(r[1])) for r in rows]

    async def first_index_at(self, time: str) -> int:
        """The first index logged at or after ``time`` (the size if none): a binary search, since
        log times never go back (the sequencer keeps them monotonic)."""
        low, high = 0, self._size
        while low < high:
            mid = (low + high) // 2
            rows = await self._read("SELECT time FROM entries WHERE idx = ?", (mid,))
            if rows[0][0] < time:
                low = mid + 1
            else:
                high = mid
        return low

    async def entry(self, index: int) -> StoredEntry | None:
        rows = await self._read("SELECT idx, leaf FROM entries WHERE idx = ?", (index,))
        return StoredEntry(rows[0][0], bytes(rows[0][1])) if rows else None

    async def by_envelope_id(self, envelope_id: str) -> StoredEntry | None:
        rows = await self._read("SELECT idx, leaf FROM entries WHERE envelope_id = ?", (envelope_id,))
        return StoredEntry(rows[0][0], bytes(rows[0][1])) if rows else None

    async def roster_entries(self) -> list[StoredEntry]:
        marks = ",".join("?" for _ in ROSTER_KINDS)
        rows = await self._read(f"SELECT idx, leaf FROM entries WHERE kind IN ({marks}) ORDER BY idx",
                                ROSTER_KINDS)
        return [StoredEntry(r[0], bytes(r[1])) for r in rows]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:  # the sequencer commits what is queued, then returns
            self._wakeup.set()
            await self._task
        loop = asyncio.get_running_loop()
        # Reader first: the last connection to close folds the WAL back into the database,
        # and a read-only one cannot.
        if self._rconn is not None:
            await loop.run_in_executor(self._reader, self._rconn.close)
        if self._wconn is not None:
            await loop.run_in_executor(self._writer, self._wconn.close)
        self._shutdown_threads()

    def _shutdown_threads(self) -> None:
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
