"""The one sanitizer: nothing a terminal obeys survives, and the text stays readable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hotline.display import FOLD, cells, folded, shown, unsafe
from tests.hostile_text import hostile_text as hostile


@given(hostile)
def test_nothing_a_terminal_obeys_survives(text: str) -> None:
    out = shown(text, limit=None)
    assert unsafe(out) == []
    assert "\x1b" not in out and "\n" not in out


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))))
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert shown(text, limit=None) == text


def test_controls_are_shown_as_what_they_are() -> None:
    assert shown("\x1b[2Jhi\n") == "␛[2Jhi␊"
    assert shown("a\u202eb\x9bc\x7f") == "a⟨U+202E⟩b⟨U+009B⟩c␡"


def test_long_text_is_cut_with_a_mark() -> None:
    assert shown("x" * 30, limit=10) == "x" * 10 + "…[+20 chars]"
    assert shown(12) == "12"


@given(hostile, st.integers(min_value=1, max_value=200))
def test_a_folded_line_marks_every_continuation(text: str, width: int) -> None:
    line = shown(text, limit=None)
    pieces = folded(line, width)
    assert pieces[0] + "".join(p.removeprefix(FOLD) for p in pieces[1:]) == line
    assert all(p.startswith(FOLD) for p in pieces[1:])
    assert all(sum(cells(c) for c in p) <= max(width, len(FOLD) + 8) for p in pieces)


def test_folding_counts_wide_characters_twice() -> None:
    assert folded("漢字漢字漢字漢字", 12) == ["漢字漢字漢字", FOLD + "漢字"]
