"""SQLite store: one sequencer thread with group commit, append-only entries (docs/ARCHITECTURE.md "Storage").

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
- Reads use a second thread with its own read-only connection, so they never queue behind fsyncs;
  the log API's large pages use a third, so they never queue ahead of a member's resume.
- Every row carries a MAC (``hotline.store.rowmac``) keyed from the log key: rows beyond the last
  signed checkpoint are the server's own only if their MAC verifies (``verify_tail``).
- Whatever is read back is checked before use: every leaf against its level-0 tree node (an edited
  leaf is ``store.damaged`` naming its index) and decoded defensively (``hotline.store.records``);
  the database gets ``PRAGMA quick_check`` at open. A read that finds damage marks the store as
  failing (``problem``), which ``/healthz`` reports.
- The database, its -wal and -shm are 0600 (``hotline.privatefiles``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from hotline.crashpoints import crashpoint
from hotline.entries import ROSTER_KINDS, Entry, EnvelopeEntry, channel_of, kind_of, leaf_bytes, with_index
from hotline.errorcodes import Code
from hotline.errors import LogError, StoreError
from hotline.privatefiles import private_database
from hotline.store.records import Appended, StoredEntry, damaged
from hotline.store.rowmac import row_mac, row_mac_valid
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

__all__ = ["Appended", "PageRow", "Store", "StoredEntry"]

T = TypeVar("T")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS entries (
        idx INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        channel TEXT,
        envelope_id TEXT UNIQUE,
        leaf BLOB NOT NULL,
        envelope_kind TEXT,
        mac BLOB
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
class PageRow:
    """One row of a log API page: the leaf if it was asked for, else only its leaf hash."""

    index: int
    leaf: bytes | None
    hash: bytes  # the leaf hash (the row's level-0 tree node)


@dataclass
class _Pending:
    entry: Entry
    envelope_id: str | None
    future: asyncio.Future[Appended]


# A stored leaf with its level-0 tree node, so every read can check one against the other.
_LEAVES = "SELECT e.idx, e.leaf, n.hash FROM entries e LEFT JOIN nodes n ON n.level = 0 AND n.idx = e.idx"


def _checked(rows: Iterable[tuple[Any, ...]]) -> list[StoredEntry]:
    """``(idx, leaf, level-0 hash)`` rows as entries, each leaf checked against the tree."""
    found = []
    for index, leaf, node in rows:
        leaf = bytes(leaf)
        if node is None or leaf_hash(leaf) != bytes(node):
            raise damaged(int(index), "its leaf does not match the log's tree (its leaf hash)")
        found.append(StoredEntry(int(index), leaf))
    return found


def _is_damage(exc: sqlite3.Error) -> bool:
    """Errors that mean the file is damaged or the disk failing (not a busy lock)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR", "SQLITE_FULL")) or (
        not name and "malformed" in str(exc))


def _quick_check(conn: sqlite3.Connection, path: Path) -> None:
    try:
        found = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)").fetchall()]
    except sqlite3.DatabaseError as exc:
        found = [str(exc)]
    if found != ["ok"]:
        said = " ".join("; ".join(found).split())[:500]  # one line
        raise StoreError(f"PRAGMA quick_check found damage in {path}: {said}. "
                         "Restore the database together with its -wal from a backup taken after "
                         "the latest checkpoint (see its .checkpoint file)", code=Code.STORE_DAMAGED)


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


def _init_txn(db: sqlite_utils.Database) -> bool:
    """Create or upgrade the schema; True if the rows so far predate row MACs."""
    for statement in _SCHEMA:
        db.execute(statement)
    # The envelope's kind, so a start-up replay reads messages and acks without the heartbeats
    # around them. A log created before the column gets it empty for its older rows (append-only:
    # never filled in), and readers count an empty one as any envelope kind.
    columns = {row[1] for row in db.execute("PRAGMA table_info(entries)").fetchall()}
    if "envelope_kind" not in columns:
        db.execute("ALTER TABLE entries ADD COLUMN envelope_kind TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS entries_envelope_kind ON entries (envelope_kind, idx)")
    # Row MACs: rows of a release before them have none (append-only: never filled in); they
    # are covered by the checkpoint signed at this first start.
    if "mac" not in columns:
        db.execute("ALTER TABLE entries ADD COLUMN mac BLOB")
    return "mac" not in columns


