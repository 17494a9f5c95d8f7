"""A backup archive: one file holding a consistent copy of the database, the checkpoint file that
was beside it, and a manifest naming both with their sizes and SHA-256.

Format: a tar file (GNU format, so ``tar tvf`` lists it) of exactly three regular files, in this
order, each 0600:

- ``manifest.json``: canonical JSON, ``{"format", "origin", "taken", "created", "log_size",
  "last_entry", "checkpoint": {"size", "time"}, "members": {NAME: {"size", "sha256"}}}``;
- ``hotline.db.checkpoint``: the saved checkpoint (``hotline.store.checkpointfile``);
- ``hotline.db``: the database copy.

An archive handed to ``restore`` is hostile input (it may have been altered in storage or in
transit, or made by someone else). So it is not read with ``tarfile``, which follows pax headers
of any size, links and paths: ``read_archive`` parses the 512-byte headers itself and accepts only
what ``write_archive`` writes — those three names in that order (no path, so no traversal), regular
files only (no link, device or folder), sizes within their bounds and within the file, each
member's size and SHA-256 as the manifest says, zeros after the last member. It writes the two
files it extracts itself, into a folder the caller chose, and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, BinaryIO

import msgspec

from hotline.canonical import canonical_bytes, parse
from hotline.display import shown
from hotline.errorcodes import Code
from hotline.errors import BackupError, HotlineError
from hotline.store.checkpointfile import MAX_BYTES as CHECKPOINT_MAX_BYTES
from hotline.typed import convert, to_json

FORMAT = "hotline-backup/1"
MANIFEST = "manifest.json"
CHECKPOINT = "hotline.db.checkpoint"
DATABASE = "hotline.db"
MEMBERS = (MANIFEST, CHECKPOINT, DATABASE)  # in the order they are written
MANIFEST_MAX_BYTES = 64 * 1024
_BOUNDS = {MANIFEST: MANIFEST_MAX_BYTES, CHECKPOINT: CHECKPOINT_MAX_BYTES}
_BLOCK = 512
_CHUNK = 1024 * 1024
_TRAILER_MAX = 64 * _BLOCK  # tar pads its end with zero blocks to a 10 KiB record


Count = Annotated[int, msgspec.Meta(ge=0)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]  # short, never empty


class _Strict(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class Member(_Strict, frozen=True):
    size: Count
    sha256: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]  # hex


class ManifestCheckpoint(_Strict, frozen=True):
    """The checkpoint file's checkpoint that the database copy holds."""

    size: Count
    time: Text


class Manifest(_Strict, frozen=True, kw_only=True):
    """``manifest.json``, field for field."""

    origin: Text  # the log's name (server.origin)
    taken: Text  # when the database snapshot began: every later entry is not in it
    created: Text  # when the archive was written
    log_size: Count  # entries in the database copy
    last_entry: Text | None  # log time of its last entry
    checkpoint: ManifestCheckpoint
    members: dict[str, Member]  # CHECKPOINT and DATABASE
    format: str = FORMAT

    def to_bytes(self) -> bytes:
        return canonical_bytes(to_json(self)) + b"\n"


def bad(message: str) -> BackupError:
    return BackupError(message, code=Code.RESTORE_BAD_ARCHIVE)


def decode_manifest(data: bytes) -> Manifest:
    """The manifest, strictly (every field present, of its type, nothing else).

    Raises:
        BackupError: ``restore.bad_archive``.
    """
    try:
        value = parse(data.removesuffix(b"\n"), max_bytes=MANIFEST_MAX_BYTES)
    except HotlineError as exc:
        raise bad(f"the manifest is not canonical JSON: {exc.message}") from exc
    try:
        manifest = convert(value, Manifest, what="the manifest")
    except HotlineError as exc:
        raise bad(exc.message) from exc
    if manifest.format != FORMAT:
        raise bad(f"the manifest's format is {shown(repr(manifest.format), limit=64)}, not "
                  f"{FORMAT!r} (an archive of another tool or version)")
    if set(manifest.members) != {CHECKPOINT, DATABASE}:
        raise bad(f"the manifest's members are not exactly {sorted({CHECKPOINT, DATABASE})}")
    return manifest


def digest_of(path: Path) -> Member:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return Member(size, sha.hexdigest())


# -- writing ------------------------------------------------------------------------------------------

def write_archive(target: Path, *, manifest: Manifest, checkpoint: Path, database: Path,
                  force: bool) -> int:
    """Write the archive to ``target`` atomically (a 0600 temporary file beside it, fsynced, then
    linked or renamed into place: a crash leaves no half archive under that name); returns its
    size in bytes.

    Raises:
        BackupError: ``backup.exists`` if ``target`` exists and not ``force``; ``backup.failed``.
    """
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w", format=tarfile.GNU_FORMAT) as tar:
                mtime = 0  # the manifest says when: the headers carry nothing of the host
                tar.addfile(_info(MANIFEST, len(manifest.to_bytes()), mtime),
                            io.BytesIO(manifest.to_bytes()))
                for name, path in ((CHECKPOINT, checkpoint), (DATABASE, database)):
                    with path.open("rb") as source:
                        tar.addfile(_info(name, manifest.members[name].size, mtime), source)
            handle.flush()
            os.fsync(handle.fileno())
        size = temporary.stat().st_size
        if force:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)  # fails if target appeared meanwhile: never overwritten
        fsync_folder(target.parent)
    except FileExistsError as exc:
        raise BackupError(f"{target} already exists: give another file, or --force to replace it",
                          code=Code.BACKUP_EXISTS) from exc
    except OSError as exc:
        raise BackupError(f"cannot write {target}: {exc.strerror}", code=Code.BACKUP_FAILED) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return size


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading (hostile input) ------------------------------------------------------------------------

