"""The export reader and the record decoders (issue 20, defect 7): for any line, a record or one
typed error naming the line; for any JSON value, a record or a RecordError. Never another
exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.audit.export import ExportError, read_export
from hotline.audit.records import RecordError, decode_checkpoint, decode_entry, decode_header

HEADER = json.dumps({"type": "log", "origin": "o", "key": "k", "exported": "t", "size": 1})
HASH32 = "A" * 43 + "="

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                    st.sampled_from(["AA==", HASH32, "%%", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["size", "note", "time", "index", "leaf", "entry", "hash",
                                     "origin", "key", "exported", "type", "x"]), inner, max_size=5)),
    max_leaves=12)
records = st.fixed_dictionaries({"type": st.sampled_from(["entry", "checkpoint", "witnessed", "log",
                                                          "x"])}, optional={
    "size": scalars, "note": scalars, "index": scalars, "leaf": scalars, "hash": scalars,
    "entry": values, "time": scalars})


def json_line(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode() + b"\n"


lines = st.one_of(st.binary(max_size=60).map(lambda b: b + b"\n"), st.binary(max_size=60),
                  values.map(json_line), records.map(json_line))


@settings(max_examples=300, deadline=None)
@given(st.lists(lines, max_size=6))
def test_any_lines_after_a_header_give_records_or_one_typed_error(body: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.jsonl"
        path.write_bytes(HEADER.encode() + b"\n" + b"".join(body))
        try:
            read = read_export(path)
            entries = list(read.entries)
        except ExportError as exc:
            assert exc.code == "audit.bad_export"
            assert exc.message.startswith("export x.jsonl line ")
            assert "\n" not in exc.message
            return
        assert all(r.size >= 0 for r in read.checkpoints + read.witnessed)
        assert [e.index for e in entries] == list(range(len(entries)))


@settings(max_examples=500, deadline=None)
@given(values)
def test_the_decoders_give_a_record_or_a_record_error(value: Any) -> None:
    for decode in (lambda v: decode_checkpoint(v, source="s"), decode_entry, decode_header):
        try:
            decode(value)
        except RecordError as exc:
            assert exc.code == "record.malformed" and "\n" not in exc.message
