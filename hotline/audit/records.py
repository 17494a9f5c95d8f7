"""What an audit reads, from the log's HTTP API or from an export line, decoded strictly in one
place into frozen records.

Every value here came from the host (or from a file anyone could have edited): a value of the
wrong shape or type is a ``RecordError`` naming the field at fault, never a ``KeyError`` three
calls later. The caller names where the value came from (``hotline.client.logapi``: the host and
the request; ``hotline.audit.export``: the file and line). What the records *claim* (a signature,
a leaf, an index in its place, the entry a leaf holds) is for ``hotline.audit.verify`` to check.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from hotline.canonical import MAX_SAFE_INT, JSONObject
from hotline.errorcodes import Code
from hotline.errors import WireError
from hotline.typed import convert

WITNESSED = "the witnesses' latest cosigned checkpoints"

Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INT)]
"""A size or an index: an integer from 0 to 2^53-1 (never a bool, a float or text)."""


class RecordError(WireError):
    """A record of the wrong shape: the message says which field and what is wrong with it."""

    code = Code.RECORD_MALFORMED


class _Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A record as the log API gives it and an export writes it: absent fields left out."""


class CheckpointNote(_Record, frozen=True):
    """``{"size", "note"[, "time"]}``: a checkpoint note as the host gave it (its signature is
    the auditor's to verify), the size the host claims for it, and when the server signed it, as
    it says."""

    size: Count
    note: str
    time: str | None = None


class CheckpointRecord(msgspec.Struct, frozen=True):
    """A checkpoint and where it came from (named in the auditor's messages)."""

    checkpoint: CheckpointNote
    source: str

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def note(self) -> str:
        return self.checkpoint.note


class EntryRecord(_Record, frozen=True):
    """One log entry: readable (``leaf``: base64 of the leaf bytes, and the ``entry`` object the
    host claims they hold) or hidden from the caller (``hash``: base64 of the leaf hash).

    The claimed ``entry`` is kept as the host gave it, untyped: the auditor decodes the leaf
    (``hotline.entries``), the only thing the tree vouches for, and refuses a claim that is not
    exactly the leaf's object; an export writes it back byte for byte."""

    index: Count
    leaf: str | None = None
    entry: JSONObject | None = None
    hash: str | None = None


class Header(_Record, frozen=True):
    """An export's first line: the log it is of, its verifier key as the host gave it, when and
    up to which size it was exported."""

    origin: str
    key: str
    exported: str
    size: Count


@dataclass
class Records:
    """What an audit reads: the witnesses' latest cosigned checkpoints, the log's checkpoint
    history, its size (the largest checkpoint), and the entries up to it (lazily)."""

    witnessed: list[CheckpointRecord]
    checkpoints: list[CheckpointRecord]
    size: int
    entries: Iterator[EntryRecord] = field(default_factory=lambda: iter(()))


def decode_checkpoint(value: Any, *, source: str) -> CheckpointRecord:
    """``{"size", "note"[, "time"]}`` (the log's history and the witnesses' latest cosigned
    checkpoints alike). Raises RecordError."""
    checkpoint = convert(value, CheckpointNote, what="checkpoint", code=Code.RECORD_MALFORMED,
                         error=RecordError)
    return CheckpointRecord(checkpoint, source)


def decode_entry(value: Any) -> EntryRecord:
    """``{"index", "leaf"[, "entry"]}`` or ``{"index", "hash"}``. Raises RecordError."""
    record = convert(value, EntryRecord, what="entry", code=Code.RECORD_MALFORMED, error=RecordError)
    if (record.leaf is None) == (record.hash is None):
        raise RecordError("an entry holds either a 'leaf' or a 'hash'")
    if record.entry is not None and record.leaf is None:
        raise RecordError("'entry' must be an object beside a 'leaf'")
    if record.leaf is not None:
        _base64(record.leaf, "leaf")
    elif record.hash is not None and len(_base64(record.hash, "hash")) != 32:
        raise RecordError("'hash' is not 32 bytes")
    return record


def _base64(text: str, name: str) -> bytes:
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise RecordError(f"{name!r} is not base64") from exc


def decode_header(value: Any) -> Header:
    """An export's header, ``{"origin", "key", "exported", "size"}``. Raises RecordError."""
    return convert(value, Header, what="header", code=Code.RECORD_MALFORMED, error=RecordError)
