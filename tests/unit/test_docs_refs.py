"""Docstrings point into docs/ARCHITECTURE.md by section name, and every section they name exists;
no reference points at a design document the repository does not hold."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
SCANNED = ("hotline", "scripts", "tests", "config")
# A reference: the file's name, then one or more quoted section names ("A", "B"). Line breaks
# (and the ``#`` of a continued comment) inside a reference read as one space.
REFERENCE = re.compile(r'ARCHITECTURE\.md,? ((?:"[^"]+"(?:, |; | and )?)+)')
THIS = Path(__file__).resolve()


def sources() -> list[Path]:
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".toml", ".sh", "") and path.is_file() and path != THIS:
                if "__pycache__" not in path.parts:
                    found.append(path)
    return found


def flattened(text: str) -> str:
    return re.sub(r"\s*\n\s*(?:#\s*)?", " ", text)


def headings() -> set[str]:
    return {line.lstrip("#").strip() for line in DOC.read_text().splitlines() if line.startswith("#")}


def references(text: str) -> list[str]:
    """Every section name cited, in order; an ``ARCHITECTURE.md`` naming none cites ``""``."""
    flat = flattened(text)
    cited = []
    for at in (m.end() for m in re.finditer(r"ARCHITECTURE\.md", flat)):
        match = REFERENCE.match(flat, at - len("ARCHITECTURE.md"))
        cited += re.findall(r'"([^"]+)"', match.group(1)) if match else [""]
    return cited


def test_the_reference_reader_reads_what_docstrings_write() -> None:
    text = ('"""A (docs/ARCHITECTURE.md "Roster: enrollments and agreements", "Command\n'
            'line").\n    # continued docs/ARCHITECTURE.md\n    # "Storage": why"""\n'
            'see docs/ARCHITECTURE.md for more')
    assert references(text) == ["Roster: enrollments and agreements", "Command line", "Storage", ""]


def test_the_document_has_the_sections_the_issue_asks_for() -> None:
    assert {"Layers", "Modules", "A message from compose to audit", "Log entries", "Wire protocol",
            "Transparency log", "Receipts", "Exports", "Configuration and profiles",
            "Actors and trust", "Error codes"} <= headings()


def test_every_reference_names_an_existing_section() -> None:
    known = headings()
    cited = {path: references(path.read_text(errors="replace")) for path in sources()}
    assert sum(map(len, cited.values())) >= 50  # the reader finds the references at all
    missing = [f"{path.relative_to(ROOT)}: {name!r}" for path, names in cited.items()
               for name in names if name not in known]
    assert not missing, f"sections docs/ARCHITECTURE.md lacks: {missing}"


def test_no_reference_to_design_documents_outside_the_repository() -> None:
    stale = [f"{path.relative_to(ROOT)}:{n}" for path in sources()
             for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
             if re.search(r"\b(DESIGN|STYLE|GOTCHAS)\.md\b", line)]
    assert not stale, stale
