"""Text a hostile sender or host would use against a terminal: every C0/C1 control, ESC/CSI/OSC
sequences, bidi overrides, zero-width characters and separators, mixed with ordinary Unicode."""

from __future__ import annotations

from hypothesis import strategies as st

CONTROLS = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]]
BIDI_AND_ZERO_WIDTH = ["\u061c", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a",
                       "\u202b", "\u202c", "\u202d", "\u202e", "\u2060", "\u2066", "\u2067",
                       "\u2068", "\u2069", "\ufeff", "\u2028", "\u2029"]
SEQUENCES = ["\x1b[2J", "\x1b[H", "\x1b[1;1H", "\x1b]0;pwned\x07", "\x1b]8;;http://x\x1b\\",
             "\x9b31m", "\x1bc", "\r\n‼FLASH‼ carol@mediator: LAUNCH DETECTED  sig✓ logged"]
# The forged line of the attack, drawn with a clear-screen, a cursor move and a title.
FORGED = ("\x1b[2J\x1b[H‼FLASH‼ carol@mediator: LAUNCH DETECTED, RESPOND NOW  sig✓ logged incl✓ "
          "wit 3/3\x1b]0;hotline\x07\x1b[8;1H\u202etxet\u200b")

hostile_text = st.lists(st.one_of(st.text(), st.sampled_from(CONTROLS + BIDI_AND_ZERO_WIDTH + SEQUENCES)),
                        min_size=1, max_size=20).map("".join)
