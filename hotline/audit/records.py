"""What an audit reads, from the log's HTTP API or from an export line, decoded strictly in one
place into frozen records.

Every value here came from the host (or from a file anyone could have edited): a value of the
wrong shape or type is a ``RecordError`` saying what is wrong, never a ``KeyError`` three calls
later. The caller names where the value came from (``hotline.client.logapi``: the host and the
request; ``hotline.audit.export``: the file and line). What the records *claim* (a signature, a
leaf, an index in its place, the entry a leaf holds) is for ``hotline.audit.verify`` to check.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hotline.canonical import MAX_SAFE_INT
from hotline.display import shown
from hotline.errorcodes import Code
from hotline.errors import WireError

CHECKPOINT_FIELDS = frozenset({"size", "note", "time"})
ENTRY_FIELDS = frozenset({"index", "leaf", "entry", "hash"})
HEADER_FIELDS = frozenset({"origin", "key", "exported", "size"})
WITNESSED = "the witnesses' latest cosigned checkpoints"


class RecordError(WireError):
    """A record of the wrong shape: the message says which field and what is wrong with it."""

    code = Code.RECORD_MALFORMED


@dataclass(frozen=True)
class CheckpointRecord:
    """A checkpoint note as the host gave it (its signature is the auditor's to verify), the
    size the host claims for it, and where it came from (named in the auditor's messages)."""

    size: int
    note: str
    source: str
    time: str | None = None  # when the server signed it, as it says

    def as_record(self) -> dict[str, Any]:
        """The record as the log API (and an export) gives it."""
        record: dict[str, Any] = {"size": self.size, "note": self.note}
        return record if self.time is None else {**record, "time": self.time}


@dataclass(frozen=True)
class EntryRecord:
    """One log entry: readable (``leaf``: base64 of the leaf bytes, and the ``entry`` object the
    host claims they hold) or hidden from the caller (``hash``: base64 of the leaf hash).

    The claimed ``entry`` is kept as the host gave it, untyped: the auditor decodes the leaf
    (``hotline.entries``), the only thing the tree vouches for, and refuses a claim that is not
    exactly the leaf's object; an export writes it back byte for byte."""

    index: int
    leaf: str | None = None
    entry: object | None = None
    hash: str | None = None

    def as_record(self) -> dict[str, Any]:
        """The record as the log API gives it (and an export writes it)."""
        if self.leaf is None:
            return {"index": self.index, "hash": self.hash}
        record = {"index": self.index, "leaf": self.leaf}
        return record if self.entry is None else {**record, "entry": self.entry}


@dataclass(frozen=True)
class Header:
    """An export's first line: the log it is of, its verifier key as the host gave it, when and
    up to which size it was exported."""

    origin: str
    key: str
    exported: str
    size: int


@dataclass
class Records:
    """What an audit reads: the witnesses' latest cosigned checkpoints, the log's checkpoint
    history, its size (the largest checkpoint), and the entries up to it (lazily)."""

    witnessed: list[CheckpointRecord]
    checkpoints: list[CheckpointRecord]
    size: int
    entries: Iterator[EntryRecord] = field(default_factory=lambda: iter(()))


def _object(value: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordError(f"not an object but {_kind(value)}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise RecordError(f"unknown field {shown(unknown[0], limit=40)!r}")
    return value


def _count(value: dict[str, Any], name: str) -> int:
    """A required field holding an integer from 0 to 2^53-1 (never a bool, a float or text)."""
    if name not in value:
        raise RecordError(f"no {name!r}")
    number = value[name]
    if type(number) is not int:
        raise RecordError(f"{name!r} is {_kind(number)}, not an integer from 0 to 2^53-1")
    if not 0 <= number <= MAX_SAFE_INT:
        raise RecordError(f"{name!r} is {number}, not an integer from 0 to 2^53-1")
    return number


def _text(value: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    if name not in value:
        if required:
            raise RecordError(f"no {name!r}")
        return None
    text = value[name]
    if not isinstance(text, str):
        raise RecordError(f"{name!r} is {_kind(text)}, not text")
    return text


def _kind(value: Any) -> str:
    """What a JSON value is, in words (never the value: it came from the host)."""
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "an object", list: "a list", str: "text", int: "an integer",
            type(None): "null"}.get(type(value), type(value).__name__)


def decode_checkpoint(value: Any, *, source: str) -> CheckpointRecord:
    """``{"size", "note"[, "time"]}`` (the log's history and the witnesses' latest cosigned
    checkpoints alike). Raises RecordError."""
    record = _object(value, CHECKPOINT_FIELDS)
    size = _count(record, "size")
    note = _text(record, "note")
    assert note is not None
    return CheckpointRecord(size, note, source, _text(record, "time", required=False))


def decode_entry(value: Any) -> EntryRecord:
    """``{"index", "leaf"[, "entry"]}`` or ``{"index", "hash"}``. Raises RecordError."""
    record = _object(value, ENTRY_FIELDS)
    index = _count(record, "index")
    leaf, digest = _text(record, "leaf", required=False), _text(record, "hash", required=False)
    if (leaf is None) == (digest is None):
        raise RecordError("an entry holds either a 'leaf' or a 'hash'")
    entry = record.get("entry")
    if entry is not None and (leaf is None or not isinstance(entry, dict)):
        raise RecordError("'entry' must be an object beside a 'leaf'")
    if leaf is not None:
        _base64(leaf, "leaf")
    elif digest is not None and len(_base64(digest, "hash")) != 32:
        raise RecordError("'hash' is not 32 bytes")
    return EntryRecord(index, leaf, entry, digest)


def _base64(text: str, name: str) -> bytes:
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise RecordError(f"{name!r} is not base64") from exc


def decode_header(value: Any) -> Header:
    """An export's header, ``{"origin", "key", "exported", "size"}``. Raises RecordError."""
    record = _object(value, HEADER_FIELDS)
    origin, key, exported = (_text(record, name) for name in ("origin", "key", "exported"))
    assert origin is not None and key is not None and exported is not None
    return Header(origin, key, exported, _count(record, "size"))
