"""The record of restores from backup, kept beside the database (``hotline.db.restores``).

``hotline restore`` appends one line per restore. A forced restore loses entries the log had
published; that must never be silent, so its line names the lost range and the checkpoint that
covered it (with its signed note), and the server logs each such loss as a warning at every
start. The file is only appended to; the operator keeps it with the deployment's records.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hotline.canonical import canonical_bytes, parse
from hotline.errorcodes import Code
from hotline.errors import HotlineError, StoreError

MAX_BYTES = 4 * 1024 * 1024


def restores_path(database: Path) -> Path:
    """``hotline.db`` -> ``hotline.db.restores``."""
    return database.with_name(database.name + ".restores")


def append_restore(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one canonical JSON line, durably (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, canonical_bytes(record) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def read_restores(path: Path) -> list[dict[str, Any]]:
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
            value = parse(line)
        except HotlineError as exc:
            raise StoreError(f"{path} line {number}: {exc.message}",
                             code=Code.STORE_RESTORES_UNREADABLE) from exc
        if not isinstance(value, dict):
            raise StoreError(f"{path} line {number}: not an object", code=Code.STORE_RESTORES_UNREADABLE)
        records.append(value)
    return records
