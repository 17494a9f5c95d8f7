"""Reading an export (``hotline audit export``) strictly, as the one place its lines are decoded.

An export is JSON lines: a header (``{"type": "log", ...}``), then the log's checkpoints and the
witnesses' latest cosigned checkpoints (``checkpoint``, ``witnessed``), then every entry in index
order (``entry``), each line ending in a newline. Anyone may have edited the file, so each line
is read up to ``MAX_LINE`` bytes and no further, parsed as strict JSON at one point
(``hotline.canonical.parse``: nesting and numbers bounded, a ``RecursionError`` typed) and
decoded into a record of ``hotline.audit.records``. Anything else — a line that is not JSON, a
list where an object belongs, a missing or mistyped field, a record out of place, a last line
cut short, an entry out of index order — is an ``ExportError``: one line naming the file and the
line. What the records claim (signatures, leaves, the log's size) is then the auditor's to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from hotline.audit.records import (
    WITNESSED,
    EntryRecord,
    Header,
    RecordError,
    Records,
    decode_checkpoint,
    decode_entry,
    decode_header,
)
from hotline.audit.verify import AuditFailure
from hotline.canonical import JSONObject, parse
from hotline.display import article, shown
from hotline.errorcodes import Code
from hotline.errors import HotlineError

MAX_LINE = 16 << 20  # bytes: an entry line holds its leaf twice (base64 and JSON); frames are far smaller


class ExportError(AuditFailure):
    """A line of an export that is not what ``hotline audit export`` writes."""

    code = Code.AUDIT_BAD_EXPORT


class _Lines:
    """The file's lines, each bounded and parsed, numbered from 1."""

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path, self.handle, self.number = path, handle, 0

    def fail(self, what: str) -> ExportError:
        """``what`` is wrong with the line just read."""
        return ExportError(f"export {self.path.name} line {self.number}: {what}")

    def next(self) -> tuple[str, JSONObject] | None:
        """The next line's ``type`` and the rest of its object, not yet decoded; None at the end
        of the file."""
        text = self.handle.readline(MAX_LINE + 1)
        if not text:
            return None
        self.number += 1
        if not text.endswith(b"\n"):
            if len(text) > MAX_LINE:
                raise self.fail(f"longer than {MAX_LINE} bytes")
            raise self.fail("the file ends in the middle of this line (truncated)")
        try:
            value = parse(text[:-1])  # without its newline: JSON's "line 1 column N" is right
        except HotlineError as exc:
            raise self.fail(exc.message) from exc
        kind = value.get("type") if isinstance(value, dict) else None
        if not isinstance(kind, str):
            raise self.fail("not a JSON object with a \"type\"")
        return kind, {k: v for k, v in value.items() if k != "type"}


def read_export(path: Path) -> Records:
    """The records of the export at ``path``: its checkpoints now, its entries lazily (the file
    stays open until they are read to the end).

    Raises:
        ExportError: the first line that is not what an export holds (naming it); also raised
            by the entries' iterator.
    """
    handle = path.open("rb")
    try:
        lines = _Lines(path, handle)
        _header(lines)
        records = Records([], [], 0)
        first = _checkpoints(lines, records)
    except BaseException:
        handle.close()
        raise
    records.size = max((c.size for c in records.checkpoints), default=0)
    records.entries = _entries(lines, first)
    return records


def _header(lines: _Lines) -> Header:
    line = lines.next()
    if line is None:
        raise ExportError(f"export {lines.path.name}: the file is empty, not a hotline log export")
    if line[0] != "log":
        raise lines.fail('not a header ({"type": "log", ...}): the file is not a hotline log export')
    try:
        return decode_header(line[1])
    except RecordError as exc:
        raise lines.fail(f"the header is malformed: {exc.message}") from exc


def _checkpoints(lines: _Lines, records: Records) -> EntryRecord | None:
    """Read the checkpoint and witnessed lines into ``records``; the first entry, if any."""
    while (line := lines.next()) is not None:
        kind, value = line
        try:
            if kind == "checkpoint":
                records.checkpoints.append(decode_checkpoint(value, source="the log"))
            elif kind == "witnessed":
                records.witnessed.append(decode_checkpoint(value, source=WITNESSED))
            elif kind == "entry":
                return decode_entry(value)
            else:
                raise lines.fail(f"a record of unknown type {shown(kind, limit=40)!r}")
        except RecordError as exc:
            raise lines.fail(f"{article(kind)} record is malformed: {exc.message}") from exc
    return None


def _entries(lines: _Lines, first: EntryRecord | None) -> Iterator[EntryRecord]:
    """The entries, each on the line after the one before it (index 0, 1, 2, ...)."""
    with lines.handle:
        record = first
        expected = 0
        while record is not None:
            if record.index != expected:
                what = "a repeat or out of order" if record.index < expected else "entries are missing"
                raise lines.fail(f"entry {record.index} where entry {expected} belongs ({what})")
            yield record
            expected += 1
            line = lines.next()
            if line is None:
                return
            kind, value = line
            if kind != "entry":
                raise lines.fail(f"a {shown(kind, limit=40)!r} record among the entries")
            try:
                record = decode_entry(value)
            except RecordError as exc:
                raise lines.fail(f"an entry record is malformed: {exc.message}") from exc
