"""One typed model (issue 14, acceptance 1): log entries and wire frames are read as typed
records, by their one home (``hotline/entries.py``, the frames module), never through string
keys elsewhere; and ``dict[str, Any]``, the stand-in for data without a type, keeps shrinking."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "hotline"
# The homes of the two kinds of central data: they alone read entries and frames by key.
HOMES = {"entries.py"}
HOME_PACKAGES = ("wire/",)
KEYED = re.compile(r"\b(?:entry|frame|welcome|answer|accepted)(?:\[|\.get\()")
UNTYPED = "dict[str, Any]"
BASELINE = 198  # ``dict[str, Any]`` in hotline/ when the issue was filed
TARGET = BASELINE // 5  # down by at least 80 %


def modules() -> dict[str, str]:
    """Every module of the package but the homes, by path relative to it."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name not in HOMES and not name.startswith(HOME_PACKAGES):
            found[name] = path.read_text()
    return found


def keyed_reads() -> list[str]:
    """``path:line: text`` of each entry or frame read by string key."""
    return [f"{name}:{number}: {line.strip()}"
            for name, text in modules().items()
            for number, line in enumerate(text.splitlines(), start=1) if KEYED.search(line)]


def test_no_module_reads_an_entry_or_a_frame_by_key() -> None:
    assert keyed_reads() == []


def test_dict_str_any_is_down_by_80_percent() -> None:
    count = sum(text.count(UNTYPED) for text in
                (path.read_text() for path in PACKAGE.rglob("*.py")))
    assert count <= TARGET, f"{count} uses of {UNTYPED} in hotline/ (at most {TARGET})"


def test_the_check_finds_what_it_looks_for() -> None:
    assert KEYED.search('kind = entry["kind"]') and KEYED.search("frame.get('type')")
    assert not KEYED.search("entries.get(number)") and not KEYED.search("stored.entry.index")
