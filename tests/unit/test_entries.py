"""hotline.entries: every entry kind decodes strictly, and its leaf is byte for byte the RFC 8785
encoding of the object the log has always held."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from hotline import entries
from hotline.canonical import canonical_bytes
from hotline.entries import (
    EntryError,
    EnvelopeEntry,
    HealthEntry,
    HealthState,
    OverdueEntry,
    RejectedEntry,
    decode,
    decode_leaf,
    leaf_bytes,
    to_json,
    with_index,
)
from hotline.envelope import Envelope, Kind, Precedence

ENVELOPE = {"v": 1, "id": "AAAAAAAAAAAAAAAAAAAAAA", "kind": "message", "channel": "north-south",
            "sender": "alice", "template": "incident-at-sea", "precedence": "FLASH",
            "created": "2026-12-01T08:00:00.000Z", "body": {"text": "été", "n": 3, "x": None}}
SIG = {"alg": "ed25519", "key": "k", "sig": "s"}
PARTY = {"state": "DOWN", "condition": "silent", "reason": "no heartbeat", "last_heartbeat": None,
         "last_echo": "2026-12-01T08:00:00.000Z", "rtt_ms": 12}

# One object of each kind, exactly as the server has always written them.
OBJECTS: list[dict[str, Any]] = [
    {"index": 4, "time": "2026-12-01T08:00:01.000Z", "kind": "envelope", "channel": "north-south",
     "party": "north", "envelope": ENVELOPE, "sig": SIG,
     "expects": {"ack": "understood", "from": ["south"], "due": "2026-12-01T08:05:01.000Z"}},
    {"index": 5, "time": "t", "kind": "envelope", "channel": "c", "party": "south",
     "envelope": {**ENVELOPE, "kind": "ack", "body": {"ack": "received"},
                  "reply_to": "BBBBBBBBBBBBBBBBBBBBBB"}, "sig": SIG, "late": True},
    {"index": 0, "time": "t", "kind": "enrollment", "document": {"party": "north"}, "sigs": [SIG]},
    {"index": 1, "time": "t", "kind": "revocation", "document": {"party": "north"}, "sigs": []},
    {"index": 2, "time": "t", "kind": "agreement", "document": {"channel": "c"}, "sigs": [SIG],
     "channel": "c"},
    {"index": 6, "time": "t", "kind": "health", "channel": "c", "from": "UP", "to": "DOWN",
     "since": "s", "reason": "r", "parties": {"north": PARTY}, "evidence": [1, 2]},
    {"index": 7, "time": "t", "kind": "overdue", "channel": "c", "ref": "r", "entry": 4,
     "template": "t", "precedence": "FLASH", "due": "d", "ack": "received", "missing": ["south"]},
    {"index": 8, "time": "t", "kind": "rejected", "party": "p", "member": "m", "template": "t",
     "code": "template.invalid", "reason": "why", "ref": "r", "channel": "c"},
    {"index": 9, "time": "t", "kind": "rejected", "party": "p", "member": "m", "template": "t",
     "code": "template.invalid", "reason": "why"},
    {"index": 10, "time": "t", "kind": "rejections", "party": "p", "member": "m", "since": "s",
     "until": "u", "count": 3, "codes": {"a.b": 3}},
]


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: f"{o['kind']}-{o['index']}")
def test_every_kind_round_trips_to_the_same_leaf_bytes(obj: dict[str, Any]) -> None:
    entry = decode(obj)
    assert entries.kind_of(entry) == obj["kind"]
    assert to_json(entry) == obj
    assert leaf_bytes(entry) == canonical_bytes(obj) == rfc8785.dumps(obj)
    assert decode_leaf(leaf_bytes(entry), index=obj["index"]) == entry


def test_typed_fields_read_as_their_types() -> None:
    message = decode(OBJECTS[0])
    assert isinstance(message, EnvelopeEntry) and isinstance(message.envelope, Envelope)
    assert message.envelope.kind is Kind.MESSAGE and message.envelope.precedence is Precedence.FLASH
    assert message.envelope.canonical == canonical_bytes(ENVELOPE)  # ready for the signature check
    assert message.expects and message.expects.parties == ["south"] and not message.is_late
    assert decode(OBJECTS[1]).is_late  # type: ignore[union-attr]
    health = decode(OBJECTS[5])
    assert isinstance(health, HealthEntry) and health.new is HealthState.DOWN
    assert health.parties["north"].rtt_ms == 12 and health.evidence == [1, 2]
    assert isinstance(decode(OBJECTS[6]), OverdueEntry)
    assert entries.channel_of(decode(OBJECTS[7])) == "c" and entries.channel_of(decode(OBJECTS[8])) is None


def test_the_store_sets_the_index_and_a_pending_entry_has_no_leaf() -> None:
    pending = RejectedEntry(time="t", party="p", member="m", template="t", code="a.b", reason="r")
    with pytest.raises(Exception, match="once it has its index"):
        leaf_bytes(pending)
    assert with_index(pending, 3).index == 3 and leaf_bytes(with_index(pending, 3))


@pytest.mark.parametrize(("change", "words"), [
    ({"index": True}, "entry.index must be an integer"),
    ({"index": -1}, "must be a log index"),
    ({"kind": "nonsense"}, "of no known kind"),
    ({"extra": 1}, "unknown field(s) extra"),
    ({"channel": None}, "entry.channel must be text"),
    ({"party": 5}, "entry.party must be text"),
    ({"envelope": {**ENVELOPE, "id": "short"}}, "entry.envelope.id is not of the required form"),
    ({"envelope": {**ENVELOPE, "kind": "ack"}}, "needs reply_to"),
    ({"expects": {"ack": "received", "from": "south", "due": "d"}}, "entry.expects.from must be"),
    ({"late": False}, "entry.late is not one of the allowed values"),
])
def test_a_malformed_entry_is_one_typed_error_naming_the_field(change: dict[str, Any], words: str) -> None:
    with pytest.raises(EntryError) as info:
        decode({**OBJECTS[0], **change})
    assert words in info.value.message
    assert info.value.code in ("entry.malformed", "entry.unknown_kind")


def test_a_missing_field_is_named_and_a_hostile_value_never_quoted() -> None:
    obj = {k: v for k, v in OBJECTS[6].items() if k != "due"}
    with pytest.raises(EntryError, match="entry is missing due"):
        decode(obj)
    with pytest.raises(EntryError) as info:
        decode({**OBJECTS[5], "to": "SECRET-PLAN"})
    assert "SECRET" not in info.value.message and "entry.to" in info.value.message


@pytest.mark.parametrize("leaf", [b'{"index":7', b'{"index":7,"index":7}', b'{"index":7.0}', b"[7]"])
def test_a_damaged_leaf_is_an_entry_error(leaf: bytes) -> None:
    with pytest.raises(EntryError):
        decode_leaf(leaf, index=7)


def test_a_leaf_holding_another_index_is_refused() -> None:
    with pytest.raises(EntryError, match="entry 3 says it is entry 4"):
        decode_leaf(canonical_bytes(OBJECTS[0]), index=3)


text = st.text(max_size=12)


@given(channel=text, party=text, reason=text, codes=st.dictionaries(text, st.integers(0, 2**53 - 1)),
       body=st.dictionaries(text, st.one_of(text, st.integers(-(2**53) + 1, 2**53 - 1), st.none())))
def test_any_text_encodes_as_rfc8785(channel: str, party: str, reason: str, codes: dict[str, int],
                                     body: dict[str, Any]) -> None:
    summary = {"index": 1, "time": "t", "kind": "rejections", "party": party, "member": "m",
               "since": reason, "until": "u", "count": 1, "codes": codes}
    assert leaf_bytes(decode(summary)) == rfc8785.dumps(summary)
    message = {**OBJECTS[0], "channel": channel, "party": party, "envelope": {**ENVELOPE, "body": body}}
    assert leaf_bytes(decode(message)) == rfc8785.dumps(message)
