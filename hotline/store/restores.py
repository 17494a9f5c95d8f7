"""The record of restores from backup, kept beside the database (``hotline.db.restores``).

``hotline restore`` appends one line per restore. A forced restore loses entries the log had
published; that must never be silent, so its line names the lost range and the checkpoint that
covered it (with its signed note), and the server logs each such loss as a warning at every
start. The file is only appended to; the operator keeps it with the deployment's records.

A line is a :class:`RestoreRecord`, read strictly; a field added later is optional, and an older
reader ignores fields it does not know (the file outlives the version that wrote it).
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from hotline.canonical import canonical_bytes, parse
from hotline.errorcodes import Code
from hotline.errors import HotlineError, StoreError
from hotline.typed import convert, to_json

MAX_BYTES = 4 * 1024 * 1024


class CoveringCheckpoint(msgspec.Struct, frozen=True):
    """The published checkpoint that covered the lost entries, and where it was found."""

    size: int
    time: str | None  # when it was signed, if its source says
    source: str
    note: str  # the signed note, verbatim


class Lost(msgspec.Struct, frozen=True):
    """Entries ``first..last`` the log had published that the restored backup does not hold."""

    first: int
    last: int
    count: int
    after: str  # the backup's snapshot began then: they were accepted later
    checkpoint: CoveringCheckpoint


class RestoreRecord(msgspec.Struct, frozen=True):
    """One restore: when, from which archive (taken when), the log size audited and the
    restored database's own checkpoint size, what was lost (None: nothing), and the files moved
    aside (moved -> to)."""

    restored: str
    archive: str
    backup_taken: str
    log_size: int
    checkpoint: int
    lost: Lost | None
    kept: dict[str, str]


def restores_path(database: Path) -> Path:
    """``hotline.db`` -> ``hotline.db.restores``."""
    return database.with_name(database.name + ".restores")


def append_restore(path: Path, record: RestoreRecord) -> None:
    """Append ``record`` as one canonical JSON line, durably (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, canonical_bytes(to_json(record)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def read_restores(path: Path) -> list[RestoreRecord]:
    """Every record, oldest first (none if there is no file).

    Raises:
        StoreError: ``store.restores_unreadable``.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}", code=Code.STORE_RESTORES_UNREADABLE) from exc
    if len(data) > MAX_BYTES:
        raise StoreError(f"{path} is larger than {MAX_BYTES} bytes", code=Code.STORE_RESTORES_UNREADABLE)
    records = []
    for number, line in enumerate(data.splitlines(), start=1):
        try:
            records.append(convert(parse(line), RestoreRecord, what="the record"))
        except HotlineError as exc:
            raise StoreError(f"{path} line {number}: {exc.message}",
                             code=Code.STORE_RESTORES_UNREADABLE) from exc
    return records