@dataclass(frozen=True)
class Extracted:
    manifest: Manifest
    checkpoint: Path
    database: Path


def _octal(field: bytes, what: str) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256, for sizes past 8 GiB
        if field[0] != 0x80:
            raise bad(f"the {what} field is negative or too large")
        return int.from_bytes(field[1:], "big")
    text = field.rstrip(b"\0 ").lstrip(b" ")
    if not text or text.strip(b"01234567"):
        raise bad(f"the {what} field is not an octal number")
    return int(text, 8)


_KINDS = {b"1": "a hard link", b"2": "a symbolic link", b"3": "a character device",
          b"4": "a block device", b"5": "a folder", b"6": "a FIFO", b"x": "a pax header",
          b"g": "a global pax header", b"L": "a GNU long name", b"K": "a GNU long link name"}


def _header(block: bytes, expected: str, remaining: int) -> int:
    """Check one member header; returns the member's size."""
    if len(block) < _BLOCK:
        raise bad(f"the archive ends before member {expected}")
    if not block.strip(b"\0"):
        raise bad(f"the archive ends (zero block) before member {expected}")
    stored = _octal(block[148:156], f"header checksum of member {expected}")
    if stored != sum(block[:148]) + 8 * 32 + sum(block[156:]):
        raise bad(f"the header of member {expected} has a wrong checksum (damaged or altered)")
    if block[257:265] not in (b"ustar\x0000", b"ustar  \x00"):
        raise bad("not a tar archive of the POSIX or GNU format")
    kind = block[156:157]
    if kind not in (b"0", b"\0"):
        raise bad(f"member {expected} is {_KINDS.get(kind, 'not a regular file')}: a backup "
                  "holds regular files only")
    raw = block[0:100].rstrip(b"\0")
    if raw != expected.encode() or block[345:500].strip(b"\0") or block[157:257].strip(b"\0"):
        name = (block[345:500].rstrip(b"\0") + b"/" if block[345:500].strip(b"\0") else b"") + raw
        raise bad(f"member {shown(name.decode('utf-8', 'replace'), limit=120)!r} is not the one "
                  f"a backup holds there ({expected}; members are {', '.join(MEMBERS)}, no "
                  "folders, paths or links)")
    size = _octal(block[124:136], f"size of {expected}")
    bound = _BOUNDS.get(expected)
    if bound is not None and size > bound:
        raise bad(f"member {expected} is {size} bytes, more than the {bound} it may be")
    if size > remaining:
        raise bad(f"member {expected} says it is {size} bytes, more than the archive holds "
                  f"after its header ({remaining})")
    return size


def _chunks(handle: BinaryIO, size: int, name: str) -> Iterator[bytes]:
    left = size
    while left:
        chunk = handle.read(min(left, _CHUNK))
        if not chunk:
            raise bad(f"the archive ends inside member {name}")
        left -= len(chunk)
        yield chunk
    padding = -size % _BLOCK
    if len(handle.read(padding)) != padding:
        raise bad(f"the archive ends inside member {name}")


def _copy(handle: BinaryIO, size: int, name: str, out: IO[bytes] | None) -> Member:
    sha = hashlib.sha256()
    for chunk in _chunks(handle, size, name):
        sha.update(chunk)
        if out is not None:
            out.write(chunk)
    return Member(size, sha.hexdigest())


def _check(name: str, found: Member, manifest: Manifest) -> None:
    listed = manifest.members[name]
    if found.size != listed.size:
        raise bad(f"member {name} is {found.size} bytes, but the manifest says {listed.size}")
    if found.sha256 != listed.sha256:
        raise BackupError(f"member {name} does not have the SHA-256 the manifest gives (the "
                          "archive was damaged or altered after it was written)",
                          code=Code.RESTORE_HASH_MISMATCH)


def read_archive(path: Path, into: Path) -> Extracted:
    """Check the archive at ``path`` and extract its checkpoint file and database into the
    existing folder ``into`` (as ``hotline.db.checkpoint`` and ``hotline.db``, 0600).

    Raises:
        BackupError: ``restore.bad_archive`` (its structure, names, kinds or sizes),
            ``restore.hash_mismatch`` (a member's SHA-256 is not the manifest's),
            ``restore.failed`` (it cannot be read, or written out).
    """
    try:
        with path.open("rb") as handle:
            total = os.fstat(handle.fileno()).st_size

            def header(name: str) -> int:
                return _header(handle.read(_BLOCK), name, total - handle.tell())

            size = header(MANIFEST)
            data = b"".join(_chunks(handle, size, MANIFEST))
            manifest = decode_manifest(data)
            extracted = Extracted(manifest, into / CHECKPOINT, into / DATABASE)
            for name, target in ((CHECKPOINT, extracted.checkpoint), (DATABASE, extracted.database)):
                size = header(name)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    _check(name, _copy(handle, size, name, out), manifest)
                    out.flush()
                    os.fsync(out.fileno())
            rest = handle.read(_TRAILER_MAX + 1)
            if len(rest) > _TRAILER_MAX or rest.strip(b"\0"):
                raise bad(f"the archive holds more after member {DATABASE} (a backup holds "
                          f"{', '.join(MEMBERS)} and nothing else)")
    except OSError as exc:
        raise BackupError(f"cannot extract {path}: {exc.strerror} ({exc.filename})",
                          code=Code.RESTORE_FAILED) from exc
    return extracted
