"""A leaf read back from the disk is decoded defensively: any damage is ``store.damaged`` naming
the index, never a KeyError or ValueError later in the server (issue 11, defect 9)."""

from __future__ import annotations

import pytest

from hotline.canonical import canonical_bytes
from hotline.errors import StoreError
from hotline.store.records import StoredEntry, decode_leaf

TIME = "2026-12-01T00:00:00.000Z"
ENVELOPE = {"index": 7, "time": TIME, "kind": "envelope", "channel": "c", "party": "p", "sig": {},
            "envelope": {"id": "i", "kind": "message", "template": "message",
                         "precedence": "ROUTINE"}}


def leaf(**changes: object) -> bytes:
    entry = {**ENVELOPE, **changes}
    return canonical_bytes({k: v for k, v in entry.items() if v is not None})


@pytest.mark.parametrize(("data", "what"), [
    (b'{"index":7,"kind":"envelope"', "its leaf is not valid JSON"),
    (b'\xff{"index":7}', "its leaf is not valid JSON"),
    (b'{"index":7,"index":7,"kind":"x","time":"t"}', "its leaf is not valid JSON"),
    (b'{"index":7.0,"kind":"x","time":"t"}', "its leaf is not valid JSON"),
    (b'[7]', "its leaf is not a JSON object"),
    (leaf(index=8), "its leaf holds another index"),
    (leaf(index=True), "its leaf holds another index"),
    (leaf(kind=None), "kind is missing or not a str"),
    (leaf(time=5), "time is missing or not a str"),
    (leaf(channel=None), "channel is missing or not a str"),
    (leaf(envelope="x"), "envelope is missing or not a dict"),
    (leaf(envelope={"id": "i", "kind": "message", "template": "message"}),
     "envelope.precedence is missing or not a str"),
    (canonical_bytes({"index": 7, "time": TIME, "kind": "enrollment", "documenT": {}, "sigs": []}),
     "document is missing or not a dict"),
])
def test_a_damaged_leaf_is_a_typed_error_naming_its_index(data: bytes, what: str) -> None:
    with pytest.raises(StoreError) as caught:
        decode_leaf(7, data)
    assert caught.value.code == "store.damaged"
    assert caught.value.message.startswith(f"entry 7 in the database is damaged: {what}")
    with pytest.raises(StoreError):
        _ = StoredEntry(7, data).entry


def test_a_sound_leaf_decodes_once() -> None:
    stored = StoredEntry(7, leaf())
    assert stored.entry == ENVELOPE and stored.entry is stored.entry
