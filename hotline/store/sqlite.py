"""SQLite engine of the store: one file, the embedded default (docs/ARCHITECTURE.md "Storage").

Theory of operation (what every engine shares: ``hotline.store.base``):
- One thread owns the only write connection (sqlite3 connections refuse other threads); the
  sequencer's batches run there in one ``BEGIN IMMEDIATE`` transaction, so a burst costs one
  fsync (``synchronous=FULL``: a commit returns only once the WAL is on disk).
- Triggers refuse UPDATE and DELETE, and refuse any INSERT whose index is not exactly the next one
  (which also stops ``INSERT OR REPLACE`` overwriting a row). They stop accidents; the signed
  Merkle log is what stops an attacker holding the file.
- Reads use a second thread with its own read-only connection, so they never queue behind fsyncs;
  the log API's large pages use a third, so they never queue ahead of a member's resume.
- The database gets ``PRAGMA quick_check`` at open; a read that finds damage marks the store as
  failing (``problem``), which ``/healthz`` reports.
- The database, its -wal and -shm are 0600 (``hotline.privatefiles``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from hotline.crashpoints import crashpoint
from hotline.errorcodes import Code
from hotline.errors import LogError, StoreError
from hotline.privatefiles import private_database
from hotline.store.base import (
    INSERT_ENTRY,
    INSERT_NODE,
    LEAVES,
    Pending,
    Store,
    blob,
    checked,
    new_row,
    tree_lost,
)
from hotline.store.records import Appended
from hotline.tlog.merkle import Frontier, leaf_hash

__all__ = ["SqliteStore"]

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
    # Attachments (issue 19): each party's uploads under way, chunk by chunk, and the verified
    # content of each digest, kept once. Not the log: the log commits to their digests.
    """CREATE TABLE IF NOT EXISTS uploads (
        party TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
        received INTEGER NOT NULL, time TEXT NOT NULL, PRIMARY KEY (party, sha256))""",
    """CREATE TABLE IF NOT EXISTS upload_chunks (
        party TEXT NOT NULL, sha256 TEXT NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (party, sha256, start))""",
    """CREATE TABLE IF NOT EXISTS attachments (
        sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, time TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS attachment_parties (
        sha256 TEXT NOT NULL, party TEXT NOT NULL, PRIMARY KEY (sha256, party))""",
    """CREATE TABLE IF NOT EXISTS attachment_chunks (
        sha256 TEXT NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (sha256, start))""",
    # ... and those named by no message yet (``Store.forget_unnamed``)
    """CREATE TABLE IF NOT EXISTS attachment_unnamed (
        sha256 TEXT PRIMARY KEY, time TEXT NOT NULL)""",
    # State derived from the log, saved to start faster (``Store.save_state``); not the log.
    """CREATE TABLE IF NOT EXISTS saved_state (
        name TEXT PRIMARY KEY, data BLOB NOT NULL, mac BLOB NOT NULL)""",
    *(f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} are append-only: {verb} refused'); END"""
      for table in ("nodes", "checkpoints", "cosignatures") for verb in ("UPDATE", "DELETE")),
]


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
    conn.executemany(INSERT_NODE, frontier.append(leaf_hash(leaf)))


def _load_frontier(conn: sqlite3.Connection, size: int) -> Frontier:
    """The tree's right border; leaves logged before the tree existed are hashed in now."""
    (leaves,) = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM nodes WHERE level = 0").fetchone()
    if leaves > size:
        raise tree_lost(leaves, size, "Restore the database together with its -wal from a backup "
                        "taken after the latest checkpoint (see its .checkpoint file)")

    def get(level: int, index: int) -> bytes:
        row = conn.execute("SELECT hash FROM nodes WHERE level = ? AND idx = ?", (level, index)).fetchone()
        if row is None:
            raise KeyError((level, index))
        return blob(index, row[0])

    try:
        frontier = Frontier.from_nodes(int(leaves), get)
    except LogError as exc:
        raise StoreError(f"the log's tree is damaged: {exc.message}", code=Code.STORE_DAMAGED) from exc
    if leaves < size:
        conn.execute("BEGIN IMMEDIATE")
        for index, leaf in conn.execute("SELECT idx, leaf FROM entries WHERE idx >= ? ORDER BY idx",
                                        (leaves,)).fetchall():
            _insert_nodes(conn, frontier, blob(index, leaf))
        conn.execute("COMMIT")
    return frontier


