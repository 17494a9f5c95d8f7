"""The latest signed checkpoint, kept outside the database (``hotline.db.checkpoint``).

A truncated WAL or a database restored from an old backup silently loses committed entries, and
with them the checkpoints that covered them: nothing inside the database can show that the log
went back. So every checkpoint is written here (atomically, fsynced, 0600) *before* it is stored,
broadcast or served, and the server refuses to start on a database that does not contain it
(``hotline.store.integrity``). Operators back it up together with the database.

Format: one canonical JSON object ``{"size": N, "time": RFC3339, "note": SIGNED_NOTE}``, the note
being the C2SP signed checkpoint exactly as published.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hotline.canonical import canonical_bytes, parse
from hotline.errorcodes import Code
from hotline.errors import HotlineError, StoreError
from hotline.privatefiles import write_private_atomically

MAX_BYTES = 256 * 1024


@dataclass(frozen=True)
class SavedCheckpoint:
    size: int
    time: str  # when it was signed (server time)
    note: str  # the signed checkpoint note


def checkpoint_path(database: Path) -> Path:
    """``hotline.db`` -> ``hotline.db.checkpoint`` (beside it, so backups take both)."""
    return database.with_name(database.name + ".checkpoint")


def read_checkpoint_file(path: Path) -> SavedCheckpoint | None:
    """The saved checkpoint, or None if there is no file (its signature is not checked here).

    Raises:
        StoreError: ``store.checkpoint_file`` if it cannot be read or is malformed.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}", code=Code.STORE_CHECKPOINT_FILE) from exc
    try:
        value = parse(data, max_bytes=MAX_BYTES)
    except HotlineError as exc:
        raise StoreError(f"{path} is not a saved checkpoint: {exc.message}",
                         code=Code.STORE_CHECKPOINT_FILE) from exc
    if (not isinstance(value, dict) or set(value) != {"size", "time", "note"}
            or not isinstance(value["size"], int) or isinstance(value["size"], bool)
            or value["size"] < 0 or not isinstance(value["time"], str)
            or not isinstance(value["note"], str)):
        raise StoreError(f'{path} is not a saved checkpoint {{"size", "time", "note"}}',
                         code=Code.STORE_CHECKPOINT_FILE)
    return SavedCheckpoint(value["size"], value["time"], value["note"])


def write_checkpoint_file(path: Path, saved: SavedCheckpoint) -> None:
    """Replace the saved checkpoint, durably (it is on disk when this returns).

    Raises:
        StoreError: ``store.checkpoint_write_failed``.
    """
    data = canonical_bytes({"size": saved.size, "time": saved.time, "note": saved.note}) + b"\n"
    try:
        write_private_atomically(path, data)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}",
                         code=Code.STORE_CHECKPOINT_WRITE_FAILED) from exc
