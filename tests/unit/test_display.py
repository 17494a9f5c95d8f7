"""The one sanitizer: nothing a terminal obeys survives, and the text stays readable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hotline.display import shown, unsafe
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
