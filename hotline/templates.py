"""Template files on disk: the shipped set and a deployment's ``protocols/`` folder.

The pure parsing is ``hotline.protocols``; this module only reads files.
"""

from __future__ import annotations

from pathlib import Path

from hotline.errors import ConfigError
from hotline.protocols.registry import TemplateSet

TEMPLATE_SUFFIXES = (".yaml", ".yml")


def shipped_dir() -> Path:
    """The templates this release ships (DESIGN.md §13): ``protocols/`` beside the package in a
    checkout or editable install, or ``hotline/_protocols`` inside a built wheel."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_protocols", package.parent / "protocols"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the shipped protocol templates are missing from this installation",
                      file=str(package.parent / "protocols"))


def load_templates(folder: Path) -> TemplateSet:
    """Every ``*.yaml`` in ``folder``; ConfigError names the first malformed file and key."""
    if not folder.is_dir():
        raise ConfigError("the protocol templates folder does not exist", file=str(folder))
    files = {str(path): path.read_bytes() for path in sorted(folder.iterdir())
             if path.suffix in TEMPLATE_SUFFIXES}
    if not files:
        raise ConfigError("no protocol templates (*.yaml) in this folder", file=str(folder))
    return TemplateSet.from_files(files)
