"""Strict typed decoding of JSON values into frozen records (``msgspec`` Structs), for every
record hotline reads from elsewhere: envelopes, log entries, frames.

Two passes, each doing what it is best at: ``hotline.canonical.parse`` reads the text (it refuses
duplicate keys, floats, unsafe integers, lone surrogates: what would make two readers of a signed
document disagree, and what ``msgspec``'s own JSON reader lets through), then ``msgspec.convert``
checks the shape and types in C (strict: a bool is not an int, text is not a number) and builds
the record. A failure is one ``WireError`` (or the caller's subclass and code) naming the field
at fault in words; it never quotes a value, which came from a peer, a host or a disk.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar, overload

import msgspec

from hotline.display import shown
from hotline.errorcodes import Code
from hotline.errors import HotlineError, WireError

T = TypeVar("T")

# msgspec's messages: "<what is wrong> - at `$.a.b`" or "<what is wrong>" (at the top).
_AT = re.compile(r"^(?P<what>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<name>.*)`$", re.DOTALL)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>.*)`$", re.DOTALL)
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]*)`(?P<rest>.*?)(?:, got `(?P<got>[^`]*)`)?$", re.DOTALL)
_PATTERN = re.compile(r"^ matching regex '.*'$", re.DOTALL)


def words(exc: msgspec.ValidationError, what: str) -> str:
    """``exc`` in words, with the path from ``what`` (``$`` is ``what``); no value is quoted."""
    match = _AT.match(str(exc))
    assert match is not None  # the pattern matches any text
    text, path = match["what"], match["path"] or "$"
    where = what + path[1:] if path.startswith("$") else what
    if found := _MISSING.match(text):
        return f"{where} is missing {shown(found['name'], limit=40)}"
    if found := _UNKNOWN.match(text):
        return f"{where} has unknown field(s) {shown(found['name'], limit=40)}"
    if found := _EXPECTED.match(text):
        want = found["want"]
        if _PATTERN.match(found["rest"] or ""):
            return f"{where} is not of the required form"
        if found["rest"].startswith(" <=") or found["rest"].startswith(" >="):
            return f"{where} is out of range ({found['rest'].strip()})"
        got = f", not {found['got']}" if found["got"] else ""
        kinds = " or ".join(_TYPE_WORDS.get(one, one) for one in want.split(" | "))
        return f"{where} must be {kinds}{got}"
    if text.startswith("Invalid enum value") or text.startswith("Invalid value"):
        return f"{where} is not one of the allowed values"
    return f"{where}: {shown(text, limit=120)}"


_TYPE_WORDS = {"str": "text", "int": "an integer", "bool": "true or false", "object": "an object",
               "array": "a list", "null": "null"}


@overload
def convert(value: Any, kind: type[T], *, what: str, code: Code | None = None,
            error: type[HotlineError] = WireError) -> T: ...
@overload
def convert(value: Any, kind: Any, *, what: str, code: Code | None = None,
            error: type[HotlineError] = WireError) -> Any: ...
def convert(value: Any, kind: Any, *, what: str, code: Code | None = None,
            error: type[HotlineError] = WireError) -> Any:
    """``value`` (parsed JSON) as a ``kind`` record, or ``error`` (with ``code``, else the
    class's own: ``frame.malformed`` for a ``WireError``) naming the field: the one strict
    decoder of every typed record."""
    try:
        return msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise error(words(exc, what), code=code) from None


def to_json(record: Any) -> Any:
    """A record as plain JSON values (objects, lists, text, integers), unset fields left out."""
    return msgspec.to_builtins(record)
