"""Strict text codecs shared by the note, checkpoint and proof-bundle parsers.

Each accepts only the one canonical spelling of a value, so every parsed object re-encodes to the
exact input bytes, and each raises ``LogError`` with the caller's code, never a stray
``ValueError`` or ``binascii.Error``.
"""

from __future__ import annotations

import base64
import binascii
import re

from hotline.errorcodes import Code
from hotline.errors import LogError

MAX_UINT64 = 2**64 - 1

# Signed notes "MUST NOT contain any ASCII control characters (those below U+0020) other than
# newline" (c2sp.org/signed-note §Format); checkpoints and proof bundles inherit the rule.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_DECIMAL = re.compile("0|[1-9][0-9]{0,19}")  # ASCII only: int() would also take "٣" and "1_0"


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, what: str, code: Code) -> bytes:
    """Standard base64 (RFC 4648 §4) with padding, no stray characters and zero trailing bits."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise LogError(f"{what} is not valid base64", code=code) from exc
    if b64encode(data) != text:
        raise LogError(f"{what} is not canonical base64", code=code)
    return data


def parse_decimal(text: str, *, what: str, code: Code, limit: int = MAX_UINT64) -> int:
    """ASCII decimal with no leading zeros (except ``0`` itself), at most ``limit``."""
    if not _DECIMAL.fullmatch(text):
        raise LogError(f"{what} must be a decimal number without leading zeros", code=code)
    value = int(text)
    if value > limit:
        raise LogError(f"{what} exceeds {limit}", code=code)
    return value


def decode_text(data: str | bytes, *, what: str, code: Code, max_bytes: int) -> str:
    """Return ``data`` as ``str`` once it is valid UTF-8 within ``max_bytes``, free of control
    characters other than newline (so CR, and thus CRLF line endings, are refused)."""
    if isinstance(data, str):
        if len(data) > max_bytes:  # each character is at least one byte: refuse before encoding
            raise LogError(f"{what} is longer than {max_bytes} bytes", code=code)
        try:
            raw = data.encode("utf-8")  # refuses lone surrogates, which are not UTF-8
        except UnicodeEncodeError as exc:
            raise LogError(f"{what} is not valid UTF-8", code=code) from exc
        text = data
    elif isinstance(data, bytes):
        raw = data
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LogError(f"{what} is not valid UTF-8", code=code) from exc
    else:
        raise LogError(f"{what} must be text", code=code)
    if len(raw) > max_bytes:
        raise LogError(f"{what} is longer than {max_bytes} bytes", code=code)
    check_no_controls(text, what=what, code=code)
    return text


def check_no_controls(text: str, *, what: str, code: Code) -> None:
    match = _CONTROL.search(text)
    if match:
        raise LogError(f"{what} contains control character U+{ord(match.group()):04X}", code=code)
