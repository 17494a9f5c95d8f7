"""Reading the files an auditor is given (the shell around ``hotline.audit.attachments``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from hotline.audit.attachments import GivenFile
from hotline.keys import b64url


def hash_folder(folder: Path, progress: Callable[[int], None] = lambda n: None) -> list[GivenFile]:
    """Every regular file under ``folder`` (links not followed), with its SHA-256 and size, in
    path order; ``progress`` hears the bytes read."""
    given = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as content:
            while chunk := content.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                progress(len(chunk))
        given.append(GivenFile(str(path), b64url(digest.digest()), size))
    return given
