"""The liaison's outbox: every envelope it composes, kept on disk until the server accepted it
(docs/ARCHITECTURE.md "Storage": nothing typed is lost across a crash or reconnect).

Theory of operation:

- ``put`` stores the signed envelope (its canonical JSON and its signature) in one durable
  transaction (WAL, ``synchronous=FULL``) *before* anything is sent. Its state is ``pending``.
- A pending envelope is (re)sent as is, by its id, on every connection until the server answers:
  ``accepted`` (also for a resend of an envelope it already logged: the server answers a known id
  with the original ``accepted``, so an envelope is logged exactly once) makes it ``accepted``
  with its log index; a typed refusal makes it ``refused`` with the code and reason (kept, shown
  to the officer, never resent). Nothing is ever deleted: the file is also the officer's record.
- The files an envelope names (issue 19) are staged beside the outbox (``files_dir``: a clear
  file's copy, a sealed file's sealed stream) and listed with it in the same transaction; each
  (re)send uploads them first, resuming where the server's copy stands. Once the envelope is
  settled (accepted or refused), they are deleted: the server holds them, or nobody needs them.
- Ed25519 signatures are deterministic, so the client's fresh signature on a resend is the stored
  one byte for byte, and the server's idempotency check (same id, same content) holds.
- ``see(channel, index)`` records the last log index the console has shown of each channel;
  after a reconnect (or a restart) history resumes after it. It only moves forward.
- ``remember(name, value)`` keeps small JSON state for the next run (the last roster verified,
  the log head): a cache, each value checked again by its reader before it is trusted.
- One connection, used from one thread (the console's event loop); each call is one short
  transaction. sqlite3 refuses use from another thread, which keeps that honest.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from hotline.canonical import canonical_bytes, parse
from hotline.envelope import Envelope
from hotline.errorcodes import Code
from hotline.errors import HotlineError, StoreError
from hotline.keys import SignatureJSON
from hotline.privatefiles import private_database
from hotline.times import format_time
from hotline.typed import convert

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    id        TEXT NOT NULL UNIQUE,
    channel   TEXT NOT NULL,
    kind      TEXT NOT NULL,
    envelope  TEXT NOT NULL,
    sig       TEXT NOT NULL,
    state     TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'refused')),
    log_index INTEGER,
    code      TEXT,
    reason    TEXT,
    stored    TEXT NOT NULL,
    settled   TEXT
);
CREATE TABLE IF NOT EXISTS cursor (
    channel    TEXT PRIMARY KEY,
    last_index INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS memo (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_files (
    id     TEXT NOT NULL,
    n      INTEGER NOT NULL,
    path   TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size   INTEGER NOT NULL,
    PRIMARY KEY (id, n)
);
"""


class OutboxState(StrEnum):
    PENDING = "pending"    # stored, not yet accepted: sent again on every (re)connection
    ACCEPTED = "accepted"  # durably logged by the server at ``index``
    REFUSED = "refused"    # the server refused it with a typed error; never resent


@dataclass(frozen=True)
class OutboxItem:
    """One stored envelope and what became of it."""

    seq: int
    envelope: Envelope
    sig: SignatureJSON
    state: OutboxState
    index: int | None
    code: str | None
    reason: str | None
    stored: str

    @property
    def id(self) -> str:
        return self.envelope.id


@dataclass(frozen=True)
class StagedFile:
    """A file a pending envelope names, kept beside the outbox until the server has it: what is
    uploaded (a clear file's copy, or a sealed file's stream), by the SHA-256 and size named."""

    path: str
    sha256: str
    size: int


