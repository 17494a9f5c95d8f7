"""``hotline restore``: put a backup back, never silently rolling the log back.

Theory of operation:
- The server must be stopped: a server still holding the database would go on writing to the
  file moved aside. SQLite shows it: a connection in WAL mode holds a lock that an exclusive lock
  cannot pass (``check_stopped``), whichever process holds it.
- The archive is hostile input (``hotline.backup.archive``). What it holds is verified as the
  server and an auditor would: its checkpoint is signed by this deployment's log key (another
  deployment's backup is ``restore.wrong_log``); its database holds that checkpoint and nothing
  the server did not write (``hotline.store.integrity``); and every entry is audited
  (``hotline.audit.verify.Auditor``: every leaf re-hashed into the tree and matched at every
  stored checkpoint, every signature and roster document checked against the pinned authority
  keys).
- Then it is compared with the checkpoints published after the backup was taken: the
  deployment's current checkpoint file (the server wrote it before publishing each checkpoint)
  and any the operator supplies (a witness's or an auditor's copy), each verified under the log
  key. A published checkpoint within the backup's log must have the same root there, or the
  backup is of another history (``restore.inconsistent``, never forced). One beyond it means
  the restore would roll the log back: entries ``size..published-1`` would be lost
  (``restore.rolls_back``), which only ``force`` accepts.
- Nothing is deleted: the database it replaces (and its -wal, -shm) and, on a forced restore, the
  checkpoint file are renamed aside; each restore is recorded in ``hotline.db.restores``
  (``hotline.store.restores``), which the server logs at every start when it records a loss.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from hotline.audit.records import EntryRecord
from hotline.audit.verify import Auditor
from hotline.backup.archive import Extracted, Manifest, fsync_folder, read_archive
from hotline.canonical import parse
from hotline.display import shown
from hotline.errorcodes import Code
from hotline.errors import BackupError, HotlineError, LogError
from hotline.hybrid import MemberKey
from hotline.keys import SigningKey, b64encode
from hotline.privatefiles import SQLITE_SIDE_FILES, private_folder
from hotline.store import Store, open_store, row_mac_key
from hotline.store.checkpointfile import checkpoint_path, read_checkpoint_file
from hotline.store.integrity import verify_store
from hotline.store.restores import (
    CoveringCheckpoint,
    Lost,
    RestoreRecord,
    append_restore,
    restores_path,
)
from hotline.times import format_time
from hotline.tlog import Checkpoint, NoteVerifier, verify_checkpoint

PUBLISHED_MAX_BYTES = 1024 * 1024
_PAGE = 1000


@dataclass(frozen=True)
class Published:
    """A checkpoint the log signed and published, verified under its key, and where it was found."""

    checkpoint: Checkpoint
    note: str
    time: str | None  # when it was signed, if the source says (a bare note does not)
    source: str

    @property
    def size(self) -> int:
        return self.checkpoint.size

    def signed(self) -> str:
        return f"signed {self.time}" if self.time else "signed at a time its source does not give"


@dataclass(frozen=True)
class Loss:
    """Entries ``first..last`` that the log published and the backup does not hold."""

    first: int
    last: int
    after: str  # the backup's snapshot began then: they were accepted later
    covered_by: Published

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def describe(self) -> str:
        before = (f"and {self.covered_by.time}" if self.covered_by.time
                  else "and the signing of that checkpoint")
        span = (f"entry {self.first} (1 entry)" if self.count == 1
                else f"entries {self.first}..{self.last} ({self.count} entries)")
        return (f"{span}, accepted between "
                f"{self.after} (when the backup was taken) {before} — covered by checkpoint "
                f"{self.covered_by.size} {self.covered_by.signed()} ({self.covered_by.source})")

    def record(self) -> Lost:
        covered = self.covered_by
        return Lost(self.first, self.last, self.count, self.after,
                    CoveringCheckpoint(covered.size, covered.time, covered.source, covered.note))


@dataclass
class Restored:
    manifest: Manifest
    audited: int  # entries audited
    checkpoints: int  # signed checkpoints they were matched against
    consistent: list[Published] = field(default_factory=list)  # published, within the backup
    loss: Loss | None = None
    kept: list[tuple[Path, Path]] = field(default_factory=list)  # (moved, to)


def _error(message: str, code: Code) -> BackupError:
    return BackupError(message, code=code)


def check_stopped(database: Path) -> None:
    """Refuse while any process (the server) has ``database`` open.

    Raises:
        BackupError: ``restore.server_running``.
    """
    if not database.exists():
        return
    conn = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        # In exclusive locking mode SQLite must lock the whole file, which it cannot while
        # another connection has the WAL database open (even idle).
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            raise _error(f"{database} is open in another process: stop `hotline serve` (and "
                         "anything else using the database), then run restore again",
                         Code.RESTORE_SERVER_RUNNING) from exc
        # any other error: the database is damaged, which is why it is being replaced
    finally:
        conn.close()


def _notes(data: bytes, source: str) -> list[tuple[str, str | None]]:
    """The notes in a published-checkpoint file: a bare signed note, a saved checkpoint file
    ``{"size", "time", "note"}`` or an auditor's state ``{"checkpoints": [note, ...]}``."""
    if not data.lstrip().startswith(b"{"):
        try:
            return [(data.decode("utf-8"), None)]
        except UnicodeDecodeError as exc:
            raise _error(f"{source} is neither a signed note nor JSON", Code.RESTORE_BAD_PUBLISHED) from exc
    try:
        value = parse(data.strip(), max_bytes=PUBLISHED_MAX_BYTES)
    except HotlineError as exc:
        raise _error(f"{source} is not JSON: {exc.message}", Code.RESTORE_BAD_PUBLISHED) from exc
    if isinstance(value, dict) and isinstance(value.get("note"), str):
        time = value.get("time")
        return [(value["note"], time if isinstance(time, str) else None)]
    if (isinstance(value, dict) and isinstance(value.get("checkpoints"), list)
            and all(isinstance(n, str) for n in value["checkpoints"])):
        return [(note, None) for note in value["checkpoints"]]
    raise _error(f'{source} holds no checkpoint: expected a signed note, {{"size", "time", '
                 '"note"}} or {"checkpoints": [note, ...]}', Code.RESTORE_BAD_PUBLISHED)


