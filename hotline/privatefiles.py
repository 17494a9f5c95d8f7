"""Files only their owner may read: the server's database and checkpoint file, a client's outbox.

SQLite creates a database's ``-wal`` and ``-shm`` with the permissions of the database file, and
the database itself with the process umask (0644 under the usual 022): so the database file is
created 0600 here before SQLite opens it, in a folder created 0700, like the keys.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_folder(path: Path) -> None:
    """Create ``path`` (and missing parents) readable by the owner only; an existing folder is
    the operator's and is left as it is."""
    if path.is_dir():
        return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask


def private_database(path: Path) -> None:
    """Make ``path`` a 0600 file before SQLite opens it (creating it empty if missing, in a
    private folder), and tighten the mode of an existing database and its side files."""
    private_folder(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for file in (path, *(path.with_name(path.name + s) for s in SQLITE_SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(file, 0o600)


def write_private_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new content,
    both durable: a 0600 temporary file, fsync, rename over ``path``, fsync of the folder."""
    private_folder(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
