"""Text from elsewhere made safe to show on a terminal: the one sanitizer every renderer uses.

Everything a peer or the host wrote (bodies, names, template titles, catalogue texts, reasons,
notices) may hold bytes a terminal obeys: ESC/CSI and OSC sequences redraw the screen, set the
title or corrupt the terminal; C1 controls do the same on terminals that take 8-bit controls;
bidi overrides make ``evil.exe‮gpj.`` read as ``evil.jpg.exe``; zero-width characters make two
names that differ look the same. ``shown`` keeps the text readable and makes each of these
visible as what it is:

- C0 controls, DEL and ESC become their Unicode control pictures (``␛[2J``, ``␊``, ``␡``):
  visible, never obeyed, and one column wide like the character they stand for.
- C1 controls, bidi controls, zero-width and other format characters, line and paragraph
  separators and lone surrogates become ``⟨U+202E⟩``: named by code point.
- Text longer than ``limit`` characters is cut with a mark saying how much was left out.

``folded`` wraps a line for a terminal of known width itself, marking each continuation: left to
the terminal, a long body could be sized so that its tail starts a screen line looking like a
line of the program's own.

Pure: no I/O. ``unsafe`` finds what ``shown`` would replace, for tests and assertions.
"""

from __future__ import annotations

import unicodedata

LIMIT = 2000  # characters of one field shown before it is cut (a body is seen in full elsewhere)

# Categories a terminal may act on or that hide or reorder text: controls, format characters
# (bidi, zero-width, ...), lone surrogates, line and paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_PICTURE_DEL = "\u2421"  # ␡


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # U+2400..U+241F: the control pictures of C0 (ESC is ␛)
    if code == 0x7F:
        return _PICTURE_DEL
    return f"⟨U+{code:04X}⟩"


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN


def shown(value: object, *, limit: int | None = LIMIT) -> str:
    """``value`` (``str()`` of it if not a string) as one line safe to print on a terminal.

    Args:
        value: text from a peer or the host, or any value to be shown as text.
        limit: characters kept before the rest is cut with a ``…[+N chars]`` mark; None keeps all.

    Returns:
        The text with every control, format and separator character made visible (see the
        module docstring); it contains no character ``unsafe`` reports.
    """
    text = value if isinstance(value, str) else str(value)
    cut = 0
    if limit is not None and len(text) > limit:
        text, cut = text[:limit], len(text) - limit
    out = "".join(_visible(c) if _hidden(c) else c for c in text)
    return f"{out}…[+{cut} chars]" if cut else out


def shown_lines(text: str) -> str:
    """A text of several lines (a report, a traceback), each line ``shown`` in full: its own line
    breaks kept, nothing else a terminal obeys."""
    return "\n".join(shown(line, limit=None) for line in text.split("\n"))


def unsafe(text: str) -> list[str]:
    """The characters of ``text`` that a terminal might obey or that hide or reorder text."""
    return [c for c in text if _hidden(c)]


FOLD = "  ┆ "  # the mark of a continuation line that ``folded`` made


def cells(char: str) -> int:
    """Terminal columns of one (already sanitized) character: wide East Asian forms take two,
    combining marks none."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def folded(line: str, width: int) -> list[str]:
    """``line`` cut into pieces of at most ``width`` columns; every piece after the first starts
    with ``FOLD``, so no piece can pass for a line of its own."""
    width = max(width, len(FOLD) + 8)
    out: list[str] = []
    piece, used = "", 0
    for char in line:
        size = cells(char)
        if used + size > width:
            out.append(piece)
            piece, used = FOLD, len(FOLD)
        piece += char
        used += size
    out.append(piece)
    return out


def article(word: str) -> str:
    """``word`` with its indefinite article: "an auditor", "a liaison", "an enrollment". By the
    first letter (the roles, kinds and document types named in messages all follow it)."""
    return f"{'an' if word[:1].lower() in 'aeiou' and word else 'a'} {word}"
