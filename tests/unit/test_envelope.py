"""hotline.envelope and hotline.times: build, validate, sign, verify (docs/ARCHITECTURE.md "Envelope").

The vector test reads tests/vectors/envelope_vectors.json (written by make_envelope_vectors.py
beside it) and recomputes every byte: a change to the signed format fails it.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.canonical import canonical_bytes, parse
from hotline.envelope import (
    MAX_ENVELOPE_BYTES,
    AckKind,
    Envelope,
    Kind,
    Precedence,
    ack_id,
    check_ack_id,
    new_envelope_id,
)
from hotline.errors import CryptoError, WireError
from hotline.keys import Domain, PublicKey, SigningKey, signed_bytes
from hotline.names import ENVELOPE_ID
from hotline.times import format_time, parse_time

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=150)
VECTORS = Path(__file__).resolve().parents[1] / "vectors"

ID_A = new_envelope_id(bytes(range(16)))
ID_B = new_envelope_id(bytes(range(16, 32)))
CREATED = datetime(2026, 11, 27, 21, 0, 0, 123000, tzinfo=UTC)
ALICE = SigningKey.from_seed(bytes([1]) * 32)
BOB = SigningKey.from_seed(bytes([2]) * 32)


@pytest.fixture
def asset() -> Any:
    """``asset(name)``: the path of a file under tests/vectors (cf. sigstore's conftest)."""
    def _asset(name: str) -> Path:
        path = VECTORS / name
        assert path.is_file(), f"missing test asset {path}"
        return path
    return _asset


def good(**changes: Any) -> dict[str, Any]:
    """A valid message envelope object, with ``changes`` applied (None deletes a field)."""
    obj: dict[str, Any] = {
        "v": 1, "id": ID_A, "kind": "message", "channel": "north-south", "sender": "alice",
        "template": "incident-report", "precedence": "FLASH", "created": "2026-11-27T21:00:00.123Z",
        "body": {"summary": "track", "count": 3},
    }
    for key, value in changes.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


def invalid(obj: Any, code: str = "envelope.invalid") -> WireError:
    with pytest.raises(WireError) as info:
        Envelope.from_json(obj)
    assert info.value.code == code, info.value.message
    return info.value


# -- build / to_json / from_json --------------------------------------------------------------

def test_build_round_trip() -> None:
    env = Envelope.build(id=ID_A, kind=Kind.MESSAGE, channel="north-south", sender="alice",
                         template="incident-report", precedence=Precedence.FLASH, created=CREATED,
                         body={"summary": "track", "count": 3})
    assert env.to_json() == good()
    assert "reply_to" not in env.to_json()
    assert Envelope.from_json(env.to_json()) == env
    assert Envelope.from_json(parse(canonical_bytes(env.to_json()))) == env
    assert env.created_at == CREATED
    assert env.v == 1 and env.kind is Kind.MESSAGE and env.precedence is Precedence.FLASH


def test_build_accepts_plain_strings_and_reply_to() -> None:
    env = Envelope.build(id=ID_B, kind="ack", channel="north-south", sender="bob",
                         template="incident-report", precedence="ROUTINE", created=CREATED,
                         body={"ack": "received"}, reply_to=ID_A)
    assert env.kind is Kind.ACK and env.reply_to == ID_A
    assert env.to_json()["reply_to"] == ID_A
    assert Envelope.from_json(env.to_json()) == env


def test_build_converts_created_to_utc_milliseconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    env = Envelope.build(id=ID_A, kind=Kind.HEARTBEAT, channel="c", sender="s", template="t",
                         precedence=Precedence.ROUTINE, body={},
                         created=datetime(2026, 11, 27, 23, 0, 0, 456789, tzinfo=plus_two))
    assert env.created == "2026-11-27T21:00:00.456Z"


def test_build_refuses_naive_time() -> None:
    with pytest.raises(WireError) as info:
        Envelope.build(id=ID_A, kind=Kind.MESSAGE, channel="c", sender="s", template="t",
                       precedence=Precedence.FLASH, created=datetime(2026, 1, 1), body={})
    assert info.value.code == "frame.bad_time"


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("precedence", list(Precedence))
def test_every_kind_and_precedence(kind: Kind, precedence: Precedence) -> None:
    body: dict[str, str] = {"ack": "understood"} if kind is Kind.ACK else {}
    if kind is Kind.VIOLATION:
        body = {"field": "assessment", "code": "template.invalid", "reason": "too short"}
    reply_to = ID_B if kind in (Kind.ACK, Kind.ECHO, Kind.VIOLATION) else None
    obj = good(kind=kind.value, precedence=precedence.value, body=body, reply_to=reply_to)
    env = Envelope.from_json(obj)
    assert env.kind is kind and env.precedence is precedence
    assert env.to_json() == obj


# -- validation rules -------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["v", "id", "kind", "channel", "sender", "template",
                                   "precedence", "created", "body"])