def _append_txn(conn: sqlite3.Connection, frontier: Frontier, batch: list[Pending],
                mac_key: bytes) -> tuple[list[Appended], int]:
    """Commit a batch in one transaction; returns one result per pending append, in order, and
    the size after it. On failure the caller reloads the frontier (it has moved)."""
    results: list[Appended] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        size = _next_index(conn)
        row = conn.execute("SELECT time FROM entries WHERE idx = ?", (size - 1,)).fetchone()
        last_time = str(row[0]) if row else ""
        for item in batch:
            if item.envelope_id is not None:
                rows = conn.execute(f"{LEAVES} WHERE e.envelope_id = ?", (item.envelope_id,))
                known = checked(rows.fetchall())
                if known:
                    results.append(Appended(known[0], duplicate=True))
                    continue
            new = new_row(item, size, last_time, mac_key)
            conn.execute(INSERT_ENTRY, new.values)
            _insert_nodes(conn, frontier, new.appended.stored.leaf)
            results.append(new.appended)
            last_time = new.appended.stored.entry.time
            size += 1
        crashpoint("commit.before")  # testing aid (hotline.crashpoints): no-op unless armed
        conn.execute("COMMIT")
        crashpoint("commit.after")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return results, size


class SqliteStore(Store):
    """The store in one SQLite file (``Store.open`` of a path)."""

    def __init__(self, path: Path, *, batch: int = 512, mac_key: bytes | None = None) -> None:
        super().__init__(batch=batch, mac_key=mac_key)
        self.path = path
        self.engine = "sqlite"
        self.location = str(path)
        self.restore_advice = "together with its -wal from a backup"
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-reader")
        self._bulk = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-bulk")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None
        self._bconn: sqlite3.Connection | None = None

    @classmethod
    async def open_file(cls, path: Path, *, batch: int = 512,
                        mac_key: bytes | None = None) -> SqliteStore:
        """Open (creating it 0600, its folder 0700, if needed) the database at ``path`` and
        check it (``Store.open``)."""
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
        if mac_key is not None:  # the file's one writer leads its log
            store.leading.set()
        store._start()
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

    async def _commit(self, batch: list[Pending]) -> list[Appended]:
        assert self._wconn is not None
        results, size = await asyncio.get_running_loop().run_in_executor(
            self._writer, _append_txn, self._wconn, self._frontier, batch, self.mac_key)
        self._size, self._root = size, self._frontier.root()
        return results

    async def _reload(self) -> None:
        assert self._wconn is not None
        self._frontier = await asyncio.get_running_loop().run_in_executor(
            self._writer, _load_frontier, self._wconn, self._size)

    def _is_failure(self, exc: BaseException) -> str | None:
        return f"{self.path}: {exc}" if isinstance(exc, sqlite3.Error) and _is_damage(exc) else None

    async def _run(self, executor: ThreadPoolExecutor, fn: Callable[[], T]) -> T:
        """Run a read on ``executor``; a SQLite error is a typed ``store.read_failed``."""
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn)
        except sqlite3.Error as exc:
            self.note_failure(exc)
            raise StoreError(f"read failed: {exc}", code=Code.STORE_READ_FAILED) from exc

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        def run() -> list[Sequence[Any]]:
            assert self._rconn is not None
            return list(self._rconn.execute(sql, tuple(params)).fetchall())
        return await self._run(self._reader, run)

    async def _read_bulk(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        def run() -> list[Sequence[Any]]:
            assert self._bconn is not None
            return list(self._bconn.execute(sql, tuple(params)).fetchall())
        return await self._run(self._bulk, run)

    async def _write_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int] | None:
        """On the writer thread, in one ``BEGIN IMMEDIATE`` transaction."""
        def run() -> list[int] | None:
            conn = self._wconn
            assert conn is not None
            conn.execute("BEGIN IMMEDIATE")
            try:
                changed = [conn.execute(sql, tuple(params)).rowcount for sql, params in statements]
                conn.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                conn.execute("ROLLBACK")
                if "UNIQUE" in str(exc):
                    return None
                raise
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return changed
        try:
            return await asyncio.get_running_loop().run_in_executor(self._writer, run)
        except sqlite3.Error as exc:
            self.note_failure(exc)
            raise StoreError(f"write failed: {exc}", code=Code.STORE_WRITE_FAILED) from exc

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
