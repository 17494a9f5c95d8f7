"""Template files on disk: the shipped set and a deployment's ``protocols/`` folder.

The pure parsing is ``hotline.norms``; this module only reads files, each at most
``MAX_TEMPLATE_BYTES`` and only if it is a regular file (a FIFO or a device would block a
reader or never end). Two ways in:

- ``load_templates``: every file of a folder the operator chose (``hotline send``, the console,
  ``agreement draft``, ``audit``); the first bad file is a ``ConfigError``.
- ``load_pinned``: the server's. Each file's bytes are hashed first, and only a file whose
  SHA-256 an agreement pins is parsed: a file nobody pinned costs a read and a hash, never a
  parse. Blocking: the server runs it in a worker thread.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Collection
from functools import lru_cache
from pathlib import Path

from hotline.errors import ConfigError
from hotline.norms.template import MAX_TEMPLATE_BYTES, Template
from hotline.norms.templateset import TemplateSet

TEMPLATE_SUFFIXES = (".yaml", ".yml")


def shipped_dir() -> Path:
    """The templates this release ships (docs/ARCHITECTURE.md "Shipped templates"): ``protocols/`` beside the
    package in a
    checkout or editable install, or ``hotline/_protocols`` inside a built wheel."""
    package = Path(__file__).resolve().parent.parent  # hotline/
    for candidate in (package / "_protocols", package.parent / "protocols"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the shipped protocol templates are missing from this installation",
                      file=str(package.parent / "protocols"))


def read_template(path: Path) -> bytes:
    """One template file's bytes.

    Raises:
        ConfigError: not a readable regular file, or larger than ``MAX_TEMPLATE_BYTES``.
    """
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror}", file=str(path)) from None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise ConfigError("a template is a regular file", file=str(path))
        data = file.read(MAX_TEMPLATE_BYTES + 1)
    if len(data) > MAX_TEMPLATE_BYTES:
        raise ConfigError(f"a template file is at most {MAX_TEMPLATE_BYTES} bytes", file=str(path))
    return data


def _template_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError("the protocol templates folder does not exist", file=str(folder))
    return [path for path in sorted(folder.iterdir()) if path.suffix in TEMPLATE_SUFFIXES]


def load_templates(folder: Path) -> TemplateSet:
    """Every ``*.yaml`` in ``folder``; ConfigError names the first malformed file and key."""
    files = {str(path): read_template(path) for path in _template_files(folder)}
    if not files:
        raise ConfigError("no protocol templates (*.yaml) in this folder", file=str(folder))
    return TemplateSet.from_files(files)


def load_pinned(folder: Path, digests: Collection[str]) -> tuple[list[Template], list[ConfigError]]:
    """The templates in ``folder`` whose SHA-256 is one of ``digests``, parsing no other file.

    Returns:
        The templates found, and one ConfigError per file that could not be read or whose
        pinned bytes are not a valid template (one bad file does not hide the others).
    """
    found: list[Template] = []
    refused: list[ConfigError] = []
    try:
        paths = _template_files(folder)
    except ConfigError as exc:
        return found, [exc]
    for path in paths:
        try:
            data = read_template(path)
            if hashlib.sha256(data).hexdigest() in digests:
                found.append(_parsed(data, str(path)))
        except ConfigError as exc:
            refused.append(exc)
    return found, refused


@lru_cache(maxsize=256)
def _parsed(data: bytes, source: str) -> Template:
    """``Template.from_text``, once per content and file in this process: every client reads
    its pinned templates on connecting, and a template is immutable (a file that fails to parse
    raises each time: errors are not cached)."""
    return Template.from_text(data, source=source)


def install_templates(folder: Path) -> TemplateSet:
    """Copy the shipped templates into a deployment's ``protocols/`` and load them from there."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(shipped_dir().iterdir()):
        if path.suffix in TEMPLATE_SUFFIXES:
            shutil.copyfile(path, folder / path.name)
    return load_templates(folder)