def test_missing_field(field: str) -> None:
    assert field in invalid(good(**{field: None})).message


@pytest.mark.parametrize("field", ["sig", "signature", "type", "extra", "Reply_to"])
def test_unknown_field(field: str) -> None:
    assert field in invalid(good(**{field: "x"})).message


@pytest.mark.parametrize("obj", [None, [], "envelope", 1, [good()]])
def test_not_an_object(obj: Any) -> None:
    invalid(obj)


@pytest.mark.parametrize("v", [0, 2, -1, True, "1", [1]])
def test_bad_version(v: Any) -> None:
    invalid(good(v=v))


def test_float_version_is_refused() -> None:
    # 1.0 == 1 in Python; the subset check still refuses the float.
    with pytest.raises(WireError) as info:
        Envelope.from_json(good(v=1.0))
    assert info.value.code == "frame.float"


BAD_IDS = [
    "", "A" * 21, "A" * 23, "A" * 21 + "=", "A" * 21 + "+", "A" * 21 + "/", "A" * 21 + ".",
    "A" * 21 + " ", " " + "A" * 21, "A" * 21 + "\u00e9", "A" * 22 + "\n",
    base64.b64encode(bytes(16)).decode(),  # padded standard base64
    16, None, ["A" * 22],
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_id(bad: Any) -> None:
    if bad is None:
        invalid(good(id=None))  # missing
    else:
        invalid(good(id=bad))


@pytest.mark.parametrize("bad", [b for b in BAD_IDS if b is not None])
def test_bad_reply_to(bad: Any) -> None:
    invalid(good(kind="echo", reply_to=bad))


@pytest.mark.parametrize("kind", ["MESSAGE", "Message", "msg", "", "receipt", None, 1, ["ack"], {}])
def test_bad_kind(kind: Any) -> None:
    obj = good()
    obj["kind"] = kind
    invalid(obj)


@pytest.mark.parametrize("precedence", ["flash", "Flash", "URGENT", "", None, 0, ["FLASH"], {}])
def test_bad_precedence(precedence: Any) -> None:
    obj = good()
    obj["precedence"] = precedence
    invalid(obj)


BAD_NAMES = ["", "Alice", "-alice", ".alice", "_alice", "al ice", "al/ice", "al:ice",
             "\u00e4lice", "a" * 65, "alice\n", 7, None, ["alice"]]


@pytest.mark.parametrize("field", ["channel", "sender", "template"])
@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_name(field: str, name: Any) -> None:
    obj = good()
    obj[field] = name
    err = invalid(obj)
    assert f"envelope.{field}" in err.message


@pytest.mark.parametrize("name", ["a", "0", "a" * 64, "north-south", "v1.2_x-y", "9lives"])
def test_good_names(name: str) -> None:
    Envelope.from_json(good(channel=name, sender=name, template=name))


@pytest.mark.parametrize("created", [
    "2026-11-27T21:00:00.123", "2026-11-27T21:00:00.123+00:00", "2026-11-27 21:00:00.123Z",
    "2026-11-27t21:00:00.123z", "2026-11-27T21:00Z", "2026-11-27", "26-11-27T21:00:00Z",
    "2026-11-27T21:00:00.1234567Z", "2026-11-27T21:00:00.Z", "2026-13-01T00:00:00Z",
    "2026-02-30T00:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T21:60:00Z",
    "2026-11-27T23:59:60Z",  # no leap seconds
    "\u0662\u0660\u0662\u0666-11-27T21:00:00Z",  # Arabic-Indic digits match \d but are refused
    "", 1764277200, None, ["2026-11-27T21:00:00Z"],
])
def test_bad_created(created: Any) -> None:
    obj = good(created=created) if created is not None else good(created=None)
    with pytest.raises(WireError) as info:
        Envelope.from_json(obj)
    # not text at all is a shape fault; text that is not a time, a time fault
    expected = "frame.bad_time" if isinstance(created, str) else "envelope.invalid"
    assert info.value.code == expected


@pytest.mark.parametrize("kind", ["ack", "echo"])
def test_reply_needs_reply_to(kind: str) -> None:
    body = {"ack": "received"} if kind == "ack" else {}
    assert "reply_to" in invalid(good(kind=kind, body=body)).message


@pytest.mark.parametrize("kind", ["message", "heartbeat"])
def test_reply_to_optional_elsewhere(kind: str) -> None:
    assert Envelope.from_json(good(kind=kind)).reply_to is None
    assert Envelope.from_json(good(kind=kind, reply_to=ID_B)).reply_to == ID_B


@pytest.mark.parametrize("ack", list(AckKind))
def test_ack_body_valid(ack: AckKind) -> None:
    env = Envelope.from_json(good(kind="ack", reply_to=ID_B, body={"ack": ack.value}))
    assert env.body == {"ack": ack.value}


@pytest.mark.parametrize("body", [
    {}, {"ack": "read"}, {"ack": "RECEIVED"}, {"ack": ""}, {"ack": None}, {"ack": 1},
    {"ack": "received", "note": "x"}, {"acknowledged": "received"},
])
def test_ack_body_shape(body: dict[str, Any]) -> None:
    invalid(good(kind="ack", reply_to=ID_B, body=body))


@pytest.mark.parametrize("ack", [[], ["received"], {}, {"ack": "received"}])
def test_ack_body_unhashable_value(ack: Any) -> None:
    invalid(good(kind="ack", reply_to=ID_B, body={"ack": ack}))


@pytest.mark.parametrize("body", [None, [], "text", 1, [{"a": 1}]])
def test_body_must_be_object(body: Any) -> None:
    obj = good()
    obj["body"] = body
    invalid(obj)


@pytest.mark.parametrize(("body", "code"), [
    ({"x": 1.5}, "frame.float"),
    ({"x": [1, {"y": 2.0}]}, "frame.float"),
    ({"x": 2**53}, "frame.int_range"),
    ({"x": "\ud800"}, "frame.malformed"),
    ({"x": (1, 2)}, "frame.malformed"),
    ({"x": b"raw"}, "frame.malformed"),
])
def test_body_outside_json_subset(body: dict[str, Any], code: str) -> None:
    invalid(good(body=body), code)


def _sized(total: int) -> dict[str, Any]:
    """A message envelope whose canonical encoding is exactly ``total`` bytes."""
    base = len(canonical_bytes(good(body={"pad": ""})))
    return good(body={"pad": "x" * (total - base)})


def test_size_limit_boundary() -> None:
    at_limit = _sized(MAX_ENVELOPE_BYTES)
    assert len(canonical_bytes(at_limit)) == MAX_ENVELOPE_BYTES
    Envelope.from_json(at_limit)
    over = _sized(MAX_ENVELOPE_BYTES + 1)
    err = invalid(over, "frame.too_large")
    assert err.message.startswith(f"envelope of {MAX_ENVELOPE_BYTES + 1} bytes")


def test_size_is_counted_in_utf8_bytes() -> None:
    base = len(canonical_bytes(good(body={"pad": ""})))
    chars = (MAX_ENVELOPE_BYTES - base) // 3 + 1  # U+20AC is 3 bytes in UTF-8
    invalid(good(body={"pad": "\u20ac" * chars}), "frame.too_large")


def test_too_large_via_build() -> None:
    with pytest.raises(WireError) as info:
        Envelope.build(id=ID_A, kind=Kind.MESSAGE, channel="c", sender="s", template="t",
                       precedence=Precedence.FLASH, created=CREATED,
                       body={"blob": "x" * MAX_ENVELOPE_BYTES})
    assert info.value.code == "frame.too_large"


# Every field replaced by an arbitrary JSON value: a valid envelope or a WireError, nothing else.
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    | st.sampled_from([ID_B, "message", "ack", "echo", "FLASH", "2026-11-27T21:00:00Z", "a"]),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)
fields = st.sampled_from(["v", "id", "kind", "channel", "sender", "template", "precedence",
                          "created", "body", "reply_to", "extra"])


