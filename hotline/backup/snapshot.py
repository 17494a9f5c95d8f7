"""``hotline backup``: a consistent, verified copy of a log that may be serving meanwhile.

Theory of operation:
- The checkpoint file is read first, then the database is copied: every entry a checkpoint in
  that file covers was committed before the checkpoint was written, so the copy holds it.
- The copy is SQLite's online backup (``sqlite3.Connection.backup``), taken in steps of
  ``PAGES`` pages inside one read transaction of a read-only connection: in WAL mode the server
  goes on committing meanwhile, the copy is the database as it was when that transaction began
  (a backup without it would restart at every commit and, under load, might never end), and the
  server is never blocked.
- The copy is verified before it is archived, as the server would verify it at start
  (``hotline.store.integrity``: it holds the saved checkpoint, signed by the log key, at the same
  root; rows beyond it carry the server's row MAC) and with ``PRAGMA integrity_check``.
- The archive (``hotline.backup.archive``) holds the copy, the checkpoint file and a manifest;
  never a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from hotline.backup.archive import (
    CHECKPOINT,
    DATABASE,
    Manifest,
    ManifestCheckpoint,
    digest_of,
    write_archive,
)
from hotline.errorcodes import Code
from hotline.errors import BackupError, HotlineError, StoreError
from hotline.keys import SigningKey
from hotline.store import open_store, row_mac_key
from hotline.store.checkpointfile import checkpoint_path, read_checkpoint_file, write_checkpoint_file
from hotline.store.integrity import verify_store
from hotline.times import format_time
from hotline.tlog import NoteVerifier

PAGES = 1024  # pages per backup step (4 MiB at SQLite's default page size)

Progress = Callable[[int, int], None]  # (pages copied, pages in all)


@dataclass(frozen=True)
class Taken:
    path: Path
    manifest: Manifest
    bytes: int  # the archive's size


def online_copy(source: Path, target: Path, progress: Progress | None = None) -> None:
    """Copy the database ``source`` (perhaps in use by the server) to the new file ``target``,
    as one consistent snapshot, ``PAGES`` at a time."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None)
    try:
        src.execute("PRAGMA busy_timeout = 5000")
        src.execute("BEGIN")
        src.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the snapshot starts here
        dst = sqlite3.connect(target)
        try:
            def step(status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)
            src.backup(dst, pages=PAGES, progress=step)
        finally:
            dst.close()
        src.execute("COMMIT")
    finally:
        src.close()


def integrity_check(database: Path) -> None:
    """``PRAGMA integrity_check`` (every page, index and constraint) of a file at rest.

    Raises:
        BackupError: ``backup.unverified``.
    """
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        found = [str(row[0]) for row in conn.execute("PRAGMA integrity_check(5)").fetchall()]
    except sqlite3.DatabaseError as exc:
        found = [str(exc)]
    finally:
        conn.close()
    if found != ["ok"]:
        raise BackupError(f"PRAGMA integrity_check of the copy found: {'; '.join(found)[:500]}",
                          code=Code.BACKUP_UNVERIFIED)


async def _verified_copy(copy: Path, checkpoint: Path, *, key: SigningKey,
                         origin: str) -> tuple[int, str | None]:
    """Check the copy as the server checks its database at start; returns its size and the log
    time of its last entry."""
    store = await open_store(copy, mac_key=row_mac_key(key))
    try:
        await verify_store(store, file=checkpoint,
                           verifier=NoteVerifier(name=origin, public_key=key.public_key.raw))
        size = await store.size()
        last = await store.entry(size - 1) if size else None
    finally:
        await store.close()
    if last is None:
        return size, None
    try:
        return size, last.entry.time
    except StoreError:  # the tree holds it, but it is no entry: the archive names no time
        return size, None


async def take_backup(target: Path, *, database: Path, origin: str, key: SigningKey, force: bool,
                      clock: Callable[[], datetime], progress: Progress | None = None) -> Taken:
    """Write a verified backup of ``database`` (and its checkpoint file) to ``target``.

    Args:
        target: the archive to write (refused if it exists, unless ``force``).
        database: the server's database, in use or not.
        origin: the log's name (``server.origin``).
        key: the log key: the copy's checkpoint must verify under it and its unchecked rows
            carry the row MAC derived from it. It is not written anywhere.

    Raises:
        BackupError: ``backup.exists``, ``backup.no_checkpoint``, ``backup.unverified``,
            ``backup.failed``.
    """
    if target.exists() and not force:
        raise BackupError(f"{target} already exists: give another file, or --force to replace it",
                          code=Code.BACKUP_EXISTS)
    if not database.is_file():
        raise BackupError(f"there is no database at {database}", code=Code.BACKUP_FAILED)
    saved = read_checkpoint_file(checkpoint_path(database))  # first: the copy then holds it
    if saved is None:
        raise BackupError(f"there is no checkpoint file beside {database}: the server signs one "
                          "at its first start; start it once, then back up", code=Code.BACKUP_NO_CHECKPOINT)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise BackupError(f"cannot write in {target.parent}: {exc.strerror}",
                          code=Code.BACKUP_FAILED) from exc
    try:
        copy, checkpoint = folder / DATABASE, folder / CHECKPOINT
        write_checkpoint_file(checkpoint, saved)
        taken = format_time(clock())
        try:
            await asyncio.to_thread(online_copy, database, copy, progress)
        except sqlite3.Error as exc:
            raise BackupError(f"cannot copy {database}: {exc}", code=Code.BACKUP_FAILED) from exc
        try:
            size, last = await _verified_copy(copy, checkpoint, key=key, origin=origin)
        except HotlineError as exc:
            raise BackupError(f"the copy of {database} does not verify ({exc.code}): {exc.message}",
                              code=Code.BACKUP_UNVERIFIED) from exc
        await asyncio.to_thread(integrity_check, copy)
        members = {name: await asyncio.to_thread(digest_of, path)
                   for name, path in ((CHECKPOINT, checkpoint), (DATABASE, copy))}
        manifest = Manifest(origin=origin, taken=taken, created=format_time(clock()),
                            log_size=size, last_entry=last,
                            checkpoint=ManifestCheckpoint(saved.size, saved.time), members=members)
        written = await asyncio.to_thread(write_archive, target, manifest=manifest,
                                          checkpoint=checkpoint, database=copy, force=force)
    except OSError as exc:
        raise BackupError(f"backup stopped: {exc.strerror} ({exc.filename})",
                          code=Code.BACKUP_FAILED) from exc
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)  # our own temporary copy
    return Taken(target, manifest, written)
