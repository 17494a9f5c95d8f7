"""hotline.wire.frames: every frame both ways round-trips, each refusal has its code, answers
echo the request id, and the compatibility rule holds (a client skips what a newer server adds,
the server refuses what it does not know). Pure: no socket."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.entries import HealthState, OverdueEntry, decode_leaf, leaf_bytes
from hotline.envelope import Envelope, Kind, Precedence
from hotline.errorcodes import Code
from hotline.errors import HotlineError, ProtocolViolation, WireError
from hotline.keys import SigningKey
from hotline.wire import frames
from hotline.wire.frames import (
    CLIENT_TYPES,
    SERVER_TYPES,
    Frame,
    decode,
    decode_value,
    deliver_text,
    encode,
)
from tests.fuzzing import mutated

ALL = CLIENT_TYPES | SERVER_TYPES
MAX = 64 * 1024
KEY = SigningKey.from_seed(b"\x07" * 32)
ENVELOPE = Envelope.build(id="AAAAAAAAAAAAAAAAAAAAAA", kind=Kind.MESSAGE, channel="north-south",
                          sender="alice", template="message", precedence=Precedence.FLASH,
                          created=datetime(2026, 12, 1, 8, tzinfo=UTC), body={"text": "été"})
ENTRY = OverdueEntry(index=5, time="2026-12-01T08:30:00.000Z", channel="north-south",
                     ref=ENVELOPE.id, entry=4, template="message", precedence="FLASH",
                     due="2026-12-01T08:29:00.000Z", ack="understood", missing=["south"])
PARTY = frames.PartyHealthNow(state=HealthState.DOWN, reason="south silent", condition="silent",
                              last_heartbeat=None, last_echo=None, rtt_ms=None)

EXAMPLES: list[Frame] = [
    frames.Auth(nonce="n", origin="hotline.test", key=KEY.public_key.to_json(),
                client_time="2026-12-01T08:00:00.000Z", sig={"alg": "ed25519", "key": "k", "sig": "s"}),
    frames.Submit(envelope=ENVELOPE, sig=ENVELOPE.sign(KEY), req=1),
    frames.Submit(envelope=ENVELOPE, sig=ENVELOPE.sign(KEY)),
    frames.Resume(channel="north-south", after=-1, req=2),
    frames.Fetch(index=5, req=3),
    frames.Ping(data="x", req=4),
    frames.Ping(),
    frames.Challenge(nonce="n", origin="hotline.test", server_time="2026-12-01T08:00:00.000Z"),
    frames.Welcome(member="alice", party="north", role="liaison", channels=["north-south"],
                   log_size=9),
    frames.Roster(documents=[{"document": {"type": "enrollment"}, "sigs": []}]),
    frames.Roster(documents=[{"document": {"type": "epoch-key"}, "sigs": []}], indexes=[9]),
    frames.Accepted(id=ENVELOPE.id, index=4, req=1),
    frames.Accepted(id=ENVELOPE.id, index=4, duplicate=True),
    frames.Deliver(index=5, entry=ENTRY),
    frames.Deliver(index=5, entry=ENTRY, req=3),
    frames.Resumed(channel="north-south", index=5, req=2),
    frames.Error(code="log.no_entry", message="no entry 7", ref=ENVELOPE.id, req=3),
    frames.Error(code="frame.malformed", message="m"),
    frames.Pong(data="x", req=4),
    frames.Checkpoint(note="hotline.test\n9\nroot\n"),
    frames.Receipt(index=4, size=9, proof=["AA=="], checkpoint="note", leaf="eA=="),
    frames.Health(channel="north-south", state=HealthState.DOWN, since="2026-12-01T08:00:00.000Z",
                  interval=30, parties={"south": PARTY}),
    frames.Upload(sha256="A" * 43, size=3, start=0, data="AAAA", req=5),
    frames.UploadStatus(sha256="A" * 43, size=3, req=6),
    frames.Uploaded(sha256="A" * 43, received=3, stored=True, req=5),
    frames.Download(index=9, field="files", position=0, start=0, req=7),
    frames.Chunk(sha256="A" * 43, size=3, start=0, data="AAAA", req=7),
]


def tag(frame: Frame) -> str:
    return str(frame.__struct_config__.tag)


@pytest.mark.parametrize("frame", EXAMPLES, ids=[f"{tag(f)}-{i}" for i, f in enumerate(EXAMPLES)])
def test_every_frame_round_trips(frame: Frame) -> None:
    text = encode(frame)
    assert json.loads(text)["type"] == tag(frame)
    assert decode(text, allowed=ALL, max_bytes=MAX) == frame


def test_the_two_sides_own_every_type_once() -> None:
    assert {tag(f) for f in EXAMPLES} == ALL and not CLIENT_TYPES & SERVER_TYPES


def test_a_deliver_splices_the_leaf_as_logged() -> None:
    """The server sends a logged entry without decoding it; the client reads it typed."""
    leaf = leaf_bytes(ENTRY)
    text = deliver_text(5, leaf, req=3)
    assert text == encode(frames.Deliver(index=5, entry=decode_leaf(leaf), req=3))
    assert json.loads(text) == {"type": "deliver", "index": 5, "entry": json.loads(leaf), "req": 3}
    assert "req" not in json.loads(deliver_text(5, leaf))


def test_an_error_frame_echoes_the_request_and_the_envelope() -> None:
    exc = ProtocolViolation("no", code=Code.NORM_RATE_LIMITED, ref=ENVELOPE.id)
    assert frames.error(exc, req=7) == frames.Error(code="norm.rate_limited", message="no",
                                                   ref=ENVELOPE.id, req=7)
    assert json.loads(encode(frames.error(ProtocolViolation("no")))) == {
        "type": "error", "code": "protocol.violation", "message": "no"}


# -- refusals ---------------------------------------------------------------------------------

def obj(frame: Frame, **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(encode(frame))
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


SUBMIT = EXAMPLES[1]
REFUSED: list[tuple[str, Any, frozenset[str], str]] = [
    ("not an object", ["submit"], ALL, "frame.malformed"),
    ("no type", {"index": 1}, ALL, "frame.malformed"),
    ("a type that is not text", {"type": 3}, ALL, "frame.malformed"),
    ("an unknown type", {"type": "teleport"}, ALL, "frame.unknown_type"),
    ("a server frame sent to the server", obj(EXAMPLES[8]), CLIENT_TYPES, "frame.unknown_type"),
    ("a client frame sent to the client", obj(EXAMPLES[4]), SERVER_TYPES, "frame.unknown_type"),
    ("a field missing", {"type": "fetch"}, ALL, "frame.malformed"),
    ("a bool for an int", {"type": "fetch", "index": True}, ALL, "frame.malformed"),
    ("a negative fetch", {"type": "fetch", "index": -1}, ALL, "frame.malformed"),
    ("a resume before -1", {"type": "resume", "channel": "c", "after": -2}, ALL, "frame.malformed"),
    ("a negative request id", {"type": "ping", "req": -1}, ALL, "frame.malformed"),
    ("a request id that is text", {"type": "ping", "req": "7"}, ALL, "frame.malformed"),
    ("null where text is optional", {"type": "ping", "data": None}, ALL, "frame.malformed"),
    ("an unknown field from a client", {"type": "ping", "extra": 1}, CLIENT_TYPES, "frame.malformed"),
    ("an error code not of the form", {"type": "error", "code": "Bad Code", "message": "m"}, ALL,
     "frame.malformed"),
    ("an error code too long", {"type": "error", "code": "a" * 65 + ".b", "message": "m"}, ALL,
     "frame.malformed"),
    ("a submit's envelope", obj(SUBMIT, envelope={**ENVELOPE.to_json(), "v": 2}), ALL,
     "envelope.invalid"),
    ("a deliver's entry of no kind", {"type": "deliver", "index": 5, "entry": {"kind": "x"}}, ALL,
     "entry.unknown_kind"),
    ("a deliver's malformed entry", {"type": "deliver", "index": 5,
                                     "entry": {**json.loads(leaf_bytes(ENTRY)), "due": 3}}, ALL,
     "entry.malformed"),
    ("a deliver under another index", {"type": "deliver", "index": 6,
                                       "entry": json.loads(leaf_bytes(ENTRY))}, ALL,
     "frame.malformed"),
    ("a roster's negative index", {"type": "roster", "documents": [], "indexes": [-1]}, ALL,
     "frame.malformed"),
    ("a roster's index that is text", {"type": "roster", "documents": [], "indexes": ["9"]}, ALL,
     "frame.malformed"),
    ("a health state unknown", obj(EXAMPLES[-6], state="FINE"), ALL, "frame.malformed"),
    ("an upload of a negative start", obj(EXAMPLES[-5], start=-1), ALL, "frame.malformed"),
    ("an upload status of no digest", obj(EXAMPLES[-4], sha256="x"), ALL, "frame.malformed"),
    ("a download of a field that is no name", obj(EXAMPLES[-2], field="../x"), ALL, "frame.malformed"),
    ("a download of a position past 63", obj(EXAMPLES[-2], position=64), ALL, "frame.malformed"),
]


@pytest.mark.parametrize(("name", "value", "allowed", "code"), REFUSED, ids=[r[0] for r in REFUSED])
def test_each_refusal_has_its_code(name: str, value: Any, allowed: frozenset[str], code: str) -> None:
    with pytest.raises(WireError) as refused:
        decode_value(value, allowed=allowed)
    assert refused.value.code == code, refused.value.message


def test_a_submits_bad_envelope_names_its_id() -> None:
    with pytest.raises(WireError) as refused:
        decode_value(obj(SUBMIT, envelope={**ENVELOPE.to_json(), "v": 2}), allowed=CLIENT_TYPES)
    assert refused.value.ref == ENVELOPE.id


@pytest.mark.parametrize(("text", "code"), [
    (b'{"type": "ping"}', "frame.malformed"),
    ("{not json", "frame.malformed"),
    ('{"type": "ping", "type": "pong"}', "frame.duplicate_key"),
    ('{"type": "fetch", "index": 1.5}', "frame.float"),
    ('{"type": "ping", "data": "' + "x" * MAX + '"}', "frame.too_large"),
])
def test_text_refusals_keep_the_parsers_codes(text: str | bytes, code: str) -> None:
    with pytest.raises(WireError) as refused:
        decode(text, allowed=ALL, max_bytes=MAX)
    assert refused.value.code == code


# -- compatibility ------------------------------------------------------------------------------

SERVER_EXAMPLES = [f for f in EXAMPLES if tag(f) in SERVER_TYPES]
CLIENT_EXAMPLES = [f for f in EXAMPLES if tag(f) in CLIENT_TYPES]


@pytest.mark.parametrize("frame", SERVER_EXAMPLES, ids=[tag(f) for f in SERVER_EXAMPLES])
def test_a_client_skips_the_fields_a_newer_server_adds(frame: Frame) -> None:
    assert decode_value(obj(frame, added_later=[1, {"x": 2}]), allowed=SERVER_TYPES) == frame


@pytest.mark.parametrize("frame", CLIENT_EXAMPLES, ids=[tag(f) for f in CLIENT_EXAMPLES])
def test_the_server_refuses_fields_it_does_not_know(frame: Frame) -> None:
    with pytest.raises(WireError) as refused:
        decode_value(obj(frame, added_later=1), allowed=CLIENT_TYPES)
    assert refused.value.code == "frame.malformed"


@pytest.mark.parametrize("frame", CLIENT_EXAMPLES, ids=[tag(f) for f in CLIENT_EXAMPLES])
def test_a_request_without_an_id_is_still_a_request(frame: Frame) -> None:
    """What an older client sends: every request decodes without ``req``."""
    without = {k: v for k, v in obj(frame).items() if k != "req"}
    decoded = decode_value(without, allowed=CLIENT_TYPES)
    assert getattr(decoded, "req", msgspec.UNSET) is msgspec.UNSET


def test_the_request_id_is_read_even_from_a_refused_frame() -> None:
    assert frames.peek_req({"type": "fetch", "index": -1, "req": 9}) == 9
    for value in ([], {"req": True}, {"req": -1}, {"req": "9"}, {}):
        assert frames.peek_req(value) is msgspec.UNSET


# -- never anything but a typed error ----------------------------------------------------------

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=300,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.sampled_from([obj(f) for f in EXAMPLES]).flatmap(mutated),
       st.sampled_from([ALL, CLIENT_TYPES, SERVER_TYPES]))
def test_decoding_raises_nothing_but_a_typed_error(value: Any, allowed: frozenset[str]) -> None:
    try:
        frame = decode_value(value, allowed=allowed)
    except HotlineError as exc:
        assert isinstance(exc, WireError)
        return
    assert tag(frame) in allowed


@FAST
@given(st.text(max_size=200) | st.binary(max_size=50))
def test_any_text_decodes_or_is_a_typed_error(text: str | bytes) -> None:
    try:
        decode(text, allowed=ALL, max_bytes=MAX)
    except WireError:
        pass