def _next_index(conn: sqlite3.Connection) -> int:
    (last,) = conn.execute("SELECT MAX(idx) FROM entries").fetchone()  # O(log n): the rowid
    return 0 if last is None else int(last) + 1


def _insert_nodes(conn: sqlite3.Connection, frontier: Frontier, leaf: bytes) -> None:
    conn.executemany("INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)",
                     frontier.append(leaf_hash(leaf)))


def _load_frontier(conn: sqlite3.Connection, size: int) -> Frontier:
    """The tree's right border; leaves logged before the tree existed are hashed in now."""
    (leaves,) = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM nodes WHERE level = 0").fetchone()
    if leaves > size:
        raise StoreError(f"the log's tree holds {leaves} leaves but the database only {size} "
                         "entries: entries were lost or removed. Restore the database together "
                         "with its -wal from a backup taken after the latest checkpoint (see its "
                         ".checkpoint file)", code=Code.STORE_DAMAGED)

    def get(level: int, index: int) -> bytes:
        row = conn.execute("SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)).fetchone()
        if row is None:
            raise KeyError((level, index))
        return bytes(row[0])

    try:
        frontier = Frontier.from_nodes(int(leaves), get)
    except LogError as exc:
        raise StoreError(f"the log's tree is damaged: {exc.message}", code=Code.STORE_DAMAGED) from exc
    if leaves < size:
        conn.execute("BEGIN IMMEDIATE")
        for (leaf,) in conn.execute("SELECT leaf FROM entries WHERE idx >= ? ORDER BY idx",
                                    (leaves,)).fetchall():
            _insert_nodes(conn, frontier, bytes(leaf))
        conn.execute("COMMIT")
    return frontier


def _append_txn(conn: sqlite3.Connection, frontier: Frontier, batch: list[_Pending],
                mac_key: bytes) -> tuple[list[Appended], bytes]:
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
                rows = conn.execute(f"{_LEAVES} WHERE e.envelope_id = ?", (item.envelope_id,))
                known = _checked(rows.fetchall())
                if known:
                    results.append(Appended(known[0], duplicate=True))
                    continue
            # Log times never go back (auditors check it): a caller that read the clock before
            # an await may come after one that read it later.
            last_time = max(item.entry.time, last_time)
            entry = with_index(item.entry, size, time=last_time)
            leaf = leaf_bytes(entry)
            envelope_kind = entry.envelope.kind.value if isinstance(entry, EnvelopeEntry) else None
            conn.execute("INSERT INTO entries (idx, time, kind, channel, envelope_id, leaf, "
                         "envelope_kind, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (size, entry.time, kind_of(entry), channel_of(entry), item.envelope_id,
                          leaf, envelope_kind, row_mac(mac_key, size, leaf)))
            _insert_nodes(conn, frontier, leaf)
            results.append(Appended(StoredEntry(size, leaf, entry), duplicate=False))
            size += 1
        crashpoint("commit.before")  # testing aid (hotline.crashpoints): no-op unless armed
        conn.execute("COMMIT")
        crashpoint("commit.after")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results, frontier.root()


