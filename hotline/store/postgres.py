"""PostgreSQL engine of the store (``[store] url = "postgresql://..."``; docs/ARCHITECTURE.md
"Storage"). asyncpg, chosen by measurement over psycopg 3: the same appends within 10 %, reads
of a page of entries 2.9x faster (README "Benchmarks").

Theory of operation (what every engine shares: ``hotline.store.base``):
- One connection is the sequencer's: each batch is one transaction that first locks the single
  row of ``log_head`` (``SELECT ... FOR UPDATE``), so appends from every server sharing the
  database are serialized and indexes are given out densely in commit order, never twice. A
  server whose head is behind the locked one (another server appended) checks those rows' MACs
  and grows its tree border over them (``Store._followed``) before it appends: a row that no
  server holding the log key wrote never enters a tree this server extends or signs.
  ``accepted`` follows COMMIT, which returns once the WAL is flushed (``synchronous_commit`` on;
  a synchronous standby makes that survive the primary's loss).
- Triggers refuse UPDATE, DELETE and TRUNCATE of entries, nodes, checkpoints and cosignatures,
  and any INSERT into entries that is not the next index: the database itself keeps the log
  append-only, whoever connects. The signed Merkle log is what stops an attacker who owns it.
- Every server sharing the database serves members and appends; one at a time leads the log
  (signs checkpoints, sweeps deadlines, judges health): the one holding a PostgreSQL advisory
  lock on a session of its own. The others poll for the lock every ``STANDBY_POLL`` seconds
  (``standby`` is told once) and take the lead when it is free: when the leader stops, or dies
  and PostgreSQL ends its session (at once for a dead process on the database's host; within
  the TCP keepalives set below across a network). ``leading`` is set while the store leads.
- Each commit NOTIFYs the log's new size, each stored checkpoint ``checkpoint <size>``: another
  server's commit sets ``moved`` (``refresh`` brings the head up), its checkpoint sets
  ``checkpointed``. A store whose sequencer, listener or lead session ends sets
  ``session_lost``: the server stops rather than lead beside a new leader or miss commits.
- The schema is created and upgraded at open (and by ``hotline store migrate``) under an
  advisory lock, so servers starting together do not race; ``hotline_schema`` holds its version,
  and a database made by a newer release is refused rather than guessed at.
- Reads and the small writes (checkpoints, cosignatures) use a pool of their own connections,
  so they never queue behind the sequencer's transaction. SQL is written once with ``?``
  parameters (``hotline.store.base``) and numbered for PostgreSQL here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from hotline.crashpoints import crashpoint
from hotline.errorcodes import Code
from hotline.errors import StoreError
from hotline.store.base import INSERT_ENTRY, INSERT_NODE, LEAVES, Pending, Store, checked, new_row, tree_lost
from hotline.store.records import Appended
from hotline.tlog.merkle import leaf_hash

__all__ = ["SCHEMA_VERSION", "PostgresStore", "Standby", "migrate", "migrate_url", "public_url"]

SCHEMA_VERSION = 4
_MIGRATION_LOCK = 0x686F746C696E65  # "hotline": the advisory lock servers take to migrate
_LEADER_LOCK = _MIGRATION_LOCK + 1  # held, for its whole session, by the server that leads
STANDBY_POLL = 0.5  # seconds between a standby's tries to take the lead
_CHANNEL = "hotline_log"  # NOTIFY channel: the log's size after each commit
# A leader cut off by the network loses its session (and the lead) within about 5 + 2 x 3 s.
_KEEPALIVES = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}

Standby = Callable[[str], None]
"""Told, once, that another server leads the log and this one follows it (its message)."""

_APPEND_ONLY = ("entries", "nodes", "checkpoints", "cosignatures")
_SCHEMA_V1 = [
    "CREATE TABLE hotline_schema (version integer NOT NULL)",
    """CREATE TABLE entries (
        idx bigint PRIMARY KEY, time text NOT NULL, kind text NOT NULL, channel text,
        envelope_id text UNIQUE, leaf bytea NOT NULL, envelope_kind text, mac bytea)""",
    "CREATE INDEX entries_channel ON entries (channel, idx)",
    "CREATE INDEX entries_kind ON entries (kind, idx)",
    "CREATE INDEX entries_envelope_kind ON entries (envelope_kind, idx)",
    """CREATE TABLE nodes (level integer NOT NULL, idx bigint NOT NULL, hash bytea NOT NULL,
        PRIMARY KEY (level, idx))""",
    "CREATE TABLE checkpoints (size bigint PRIMARY KEY, time text NOT NULL, note text NOT NULL)",
    """CREATE TABLE cosignatures (size bigint NOT NULL, witness text NOT NULL, line text NOT NULL,
        PRIMARY KEY (size, witness))""",
    # The sequencer's lock and the log's head: one row, locked by every append transaction.
    """CREATE TABLE log_head (one boolean PRIMARY KEY DEFAULT true CHECK (one),
        size bigint NOT NULL, last_time text NOT NULL)""",
    "INSERT INTO log_head (one, size, last_time) VALUES (true, 0, '')",
    """CREATE FUNCTION hotline_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '% are append-only: % refused', TG_TABLE_NAME, TG_OP; END $$""",
    """CREATE FUNCTION hotline_next_index() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.idx IS DISTINCT FROM (SELECT COALESCE(MAX(idx), -1) + 1 FROM entries) THEN
                RAISE EXCEPTION 'entries are append-only: index must be the next one';
            END IF;
            RETURN NEW;
        END $$""",
    "CREATE TRIGGER entries_next_index BEFORE INSERT ON entries FOR EACH ROW "
    "EXECUTE FUNCTION hotline_next_index()",
    *(f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW "
      "EXECUTE FUNCTION hotline_append_only()" for table in _APPEND_ONLY),
    *(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT "
      "EXECUTE FUNCTION hotline_append_only()" for table in _APPEND_ONLY),
    "INSERT INTO hotline_schema (version) VALUES (1)",
]
# State derived from the log, saved to start faster (``Store.save_state``); not the log.
_SCHEMA_V2 = ["CREATE TABLE saved_state (name text PRIMARY KEY, data bytea NOT NULL, mac bytea NOT NULL)",
              "UPDATE hotline_schema SET version = 2"]
# Attachments (issue 19): each party's uploads under way and the verified content of each digest.
_SCHEMA_V3 = [
    """CREATE TABLE uploads (party text NOT NULL, sha256 text NOT NULL, size bigint NOT NULL,
        received bigint NOT NULL, time text NOT NULL, PRIMARY KEY (party, sha256))""",
    """CREATE TABLE upload_chunks (party text NOT NULL, sha256 text NOT NULL, start bigint NOT NULL,
        data bytea NOT NULL, PRIMARY KEY (party, sha256, start))""",
    "CREATE TABLE attachments (sha256 text PRIMARY KEY, size bigint NOT NULL, time text NOT NULL)",
    """CREATE TABLE attachment_parties (sha256 text NOT NULL, party text NOT NULL,
        PRIMARY KEY (sha256, party))""",
    """CREATE TABLE attachment_chunks (sha256 text NOT NULL, start bigint NOT NULL,
        data bytea NOT NULL, PRIMARY KEY (sha256, start))""",
    "UPDATE hotline_schema SET version = 3"]
# Attachments stored but named by no message yet (``Store.forget_unnamed``).
_SCHEMA_V4 = ["CREATE TABLE attachment_unnamed (sha256 text PRIMARY KEY, time text NOT NULL)",
              "UPDATE hotline_schema SET version = 4"]
MIGRATIONS: dict[int, list[str]] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3,
                                    4: _SCHEMA_V4}  # version -> its statements


def public_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@functools.lru_cache(maxsize=512)
def _numbered(sql: str) -> str:
    """``?`` parameters as PostgreSQL's ``$1, $2, ...`` (the store's SQL holds no ``?`` in a
    literal)."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