def read_published(path: Path, verifier: NoteVerifier, *, source: str | None = None) -> list[Published]:
    """The checkpoints in ``path``, each verified under the log key.

    Raises:
        BackupError: ``restore.bad_published``.
    """
    source = source or str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(PUBLISHED_MAX_BYTES + 1)
    except OSError as exc:
        raise _error(f"cannot read {source}: {exc.strerror}", Code.RESTORE_BAD_PUBLISHED) from exc
    if len(data) > PUBLISHED_MAX_BYTES:
        raise _error(f"{source} is larger than {PUBLISHED_MAX_BYTES} bytes", Code.RESTORE_BAD_PUBLISHED)
    found = []
    for note, time in _notes(data, source):
        try:
            found.append(Published(verify_checkpoint(note, verifier), note, time, source))
        except LogError as exc:
            raise _error(f"{source}: not a checkpoint signed by this log's key: {exc.message}",
                         Code.RESTORE_BAD_PUBLISHED) from exc
    return found


def _own_checkpoint(extracted: Extracted, origin: str, verifier: NoteVerifier) -> Published:
    manifest = extracted.manifest
    if manifest.origin != origin:
        raise _error(f"the backup is of log {shown(manifest.origin, limit=64)!r}, not of this "
                     f"deployment's {origin!r}", Code.RESTORE_WRONG_LOG)
    try:
        saved = read_checkpoint_file(extracted.checkpoint)
    except HotlineError as exc:
        raise _error(f"its checkpoint file: {exc.message}", Code.RESTORE_BAD_ARCHIVE) from exc
    if saved is None or (saved.size, saved.time) != (manifest.checkpoint.size, manifest.checkpoint.time):
        raise _error("its checkpoint file is not the one the manifest names", Code.RESTORE_BAD_ARCHIVE)
    try:
        checkpoint = verify_checkpoint(saved.note, verifier)
    except LogError as exc:
        raise _error("the backup's checkpoint is not signed by this deployment's log key (a backup "
                     f"of another deployment, or altered): {exc.message}", Code.RESTORE_WRONG_LOG) from exc
    if checkpoint.size != saved.size:
        raise _error("its checkpoint file gives another size than its note", Code.RESTORE_BAD_ARCHIVE)
    return Published(checkpoint, saved.note, saved.time, "the backup's checkpoint file")


