"""The regular expressions a template's ``pattern`` keywords hold, run on RE2. Pure.

Theory of operation: a template comes from a party that may be hostile, and Python's ``re``
backtracks: ``^(a+)+$`` against thirty ``a`` and a ``!`` takes minutes. RE2 (Google's engine,
``google-re2``) runs in time linear in the text and the pattern's compiled size, so no pattern
can stall a body check; what it cannot do in linear time (backreferences, lookaround) it refuses
to compile, and a template holding such a pattern is refused when it is loaded.

JSON Schema patterns are ECMA-262 expressions; RE2's syntax is close (``\\d``, ``\\w`` and ``\\b``
are ASCII in both, ``$`` ends the text), except that ECMA's ``\\s`` takes every Unicode space.
``\\s`` and ``\\S`` are rewritten to ECMA's set, so that ``\\S`` ("not blank") still refuses a
text of only non-breaking or ideographic spaces. ``\\S`` inside ``[...]`` and ``\\Q...\\E`` quoting
are refused (write them out). A pattern is at most ``MAX_PATTERN_CHARS`` characters and
compiles to at most ``MAX_PROGRAM`` RE2 instructions; ``Pattern.cost(text)`` is what one search
may take (text length times program size), which the body check counts against its budget.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import re2

from hotline.errors import ConfigError

MAX_PATTERN_CHARS = 1000
MAX_PROGRAM = 2000  # RE2 instructions; the shipped patterns compile to at most about 100

# ECMA-262 WhiteSpace and LineTerminator (the set its \s matches).
_ECMA_SPACE = (r"\t\n\x{0b}\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}"
               r"\x{205f}\x{3000}\x{feff}")


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a refused pattern is our ConfigError, not a line on stderr
    options.never_capture = True  # a body check asks only whether the text matches
    # Memory for the compiled program and its DFA's cache. Past it RE2 simulates the program
    # instead (a few ns per character and instruction: what Pattern.cost charges), so that a
    # template's patterns hold at most 256 x 256 KiB (bodyschema.MAX_PATTERNS) however a
    # sender probes them.
    options.max_mem = 256 * 1024
    return options


_OPTIONS = _options()


@dataclass(frozen=True)
class Pattern:
    source: str  # as the template wrote it
    _regex: re2._Regexp

    @property
    def program_size(self) -> int:
        return int(self._regex.programsize)

    def cost(self, text: str) -> int:
        """An upper bound on one search's work, in steps of about a microsecond: RE2 falls back
        from its DFA to a simulation costing a few nanoseconds per character and instruction."""
        return 1 + len(text) * self.program_size // 256

    def search(self, text: str) -> bool:
        """Whether ``text`` holds a match (ECMA ``RegExp.test``); text that is not valid Unicode
        (a lone surrogate: the wire refuses it, a command line may not) matches nothing."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return self._regex.search(data) is not None


def _ecma(pattern: str) -> str:
    """``pattern`` with ECMA's ``\\s``/``\\S`` spelled out for RE2 (see the module doc)."""
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            d = pattern[i + 1]
            if d == "Q":
                raise ConfigError(r"\Q...\E quoting is not supported: escape each character")
            if d == "s":
                out.append(_ECMA_SPACE if in_class else f"[{_ECMA_SPACE}]")
            elif d == "S":
                if in_class:
                    raise ConfigError(r"\S inside [...] is not supported: write the class out")
                out.append(f"[^{_ECMA_SPACE}]")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class and pattern.startswith("[:", i):  # a POSIX class such as [:alpha:]
            end = pattern.find(":]", i + 2)
            if end >= 0:
                out.append(pattern[i:end + 2])
                i = end + 2
                continue
        if in_class and c == "]":
            in_class = False
        elif not in_class and c == "[":
            in_class = True
            out.append(c)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):  # a leading ] is a literal
                out.append("]")
                i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Pattern:
    """Compile a template's pattern for RE2.

    Raises:
        ConfigError: too long, too large once compiled, or not something RE2 runs (the caller
            adds the file and key).
    """
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ConfigError(f"a pattern is at most {MAX_PATTERN_CHARS} characters")
    try:
        regex = re2.compile(_ecma(pattern), _OPTIONS)
    except re2.error as exc:
        why = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) \
            else str(exc)
        raise ConfigError(f"the pattern cannot run in linear time (RE2: {why}); backreferences "
                          "and lookaround are not allowed") from None
    if regex.programsize > MAX_PROGRAM:
        raise ConfigError(f"the pattern compiles to {regex.programsize} RE2 instructions, more "
                          f"than {MAX_PROGRAM}: simplify it")
    return Pattern(pattern, regex)