@FAST
@given(st.dictionaries(fields, any_json, min_size=1, max_size=3),
       st.sets(fields, max_size=2))
def test_mutated_envelopes_yield_envelope_or_wire_error(changes: dict[str, Any],
                                                        removed: set[str]) -> None:
    obj = {**good(kind="echo", reply_to=ID_B), **changes}
    for field in removed:
        obj.pop(field, None)
    try:
        env = Envelope.from_json(obj)
    except WireError:
        return
    assert Envelope.from_json(env.to_json()) == env
    assert env.to_json() == {k: v for k, v in obj.items() if not (k == "reply_to" and v is None)}


# -- sign / verify ----------------------------------------------------------------------------

@pytest.fixture
def env() -> Envelope:
    return Envelope.from_json(good())


def test_sign_verify(env: Envelope) -> None:
    sig = env.sign(ALICE)
    assert sig["key"] == ALICE.key_id
    assert env.verify(ALICE.public_key, sig) is None
    # The signature covers the envelope exactly as it travels.
    ALICE.public_key.verify(domain=Domain.ENVELOPE, obj=env.to_json(), signature=sig)


def test_verify_survives_a_wire_round_trip(env: Envelope) -> None:
    sig = env.sign(ALICE)
    wire = json.dumps({"type": "submit", "envelope": env.to_json(), "sig": sig}, indent=1)
    frame = parse(wire)
    Envelope.from_json(frame["envelope"]).verify(ALICE.public_key, frame["sig"])