async def _audit(store: Store, own: Published, verifier: NoteVerifier,
                 authorities: dict[str, MemberKey]) -> tuple[int, int]:
    """Every entry through the auditor, matched against every checkpoint the backup holds;
    returns (entries, checkpoints)."""
    auditor = Auditor(log_key=verifier, authorities=authorities)
    auditor.add_checkpoint(own.note, source=own.source)
    for size, _, note in await store.checkpoints():
        auditor.add_checkpoint(note, source=f"the backup's checkpoint {size}")
    after = -1
    while batch := await store.entries(after=after, limit=_PAGE):
        for stored in batch:
            auditor.add_entry(EntryRecord(stored.index, leaf=b64encode(stored.leaf)))
        after = batch[-1].index
    report = auditor.finish(require_witnesses=0)
    return report.size, len(auditor.checkpoints)


async def _verify(extracted: Extracted, own: Published, *, key: SigningKey, verifier: NoteVerifier,
                  authorities: dict[str, MemberKey], published: list[Published]
                  ) -> tuple[int, int, list[Published], list[Published]]:
    """The backup's log verified and compared with ``published``: (entries audited, checkpoints,
    published within it, published beyond it)."""
    try:
        store = await open_store(extracted.database, mac_key=row_mac_key(key))
    except HotlineError as exc:
        raise _error(f"the backup's database does not open ({exc.code}): {exc.message}",
                     Code.RESTORE_BAD_LOG) from exc
    try:
        try:
            await verify_store(store, file=extracted.checkpoint, verifier=verifier)
            size = await store.size()
            if size != extracted.manifest.log_size:
                raise _error(f"the backup's database holds {size} entries, the manifest says "
                             f"{extracted.manifest.log_size}", Code.RESTORE_BAD_ARCHIVE)
            audited, checkpoints = await _audit(store, own, verifier, authorities)
        except BackupError:
            raise
        except HotlineError as exc:
            raise _error(f"the backup's log does not verify ({exc.code}): {exc.message}",
                         Code.RESTORE_BAD_LOG) from exc
        within = [p for p in published if p.size <= size]
        for item in within:
            if await store.root_at(item.size) != item.checkpoint.root_hash:
                raise _error(
                    f"checkpoint {item.size} {item.signed()} ({item.source}) has another root than "
                    f"the backup's log at that size: the backup is of another history than the one "
                    "this log published (altered, or of another log under the same key); it "
                    "cannot be restored, even with --force", Code.RESTORE_INCONSISTENT)
        return audited, checkpoints, within, [p for p in published if p.size > size]
    finally:
        await store.close()


def _aside(path: Path, stamp: str, kept: list[tuple[Path, Path]]) -> None:
    """Rename ``path`` (and SQLite's side files of it) to ``NAME.replaced-STAMP``."""
    for suffix in ("", *SQLITE_SIDE_FILES):
        old = path.with_name(path.name + suffix)
        if old.exists():
            new = path.with_name(f"{path.name}.replaced-{stamp}{suffix}")
            os.rename(old, new)
            kept.append((old, new))