async def _version(conn: Any) -> int:
    exists = await conn.fetchval("SELECT to_regclass('hotline_schema') IS NOT NULL")
    return int(await conn.fetchval("SELECT max(version) FROM hotline_schema")) if exists else 0


async def migrate(conn: Any) -> tuple[int, int]:
    """Create or upgrade the schema on ``conn`` (an asyncpg connection) in one transaction,
    under an advisory lock; returns (version before, version after).

    Raises:
        StoreError: ``store.open_failed`` if a newer release made the database.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        before = await _version(conn)
        if before > SCHEMA_VERSION:
            raise StoreError(f"the database's schema is version {before}, newer than this "
                             f"release knows ({SCHEMA_VERSION}): run the newer hotline",
                             code=Code.STORE_OPEN_FAILED)
        for version in range(before + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                await conn.execute(statement)
    return before, SCHEMA_VERSION


async def migrate_url(url: str) -> tuple[int, int]:
    """``migrate`` on a connection of its own to ``url`` (``hotline store migrate``).

    Raises:
        StoreError: ``store.open_failed``: unreachable, refused, or a newer schema.
    """
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"cannot open database {public_url(url)}: {exc}",
                         code=Code.STORE_OPEN_FAILED) from None
    try:
        return await migrate(conn)
    finally:
        await conn.close()


class PostgresStore(Store):
    """The store in a PostgreSQL database (``Store.open`` of a ``postgresql://`` URL)."""

    shared = True

    def __init__(self, url: str, *, batch: int, mac_key: bytes | None) -> None:
        super().__init__(batch=batch, mac_key=mac_key)
        self.url = url
        self.engine = "postgresql"
        self.location = public_url(url)
        self.restore_advice = ("from a backup or a standby (docs/ha.md), or copy a good log in "
                               "anew (`hotline store copy`)")
        self._wconn: Any = None  # the sequencer's connection
        self._pool: Any = None  # reads and small writes
        self._listener: Any = None  # LISTENs for other servers' commits and checkpoints
        self._lconn: Any = None  # holds the leader's advisory lock, or polls for it
        self._leading: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, *, batch: int = 512, mac_key: bytes | None = None,
                      readers: int = 4, lead: bool = True,
                      standby: Standby | None = None) -> PostgresStore:
        """Connect, migrate the schema, check the head against the tree, start the sequencer,
        and (a store with ``mac_key`` and ``lead``) try for the lead: at once, then in the
        background until it is free (``leading``).

        Args:
            standby: told once that another server leads (this one follows until it leads).

        Raises:
            StoreError: ``store.open_failed`` (unreachable, refused, a newer schema),
                ``store.damaged`` (the head, entries and tree disagree).
        """
        store = cls(url, batch=batch, mac_key=mac_key)
        try:
            store._wconn = await asyncpg.connect(url, server_settings=_KEEPALIVES)
            store._wconn.add_termination_listener(store._session_ended)
            await migrate(store._wconn)
            store._pool = await asyncpg.create_pool(url, min_size=1, max_size=readers)
            await store._load_head()
            store._listener = await asyncpg.connect(url, server_settings=_KEEPALIVES)
            store._listener.add_termination_listener(store._session_ended)
            await store._listener.add_listener(_CHANNEL, store._notified)
            if lead and mac_key is not None:
                store._lconn = await asyncpg.connect(url, server_settings=_KEEPALIVES)
                store._lconn.add_termination_listener(store._session_ended)
                if not await store._try_lead():
                    if standby is not None:
                        standby(f"another server leads the log in {store.location}: this one "
                                "serves beside it and takes the lead when that server stops or dies")
                    store._leading = asyncio.create_task(store._wait_for_lead(), name="store-lead")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await store._close_connections()
            raise StoreError(f"cannot open database {store.location}: {exc}",
                             code=Code.STORE_OPEN_FAILED) from exc
        except BaseException:
            await store._close_connections()
            raise
        store._start()
        return store

    async def _try_lead(self) -> bool:
        if await self._lconn.fetchval("SELECT pg_try_advisory_lock($1)", _LEADER_LOCK):
            self.leading.set()
        return self.leading.is_set()

    async def _wait_for_lead(self) -> None:
        try:
            while not await self._try_lead():
                await asyncio.sleep(STANDBY_POLL)  # a poll: the lock has no wait with a wake-up
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self._lost(f"its session polling for the lead failed: {exc}")

    def _session_ended(self, _conn: Any) -> None:
        """A session of this store ended (the database restarted or failed over, the network
        cut, the session terminated): a leader's lock went with it, a follower may miss commits."""
        which = ("lead" if _conn is self._lconn else "listening" if _conn is self._listener
                 else "sequencer")
        self._lost(f"its {which} session with the database ended")

    def _lost(self, why: str) -> None:
        if not self._closed and not self.session_lost.is_set():
            self._broken = StoreError(f"this server's store of {self.location}: {why}",
                                      code=Code.STORE_SESSION_LOST)
            self.note_failure(self._broken)
            self.session_lost.set()

    async def _load_head(self) -> None:
        """The head as the database holds it: its size must be the entries' and the tree's."""
        size = int(await self._wconn.fetchval("SELECT size FROM log_head"))
        entries = int(await self._wconn.fetchval("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries"))
        leaves = int(await self._wconn.fetchval(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM nodes WHERE level = 0"))
        if not size == entries == leaves:
            raise tree_lost(leaves, min(size, entries), f"(the head says {size}, the entries "
                            f"{entries}). Restore the database {self.restore_advice}")
        self._size = size
        self._frontier = await self.frontier_at(size)
        self._root = self._frontier.root()

    async def _commit(self, batch: list[Pending]) -> list[Appended]:
        conn = self._wconn
        results: list[Appended] = []
        async with conn.transaction():
            head = await conn.fetchrow("SELECT size, last_time FROM log_head FOR UPDATE")
            size, last_time = int(head[0]), str(head[1])
            if size != self._size:  # another server appended since: follow its rows
                self._frontier = await self._followed(size)
            for item in batch:
                if item.envelope_id is not None:
                    rows = await conn.fetch(_numbered(f"{LEAVES} WHERE e.envelope_id = ?"),
                                            item.envelope_id)
                    known = checked(rows)
                    if known:
                        results.append(Appended(known[0], duplicate=True))
                        continue
                new = new_row(item, size, last_time, self.mac_key)
                await conn.execute(_numbered(INSERT_ENTRY), *new.values)
                await conn.executemany(_numbered(INSERT_NODE),
                                       self._frontier.append(leaf_hash(new.appended.stored.leaf)))
                results.append(new.appended)
                last_time = new.appended.stored.entry.time
                size += 1
            await conn.execute("UPDATE log_head SET size = $1, last_time = $2", size, last_time)
            # told, once this commits, to every server listening: their members' deliveries
            await conn.execute("SELECT pg_notify($1, $2)", _CHANNEL, str(size))
            crashpoint("commit.before")  # testing aid (hotline.crashpoints): no-op unless armed
        crashpoint("commit.after")
        self._size, self._root = size, self._frontier.root()
        return results

    async def _reload(self) -> None:
        # the border at the head this store has checked; rows beyond it are checked (their row
        # MACs) before the next batch is appended after them
        self._frontier = await self.frontier_at(self._size)

    def _notified(self, _conn: Any, pid: int, _channel: str, payload: str) -> None:
        """A commit's NOTIFY (the database's new size) or a checkpoint's (``checkpoint N``).
        This store's own commits are skipped by the sending session: their NOTIFY may arrive
        before the head they advance is set."""
        if payload.startswith("checkpoint "):
            self.checkpointed.set()
            return
        own = self._wconn is not None and pid == self._wconn.get_server_pid()
        if not own and payload.isdigit():
            self._heard = max(self._heard, int(payload))
            if self._heard > self._size:
                self.moved.set()

    async def add_checkpoint(self, size: int, time: str, note: str) -> None:
        await super().add_checkpoint(size, time, note)
        await self._write("SELECT pg_notify(?, ?)", (_CHANNEL, f"checkpoint {size}"))

    async def _database_size(self) -> int:
        rows = await self._read("SELECT size FROM log_head")
        return int(rows[0][0])

    def _is_failure(self, exc: BaseException) -> str | None:
        link = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                asyncpg.exceptions.InternalServerError, asyncpg.exceptions.InsufficientResourcesError)
        return f"{self.location}: {exc}" if isinstance(exc, link) else None

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        try:
            async with self._pool.acquire() as conn:
                return cast(list[Sequence[Any]], await conn.fetch(_numbered(sql), *params))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self.note_failure(exc)
            raise StoreError(f"read failed: {exc}", code=Code.STORE_READ_FAILED) from exc

    async def forget_unnamed(self, before: str) -> int:
        """As the base store's, in one statement: the unnamed rows it deletes (locked as they
        are) say what content goes, so a message naming that content at the same moment on
        another connection either names it first (and it stays) or finds it gone (and is
        refused); never a message accepted whose content was dropped."""
        changed = await self._write_all([(
            "WITH gone AS (DELETE FROM attachment_unnamed WHERE time < ? RETURNING sha256), "
            "chunks AS (DELETE FROM attachment_chunks WHERE sha256 IN (SELECT sha256 FROM gone)), "
            "parties AS (DELETE FROM attachment_parties WHERE sha256 IN (SELECT sha256 FROM gone)) "
            "DELETE FROM attachments WHERE sha256 IN (SELECT sha256 FROM gone)", (before,))])
        return changed[0] if changed is not None else 0

    async def _write_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int] | None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                # each status is "INSERT 0 n", "UPDATE n" or "DELETE n": n rows changed
                return [int((await conn.execute(_numbered(sql), *params)).rsplit(" ", 1)[1])
                        for sql, params in statements]
        except asyncpg.UniqueViolationError:
            return None
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self.note_failure(exc)
            raise StoreError(f"write failed: {exc}", code=Code.STORE_WRITE_FAILED) from exc

    async def _close_connections(self) -> None:
        if self._leading is not None:
            self._leading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._leading
        if self._lconn is not None:
            await self._lconn.close()
            self._lconn = None
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._wconn is not None:
            await self._wconn.close()
            self._wconn = None