def test_verify_with_another_key(env: Envelope) -> None:
    sig = env.sign(ALICE)
    with pytest.raises(CryptoError) as info:
        env.verify(BOB.public_key, sig)
    assert info.value.code == "auth.wrong_key"
    assert info.value.ref == env.id


@pytest.mark.parametrize("change", [
    {"body": {"summary": "track", "count": 4}},
    {"precedence": "ROUTINE"},
    {"channel": "north-west"},
    {"sender": "bob"},
    {"created": "2026-11-27T21:00:00.124Z"},
    {"created": "2026-11-27T21:00:00.1230Z"},  # same instant, different signed string
    {"id": ID_B},
    {"reply_to": ID_B},
])
def test_verify_tampered(env: Envelope, change: dict[str, Any]) -> None:
    sig = env.sign(ALICE)
    tampered = Envelope.from_json({**env.to_json(), **change})
    with pytest.raises(CryptoError) as info:
        tampered.verify(ALICE.public_key, sig)
    assert info.value.code == "auth.bad_signature"
    assert info.value.ref == tampered.id


def test_signature_from_another_domain_fails(env: Envelope) -> None:
    sig = ALICE.sign(domain=Domain.AUTH, obj=env.to_json())
    with pytest.raises(CryptoError) as info:
        env.verify(ALICE.public_key, sig)
    assert info.value.code == "auth.bad_signature"


@pytest.mark.parametrize("sig", [None, {}, "sig", {"alg": "ed25519", "key": "k", "sig": "AA=="}])
def test_verify_malformed_signature(env: Envelope, sig: Any) -> None:
    with pytest.raises(CryptoError) as info:
        env.verify(ALICE.public_key, sig)
    assert info.value.ref == env.id


# -- ids --------------------------------------------------------------------------------------

def test_new_envelope_id() -> None:
    assert new_envelope_id(bytes(16)) == "A" * 22
    assert new_envelope_id(b"\xff" * 16) == "_" * 21 + "w"
    assert ENVELOPE_ID.fullmatch(new_envelope_id(bytes(range(16))))


@pytest.mark.parametrize("raw", [b"", bytes(15), bytes(17), bytes(32)])
def test_new_envelope_id_needs_16_bytes(raw: bytes) -> None:
    with pytest.raises(WireError) as info:
        new_envelope_id(raw)
    assert info.value.code == "envelope.invalid"