class Outbox:
    """The SQLite outbox file of one member (default ``HOME/state/NAME.outbox.db``)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Outbox:
        """Open (creating it and its folder if needed, readable by the owner only) the outbox
        at ``path``.

        Raises:
            StoreError: the file cannot be opened or is not an outbox.
        """
        try:
            # 0600 in a 0700 folder before SQLite opens it: its -wal and -shm take the same mode
            private_database(path)
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the outbox {path}: {exc}", code=Code.STORE_OUTBOX) from exc
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        try:
            with self._conn:  # one transaction, committed (fsync'd) before returning
                self._conn.execute("BEGIN IMMEDIATE")
                cursor = self._conn.execute(sql, args)
                return cursor.rowcount
        except sqlite3.Error as exc:
            raise StoreError(f"outbox {self.path}: {exc}", code=Code.STORE_OUTBOX) from exc

    # -- envelopes -------------------------------------------------------------------------------

    def put(self, envelope: Envelope, sig: SignatureJSON, *, now: datetime,
            files: Sequence[StagedFile] = ()) -> OutboxItem:
        """Store a signed envelope as ``pending``, durably, before it is sent, with the files
        (``files``, staged in ``files_dir``) to upload before it.

        Storing the same envelope again returns the stored item (a no-op).

        Raises:
            StoreError: ``store.outbox_conflict`` if another envelope already has this id.
        """
        text = (envelope.canonical or canonical_bytes(envelope.to_json())).decode()
        sig_text = canonical_bytes(sig).decode()
        existing = self.get(envelope.id)
        if existing is not None:
            if existing.envelope.canonical.decode() != text or existing.sig != sig:
                raise StoreError(f"the outbox already holds another envelope with id {envelope.id}",
                                 code=Code.STORE_OUTBOX_CONFLICT)
            return existing
        try:
            with self._conn:  # the envelope and its files in one transaction
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("INSERT INTO outbox (id, channel, kind, envelope, sig, state, "
                                   "stored) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                                   (envelope.id, envelope.channel, envelope.kind.value, text,
                                    sig_text, format_time(now)))
                self._conn.executemany(
                    "INSERT INTO outbox_files (id, n, path, sha256, size) VALUES (?, ?, ?, ?, ?)",
                    [(envelope.id, n, f.path, f.sha256, f.size) for n, f in enumerate(files)])
        except sqlite3.Error as exc:
            raise StoreError(f"outbox {self.path}: {exc}", code=Code.STORE_OUTBOX) from exc
        item = self.get(envelope.id)
        assert item is not None
        return item

    def files(self, envelope_id: str) -> list[StagedFile]:
        """The files to upload before envelope ``envelope_id``, in the order stored."""
        rows = self._conn.execute("SELECT path, sha256, size FROM outbox_files WHERE id = ? "
                                  "ORDER BY n", (envelope_id,))
        return [StagedFile(str(path), str(sha256), int(size)) for path, sha256, size in rows]

    def files_dir(self, envelope_id: str) -> Path:
        """Where the files of a pending envelope are staged (the caller makes it)."""
        return self.path.parent / f"{self.path.stem}.files" / envelope_id

    def _settled(self, envelope_id: str) -> None:
        """Its files are no longer needed: the server has them, or refused the envelope."""
        self._write("DELETE FROM outbox_files WHERE id = ?", (envelope_id,))
        shutil.rmtree(self.files_dir(envelope_id), ignore_errors=True)

    def get(self, envelope_id: str) -> OutboxItem | None:
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (envelope_id,)).fetchone()
        return None if row is None else _item(row)

    def pending(self) -> list[OutboxItem]:
        """The envelopes still to be accepted, in the order they were composed."""
        rows = self._conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE state = 'pending' ORDER BY seq")
        return [_item(row) for row in rows]

    def items(self, channel: str | None = None) -> list[OutboxItem]:
        """Every stored envelope (of ``channel``), in the order composed."""
        if channel is None:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY seq")
        else:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM outbox WHERE channel = ? ORDER BY seq",
                                      (channel,))
        return [_item(row) for row in rows]

    def mark_accepted(self, envelope_id: str, index: int, *, now: datetime) -> None:
        """The server logged it at ``index``. Idempotent; a refused item stays refused.

        Raises:
            StoreError: ``store.outbox_unknown`` for an id never stored here,
                ``store.outbox_conflict`` if it was accepted before at another index.
        """
        item = self._known(envelope_id)
        if item.state is OutboxState.ACCEPTED:
            if item.index != index:
                raise StoreError(f"envelope {envelope_id} was accepted at index {item.index}, "
                                 f"now reported at {index}", code=Code.STORE_OUTBOX_CONFLICT)
            return
        self._write("UPDATE outbox SET state = 'accepted', log_index = ?, settled = ? "
                    "WHERE id = ? AND state = 'pending'", (index, format_time(now), envelope_id))
        self._settled(envelope_id)

    def mark_refused(self, envelope_id: str, code: str, reason: str, *, now: datetime) -> None:
        """The server refused it (typed error): keep it, never resend it."""
        self._known(envelope_id)
        self._write("UPDATE outbox SET state = 'refused', code = ?, reason = ?, settled = ? "
                    "WHERE id = ? AND state = 'pending'", (code, reason, format_time(now), envelope_id))
        self._settled(envelope_id)

    def _known(self, envelope_id: str) -> OutboxItem:
        item = self.get(envelope_id)
        if item is None:
            raise StoreError(f"no envelope {envelope_id} in the outbox", code=Code.STORE_OUTBOX_UNKNOWN)
        return item

    # -- where history resumes -------------------------------------------------------------------

    def see(self, channel: str, index: int) -> None:
        """Record that entries of ``channel`` up to ``index`` were shown (never moves back)."""
        self._write("INSERT INTO cursor (channel, last_index) VALUES (?, ?) ON CONFLICT(channel) "
                    "DO UPDATE SET last_index = max(last_index, excluded.last_index)", (channel, index))

    def last_seen(self, channel: str) -> int | None:
        """The last log index of ``channel`` shown, or None if never."""
        row = self._conn.execute("SELECT last_index FROM cursor WHERE channel = ?", (channel,)).fetchone()
        return None if row is None else int(row[0])

    # -- what the next run starts from ------------------------------------------------------------

    def remember(self, name: str, value: Any) -> None:
        self._write("INSERT INTO memo (name, value) VALUES (?, ?) ON CONFLICT(name) "
                    "DO UPDATE SET value = excluded.value", (name, canonical_bytes(value).decode()))

    def recall(self, name: str) -> Any:
        """The value last remembered under ``name``, or None (also if it is unreadable)."""
        row = self._conn.execute("SELECT value FROM memo WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        try:
            return parse(row[0])
        except HotlineError:
            return None


_COLUMNS = "seq, envelope, sig, state, log_index, code, reason, stored"


def _item(row: tuple[Any, ...]) -> OutboxItem:
    seq, envelope, sig, state, index, code, reason, stored = row
    try:
        parsed = Envelope.from_json(parse(envelope))
        signature = convert(parse(sig), SignatureJSON, what="signature")
    except HotlineError as exc:
        raise StoreError(f"outbox row {seq} is unreadable: {exc}", code=Code.STORE_OUTBOX) from exc
    return OutboxItem(seq=int(seq), envelope=parsed, sig=signature, state=OutboxState(state),
                      index=None if index is None else int(index), code=code, reason=reason,
                      stored=str(stored))
