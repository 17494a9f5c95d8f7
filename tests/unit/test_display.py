"""The one sanitizer: nothing a terminal obeys survives, and the text stays readable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hotline.display import shown, unsafe

# every C0/C1 control, ESC sequences, bidi controls and zero-width characters, mixed with text
CONTROLS = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]
BIDI_AND_ZERO_WIDTH = ["\u061c", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a",
                       "\u202b", "\u202c", "\u202d", "\u202e", "\u2060", "\u2066", "\u2067",
                       "\u2068", "\u2069", "\ufeff", "\u2028", "\u2029"]
SEQUENCES = ["\x1b[2J", "\x1b[H", "\x1b]0;pwned\x07", "\x1b]8;;http://x\x1b\\", "\x9b31m", "\x1bc"]
hostile = st.lists(st.one_of(st.text(), st.sampled_from(CONTROLS + BIDI_AND_ZERO_WIDTH + SEQUENCES)),
                   max_size=20).map("".join)


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