async def restore(archive: Path, *, database: Path, origin: str, key: SigningKey,
                  authorities: dict[str, MemberKey], published_files: list[Path], force: bool,
                  clock: Callable[[], datetime]) -> Restored:
    """Verify ``archive`` and restore it as ``database`` (with its checkpoint file).

    Args:
        archive: a file ``hotline backup`` wrote.
        database: the deployment's database (it may not exist: a new host).
        origin, key: the log's name and key; the backup must be of this log.
        authorities: the pinned authority keys the audit checks the roster against.
        published_files: checkpoints published after the backup, kept by witnesses or auditors.
        force: restore even if that loses published entries (never if it is inconsistent).

    Raises:
        BackupError: ``restore.server_running``, ``restore.bad_archive``,
            ``restore.hash_mismatch``, ``restore.wrong_log``, ``restore.bad_log``,
            ``restore.bad_published``, ``restore.inconsistent``, ``restore.rolls_back``,
            ``restore.failed`` (a file could not be read, written or moved: says which).
    """
    check_stopped(database)
    verifier = NoteVerifier(name=origin, public_key=key.public_key.raw)
    current = checkpoint_path(database)
    published = []
    if current.exists():
        published += read_published(current, verifier, source=f"the checkpoint file {current}")
    for path in published_files:
        published += read_published(path, verifier)
    try:
        private_folder(database.parent)
        folder = Path(tempfile.mkdtemp(prefix=f".{database.name}.restoring-", dir=database.parent))
    except OSError as exc:
        raise _error(f"cannot write in {database.parent}: {exc.strerror}", Code.RESTORE_FAILED) from exc
    kept: list[tuple[Path, Path]] = []
    try:
        return await _restore(archive, folder, database=database, origin=origin, key=key,
                              verifier=verifier, authorities=authorities, published=published,
                              force=force, clock=clock, kept=kept)
    except OSError as exc:
        moved = "; ".join(f"{old} -> {new}" for old, new in kept) or "none"
        raise _error(f"restore stopped: {exc.strerror} ({exc.filename}); files moved aside so "
                     f"far: {moved}", Code.RESTORE_FAILED) from exc
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)  # our own temporary extraction


async def _restore(archive: Path, folder: Path, *, database: Path, origin: str, key: SigningKey,
                   verifier: NoteVerifier, authorities: dict[str, MemberKey],
                   published: list[Published], force: bool, clock: Callable[[], datetime],
                   kept: list[tuple[Path, Path]]) -> Restored:
    current = checkpoint_path(database)
    extracted = read_archive(archive, folder)
    own = _own_checkpoint(extracted, origin, verifier)
    audited, checkpoints, within, beyond = await _verify(
        extracted, own, key=key, verifier=verifier, authorities=authorities, published=published)
    result = Restored(extracted.manifest, audited, checkpoints, within, kept=kept)
    if beyond:
        latest = max(beyond, key=lambda p: p.size)
        result.loss = Loss(audited, latest.size - 1, extracted.manifest.taken, latest)
        if not force:
            raise _error(
                f"restoring would roll the log back: the backup holds {audited} entries, but "
                f"{result.loss.describe()}. Those entries would be lost. Restore a backup taken "
                "after that checkpoint; or, if none exists, restore this one with --force, "
                "accepting the loss (witnesses will then flag this log as rolled back: start "
                "a new log under a new key and origin instead, and keep this one for audit)",
                Code.RESTORE_ROLLS_BACK)
    check_stopped(database)  # again: it may have been started meanwhile
    stamp = format_time(clock()).replace("-", "").replace(":", "").replace(".", "")
    _aside(database, stamp, result.kept)
    if result.loss is not None:  # it holds what this database no longer can
        _aside(current, stamp, result.kept)
    os.replace(extracted.database, database)
    if not current.exists():
        os.replace(extracted.checkpoint, current)
    fsync_folder(database.parent)
    append_restore(restores_path(database), RestoreRecord(
        restored=format_time(clock()), archive=str(archive),
        backup_taken=extracted.manifest.taken, log_size=audited, checkpoint=own.size,
        lost=None if result.loss is None else result.loss.record(),
        kept={str(old): str(new) for old, new in result.kept}))
    return result

