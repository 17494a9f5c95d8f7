"""A leaf read back from the disk is decoded strictly (``hotline.entries``): any damage is
``store.damaged`` naming the index, never a KeyError or ValueError later in the server (issue 11,
defect 9)."""

from __future__ import annotations

import pytest

from hotline.canonical import canonical_bytes
from hotline.entries import leaf_bytes, to_json
from hotline.errors import StoreError
from hotline.store.records import StoredEntry, decode_leaf
from tests.log_entries import envelope

ENVELOPE = to_json(envelope(1, "message", index=7))


def leaf(**changes: object) -> bytes:
    entry = {**ENVELOPE, **changes}
    return canonical_bytes({k: v for k, v in entry.items() if v is not None})


def envelope_leaf(**changes: object) -> bytes:
    return leaf(envelope={k: v for k, v in {**ENVELOPE["envelope"], **changes}.items() if v is not None})


@pytest.mark.parametrize(("data", "what"), [
    (b'{"index":7,"kind":"envelope"', "entry is not valid JSON"),
    (b'\xff{"index":7}', "entry is not valid JSON"),
    (b'{"index":7,"index":7,"kind":"x","time":"t"}', "entry is not valid JSON"),
    (b'{"index":7.0,"kind":"x","time":"t"}', "entry is not valid JSON"),
    (b'[7]', "entry must be an object"),
    (leaf(index=8), "its leaf holds another index"),
    (leaf(index=True), "entry.index must be an integer"),
    (leaf(kind=None), "entry is of no known kind"),
    (leaf(time=5), "entry.time must be text"),
    (leaf(channel=None), "entry is missing channel"),
    (leaf(envelope="x"), "entry.envelope must be an object"),
    (envelope_leaf(precedence=None), "entry.envelope is missing precedence"),
    (canonical_bytes({"index": 7, "time": "t", "kind": "enrollment", "documenT": {}, "sigs": []}),
     "entry has unknown field(s) documenT"),
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
    assert leaf_bytes(stored.entry) == leaf() and stored.entry is stored.entry