class Store:
    """The narrow store interface the server uses (docs/ARCHITECTURE.md "Scale-out path": a PostgreSQL backend
    would
    implement these same coroutines)."""

    def __init__(self, path: Path, *, batch: int = 512, mac_key: bytes | None = None) -> None:
        self.path = path
        self._batch = batch
        self._mac_key = mac_key
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-reader")
        self._bulk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-bulk")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._bconn: sqlite3.Connection | None = None
        self._queue: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._size = 0  # committed entries; only the sequencer advances it
        self._frontier = Frontier()  # owned by the writer thread
        self._root = EMPTY_ROOT  # tree root at self._size
        self.committed = asyncio.Event()  # set after every commit (the checkpointer waits on it)
        self.upgraded = False  # this open added row MACs to a database whose rows have none
        self.problem: str | None = None  # the first damage or disk failure seen, for /healthz
        self._broken: StoreError | None = None  # set when no further commit can be right

    @classmethod
    async def open(cls, path: Path, *, batch: int = 512, mac_key: bytes | None = None) -> Store:
        """Open (creating it 0600 if needed) the database at ``path`` and check it.

        Args:
            path: the database file; its folder is created 0700 if missing.
            batch: most entries committed in one transaction.
            mac_key: the row-MAC key (``hotline.store.rowmac.row_mac_key`` of the log key);
                without it the store only reads (appends raise ``store.read_only``).

        Raises:
            StoreError: ``store.open_failed``, or ``store.damaged`` if ``PRAGMA quick_check``
                or the tree finds damage.
        """
        store = cls(path, batch=batch, mac_key=mac_key)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(store._writer, store._open_writer)
            await loop.run_in_executor(store._reader, store._open_reader)
            await loop.run_in_executor(store._bulk, store._open_bulk)
        except (sqlite3.Error, OSError) as exc:
            await store._close_connections()
            raise StoreError(f"cannot open database {path}: {exc}", code=Code.STORE_OPEN_FAILED) from exc
        except BaseException:
            await store._close_connections()
            raise
        store._task = asyncio.create_task(store._sequencer(), name="store-sequencer")
        return store

    def _open_writer(self) -> None:
        private_database(self.path)
        self._wconn = _connect(self.path, readonly=False)
        _quick_check(self._wconn, self.path)
        self.upgraded = _init_txn(sqlite_utils.Database(self._wconn, execute_plugins=False))
        self._size = _next_index(self._wconn)
        self._frontier = _load_frontier(self._wconn, self._size)
        self._root = self._frontier.root()

    def _open_reader(self) -> None:
        self._rconn = _connect(self.path, readonly=True)

    def _open_bulk(self) -> None:
        self._bconn = _connect(self.path, readonly=True)

    def enqueue(self, entry: Entry, *, envelope_id: str | None = None) -> asyncio.Future[Appended]:
        """Queue ``entry`` (at index ``PENDING``: the sequencer assigns it, in enqueue order).

        The future resolves only after COMMIT. With ``envelope_id`` already stored it resolves to
        the stored entry with ``duplicate=True`` and nothing is written.
        """
        if self._closed:
            raise StoreError("store is closed", code=Code.STORE_CLOSED)
        if self._mac_key is None:
            raise StoreError("store opened without the row-MAC key: read only", code=Code.STORE_READ_ONLY)
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(entry, envelope_id, future))
        self._wakeup.set()
        return future

    async def append(self, entry: Entry, *, envelope_id: str | None = None) -> Appended:
        """``enqueue`` and wait for the commit."""
        return await self.enqueue(entry, envelope_id=envelope_id)

    async def _sequencer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch, self._queue = self._queue[:self._batch], self._queue[self._batch:]
                assert self._wconn is not None and self._mac_key is not None
                try:
                    if self._broken is not None:
                        raise self._broken
                    results, root = await loop.run_in_executor(
                        self._writer, _append_txn, self._wconn, self._frontier, batch, self._mac_key)
                except Exception as exc:  # fail every caller of this batch, keep serving
                    if isinstance(exc, sqlite3.Error):
                        self.note_failure(exc)
                    if self._broken is None:
                        try:  # the failed batch moved the in-memory frontier: reload it
                            self._frontier = await loop.run_in_executor(
                                self._writer, _load_frontier, self._wconn, self._size)
                        except (sqlite3.Error, StoreError) as reload:
                            # without a frontier no commit can be right: refuse them all
                            self.note_failure(reload)
                            self._broken = StoreError(f"the log's tree cannot be reloaded: {reload}",
                                                      code=Code.STORE_DAMAGED)
                    error = StoreError(f"commit failed: {exc}", code=Code.STORE_COMMIT_FAILED)
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(error)
                    continue
                self._size, self._root = max([self._size, *(r.stored.index + 1 for r in results)]), root
                self.committed.set()
                for item, result in zip(batch, results, strict=True):
                    if not item.future.done():
                        item.future.set_result(result)
            if self._closed:
                return

    def note_failure(self, exc: Exception) -> None:
        """Remember the first sign of damage or of a failing disk (``/healthz`` reports it):
        also called for the storage beside the database (the checkpoint file)."""
        if self.problem is not None:
            return
        if isinstance(exc, StoreError) and exc.code in (Code.STORE_DAMAGED,
                                                        Code.STORE_CHECKPOINT_WRITE_FAILED):
            self.problem = exc.message
        elif isinstance(exc, sqlite3.Error) and _is_damage(exc):
            self.problem = f"{self.path}: {exc}"

    async def _run(self, executor: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        """Run a read on ``executor``; a SQLite error is a typed ``store.read_failed``."""
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn)
        except sqlite3.Error as exc:
            self.note_failure(exc)
            raise StoreError(f"read failed: {exc}", code=Code.STORE_READ_FAILED) from exc
        except StoreError as exc:
            self.note_failure(exc)
            raise

    async def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            assert self._rconn is not None
            return list(self._rconn.execute(sql, tuple(params)).fetchall())
        return await self._run(self._reader, run)

    async def _read_entries(self, where: str, params: Iterable[Any] = ()) -> list[StoredEntry]:
        """Entries ``{_LEAVES} {where}``, each leaf checked against its level-0 tree node."""
        def run() -> list[StoredEntry]:
            assert self._rconn is not None
            return _checked(self._rconn.execute(f"{_LEAVES} {where}", tuple(params)).fetchall())
        return await self._run(self._reader, run)

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
        found = {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}
        missing = [node for node in wanted if node not in found]
        if missing:
            error = StoreError(f"the log's tree has no node {missing[0]} (level, index)",
                               code=Code.STORE_DAMAGED)
            self.note_failure(error)
            raise error
        return found

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
        try:
            return Frontier.from_nodes(size, lambda level, index: nodes[level, index]).root()
        except LogError as exc:
            raise StoreError(f"the log's tree is damaged: {exc.message}", code=Code.STORE_DAMAGED) from exc

    def _check_size(self, size: int) -> None:
        if size > self._size:
            raise LogError(f"size {size} is beyond the log's {self._size} entries", code=Code.LOG_BAD_RANGE)

    async def verify_tail(self, boundary: int) -> None:
        """Check the rows from ``boundary`` on (beyond the last signed checkpoint): each must be
        the next index, carry this server's row MAC, and the tree over them must be the stored
        one. Rows below ``boundary`` are vouched for by the signed checkpoint of that size.

        Raises:
            StoreError: ``store.unauthenticated_rows`` naming the first row the server did not
                write, ``store.damaged`` for a gap or a tree that does not match the rows.
        """
        size, root = self.tree_head()
        if boundary >= size:
            return
        nodes = await self._nodes(frontier_nodes(boundary))
        key = self._mac_key

        def run() -> bytes:
            assert self._rconn is not None
            frontier = Frontier.from_nodes(boundary, lambda level, index: nodes[level, index])
            expected = boundary
            for index, leaf, mac in self._rconn.execute(
                    "SELECT idx, leaf, mac FROM entries WHERE idx >= ? AND idx < ? ORDER BY idx",
                    (boundary, size)):
                if index != expected:
                    raise damaged(expected, "it is missing")
                leaf = bytes(leaf)
                if key is None or not row_mac_valid(key, index, leaf, None if mac is None else bytes(mac)):
                    raise StoreError(
                        f"entry {index} is beyond the last signed checkpoint ({boundary} entries) "
                        f"but does not carry this server's row MAC: it was not written by this "
                        f"server (entries {index}..{size - 1} are suspect). Find out who wrote to "
                        f"{self.path}, and restore it together with its -wal from a backup",
                        code=Code.STORE_UNAUTHENTICATED_ROWS)
                frontier.append(leaf_hash(leaf))
                expected += 1
            if expected != size:
                raise damaged(expected, "it is missing")
            return frontier.root()
        if await self._run(self._reader, run) != root:
            raise StoreError(f"the log's tree over entries {boundary}..{size - 1} does not match "
                             "their leaves", code=Code.STORE_DAMAGED)

    async def add_checkpoint(self, size: int, time: str, note: str) -> None:
        await self._write("INSERT INTO checkpoints (size, time, note) VALUES (?, ?, ?)", (size, time, note))

    async def checkpoints(self, *, since: int = -1, limit: int = -1) -> list[tuple[int, str, str]]:
        """``(size, time, note)`` of the checkpoints larger than ``since``, oldest first."""
        rows = await self._read("SELECT size, time, note FROM checkpoints WHERE size > ? ORDER BY size "
                                "LIMIT ?", (since, limit))
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
            self.note_failure(exc)
            raise StoreError(f"write failed: {exc}", code=Code.STORE_WRITE_FAILED) from exc

    async def entries(self, *, channel: str | None = None, after: int = -1,
                      limit: int = 1000) -> list[StoredEntry]:
        """Entries with index > ``after`` in index order, of one channel or of all."""
        if channel is None:
            return await self._read_entries("WHERE e.idx > ? ORDER BY e.idx LIMIT ?", (after, limit))
        return await self._read_entries("WHERE e.channel = ? AND e.idx > ? ORDER BY e.idx LIMIT ?",
                                        (channel, after, limit))

    async def page(self, *, start: int, end: int, max_bytes: int,
                   wanted: Callable[[str, str | None], bool]) -> list[PageRow]:
        """Rows ``start..end-1`` for the log API, on a reader of their own: the leaf of each row
        ``wanted(kind, channel)`` accepts, only the leaf hash of the others (their leaves are never
        read). Stops before the wanted leaves would pass ``max_bytes``, after at least one row.

        Raises:
            StoreError: ``store.damaged`` naming a row whose leaf does not match the tree.
        """
        def run() -> list[PageRow]:
            assert self._bconn is not None
            rows: list[tuple[int, bool, bytes]] = []
            total = 0
            # length() of a blob reads no overflow page: the leaves are not read yet
            cursor = self._bconn.execute(
                "SELECT e.idx, e.kind, e.channel, length(e.leaf), n.hash FROM entries e LEFT JOIN "
                "nodes n ON n.level = 0 AND n.idx = e.idx WHERE e.idx >= ? AND e.idx < ? "
                "ORDER BY e.idx", (start, end))
            try:
                for index, kind, channel, length, node in cursor:
                    if node is None:
                        raise damaged(int(index), "it has no leaf hash in the log's tree")
                    visible = bool(wanted(str(kind), None if channel is None else str(channel)))
                    if visible:
                        if rows and total + int(length) > max_bytes:
                            break
                        total += int(length)
                    rows.append((int(index), visible, bytes(node)))
            finally:
                cursor.close()
            shown = [index for index, visible, _ in rows if visible]
            leaves: dict[int, bytes] = {}
            for at in range(0, len(shown), 500):
                chunk = shown[at:at + 500]
                leaves.update((int(i), bytes(leaf)) for i, leaf in self._bconn.execute(
                    f"SELECT idx, leaf FROM entries WHERE idx IN ({','.join('?' * len(chunk))})",
                    chunk))
            page = []
            for index, visible, node in rows:
                leaf = leaves.get(index) if visible else None
                if visible and (leaf is None or leaf_hash(leaf) != node):
                    raise damaged(index, "its leaf does not match the log's tree (its leaf hash)")
                page.append(PageRow(index, leaf, node))
            return page
        return await self._run(self._bulk, run)

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
        found = await self._read_entries("WHERE e.envelope_id = ?", (envelope_id,))
        return found[0] if found else None

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

    async def _close_connections(self) -> None:
        loop = asyncio.get_running_loop()
        # Readers first: the last connection to close folds the WAL back into the database,
        # and a read-only one cannot.
        for executor, conn in ((self._bulk, self._bconn), (self._reader, self._rconn),
                               (self._writer, self._wconn)):
            if conn is not None:
                await loop.run_in_executor(executor, conn.close)
        self._bconn = self._rconn = self._wconn = None
        for executor in (self._writer, self._reader, self._bulk):
            executor.shutdown(wait=True)