@FAST
@given(st.binary(min_size=16, max_size=16))
def test_new_envelope_ids_are_valid_and_injective(raw: bytes) -> None:
    eid = new_envelope_id(raw)
    assert ENVELOPE_ID.fullmatch(eid)
    assert base64.urlsafe_b64decode(eid + "==") == raw


def test_ack_id_is_deterministic() -> None:
    first = ack_id(party="south", member="bob", reply_to=ID_A, ack=AckKind.RECEIVED)
    assert first == ack_id(party="south", member="bob", reply_to=ID_A, ack=AckKind.RECEIVED)
    assert ENVELOPE_ID.fullmatch(first)
    # Usable as the id of the ack envelope itself.
    Envelope.from_json(good(id=first, kind="ack", reply_to=ID_A, body={"ack": "received"}))


def test_ack_id_vector() -> None:
    # b64url(SHA-256("hotline/v1/ack-id\nsouth\nbob\n<reply_to>\nunderstood")[:16]); see the vectors.
    assert ack_id(party="south", member="bob", reply_to=ID_A,
                  ack=AckKind.UNDERSTOOD) == "RJesXWu3JcYeyOYrcLt4tg"


def test_ack_ids_are_distinct() -> None:
    """Bound to the sender's party as well as its name: two parties may have a "bob"."""
    ids = {ack_id(party=p, member=m, reply_to=r, ack=a)
           for p in ("north", "south")
           for m in ("alice", "bob", "north-relay")
           for r in (ID_A, ID_B)
           for a in AckKind}
    assert len(ids) == 2 * 3 * 2 * len(AckKind)


def test_an_ack_id_must_be_its_senders_derivation() -> None:
    own = ack_id(party="north", member="alice", reply_to=ID_A, ack=AckKind.RECEIVED)
    check_ack_id(Envelope.from_json(good(id=own, kind="ack", reply_to=ID_A,
                                         body={"ack": "received"})), party="north")
    squatted = [ack_id(party="south", member="alice", reply_to=ID_A, ack=AckKind.RECEIVED),
                ack_id(party="north", member="alice", reply_to=ID_A, ack=AckKind.UNDERSTOOD),
                ack_id(party="north", member="alice", reply_to=ID_B, ack=AckKind.RECEIVED), ID_B]
    for other in squatted:
        ack = Envelope.from_json(good(id=other, kind="ack", reply_to=ID_A, body={"ack": "received"}))
        with pytest.raises(WireError) as info:
            check_ack_id(ack, party="north")
        assert info.value.code == "envelope.invalid" and own in info.value.message
    check_ack_id(Envelope.from_json(good(id=ID_B)), party="north")  # a message's id is its own


def test_acks_have_their_own_dedup_namespace() -> None:
    own = ack_id(party="north", member="alice", reply_to=ID_A, ack=AckKind.RECEIVED)
    ack = Envelope.from_json(good(id=own, kind="ack", reply_to=ID_A, body={"ack": "received"}))
    message = Envelope.from_json(good(id=own))  # a message that took the ack's id
    assert ack.store_key == f"ack:{own}" and message.store_key == own


# -- times ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("moment", "text"), [
    (datetime(2026, 11, 27, 21, 0, tzinfo=UTC), "2026-11-27T21:00:00.000Z"),
    (datetime(2026, 11, 27, 21, 0, 0, 999999, tzinfo=UTC), "2026-11-27T21:00:00.999Z"),  # truncates
    (datetime(2026, 11, 27, 21, 0, 0, 1000, tzinfo=UTC), "2026-11-27T21:00:00.001Z"),
    (datetime(2026, 11, 28, 0, 30, tzinfo=timezone(timedelta(hours=3, minutes=30))),
     "2026-11-27T21:00:00.000Z"),
    (datetime(2026, 11, 27, 16, 0, tzinfo=timezone(timedelta(hours=-5))),
     "2026-11-27T21:00:00.000Z"),
])
def test_format_time(moment: datetime, text: str) -> None:
    assert format_time(moment) == text
    assert parse_time(text) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@pytest.mark.parametrize(("text", "moment"), [
    ("2026-11-27T21:00:00Z", datetime(2026, 11, 27, 21, 0, tzinfo=UTC)),
    ("2026-11-27T21:00:00.5Z", datetime(2026, 11, 27, 21, 0, 0, 500000, tzinfo=UTC)),
    ("2026-11-27T21:00:00.123456Z", datetime(2026, 11, 27, 21, 0, 0, 123456, tzinfo=UTC)),
    ("2024-02-29T23:59:59.999Z", datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)),
])
def test_parse_time(text: str, moment: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == moment and parsed.tzinfo is UTC


def test_parse_time_names_the_field() -> None:
    with pytest.raises(WireError) as info:
        parse_time("yesterday", field="agreement.effective")
    assert info.value.code == "frame.bad_time"
    assert "agreement.effective" in info.value.message


def test_format_time_refuses_naive() -> None:
    with pytest.raises(WireError):
        format_time(datetime(2026, 11, 27, 21, 0))


@FAST
@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31),
                    timezones=st.just(UTC)))
def test_time_round_trip(moment: datetime) -> None:
    text = format_time(moment)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    assert parse_time(text) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert format_time(parse_time(text)) == text


@FAST
@given(st.text(max_size=40) | st.integers() | st.none())
def test_parse_time_raises_only_wire_error(text: Any) -> None:
    try:
        parse_time(text)
    except WireError as exc:
        assert exc.code == "frame.bad_time"


# -- vectors ----------------------------------------------------------------------------------

def _vectors(path: Path) -> list[dict[str, Any]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["domain"] == "hotline/v1/envelope"
    assert len(doc["vectors"]) >= 4
    return list(doc["vectors"])


def test_envelope_vectors(asset: Any) -> None:
    for vector in _vectors(asset("envelope_vectors.json")):
        name = vector["name"]
        key = SigningKey.from_seed(bytes.fromhex(vector["seed"]))
        assert key.public_key.to_json() == vector["public_key"], name
        assert key.key_id == vector["key_id"], name

        env = Envelope.from_json(vector["envelope"])
        obj = env.to_json()
        assert obj == vector["envelope"], name
        assert canonical_bytes(obj) == vector["canonical"].encode("utf-8"), name
        expected_signed = bytes.fromhex(vector["signed_bytes_hex"])
        assert signed_bytes(Domain.ENVELOPE, obj) == expected_signed, name
        assert expected_signed == b"hotline/v1/envelope\n" + vector["canonical"].encode("utf-8")

        # Ed25519 is deterministic: re-signing gives the very same signature.
        assert env.sign(key) == vector["signature"], name
        env.verify(PublicKey.from_json(vector["public_key"]), vector["signature"])
        # And the signature holds for plain Ed25519 over the recorded bytes.
        Ed25519PublicKey.from_public_bytes(key.public_key.raw).verify(
            base64.b64decode(vector["signature"]["sig"]), expected_signed)


def test_envelope_vectors_cover_the_format(asset: Any) -> None:
    vectors = _vectors(asset("envelope_vectors.json"))
    kinds = {v["envelope"]["kind"] for v in vectors}
    assert {"message", "ack", "heartbeat"} <= kinds
    assert any("reply_to" in v["envelope"] for v in vectors)
    assert any(not v["canonical"].isascii() for v in vectors)


def test_envelope_vectors_refuse_tampering(asset: Any) -> None:
    for vector in _vectors(asset("envelope_vectors.json")):
        obj = dict(vector["envelope"], precedence="ROUTINE" if vector["envelope"]["precedence"]
                   != "ROUTINE" else "FLASH")
        with pytest.raises(CryptoError):
            Envelope.from_json(obj).verify(PublicKey.from_json(vector["public_key"]),
                                           vector["signature"])


@pytest.mark.parametrize("body", [
    {}, {"field": "f", "code": "template.invalid"},
    {"field": "Not A Name", "code": "template.invalid", "reason": ""},
    {"field": "f", "code": "not a code", "reason": ""},
    {"field": "f", "code": "template.invalid", "reason": "x" * 501},
    {"field": "f", "code": "template.invalid", "reason": "", "value": "leaked"},
])
def test_a_violation_report_has_exactly_its_fields(body: dict[str, str]) -> None:
    assert "violation body" in invalid(good(kind="violation", reply_to=ID_B, body=body)).message
    assert "reply_to" in invalid(good(kind="violation", body={
        "field": "f", "code": "template.invalid", "reason": ""})).message
