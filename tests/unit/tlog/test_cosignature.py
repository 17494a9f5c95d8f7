"""hotline.tlog.cosignature: C2SP Ed25519 ``cosignature/v1`` (c2sp.org/tlog-cosignature)."""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.keys import SigningKey
from hotline.tlog.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from hotline.tlog.cosignature import (
    MAX_TIMESTAMP,
    CosignatureVerifier,
    add_cosignatures,
    cosign,
    cosigned_message,
    split_cosignatures,
    verify_cosignature,
    verify_cosignatures,
)
from hotline.tlog.note import NoteSignature, NoteVerifier, open_note, parse_note

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=100)
LOG = SigningKey.from_seed(bytes([5]) * 32)
NORTH = SigningKey.from_seed(bytes([6]) * 32)
SOUTH = SigningKey.from_seed(bytes([9]) * 32)
ORIGIN = "hotline.test/log"
CP = Checkpoint(ORIGIN, 9, bytes(range(32)))
BODY = CP.body()
T = 1767225600
NORTH_KEY = CosignatureVerifier("witness/north", NORTH.public_key.raw)
SOUTH_KEY = CosignatureVerifier("witness/south", SOUTH.public_key.raw)


def code_of(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(LogError) as info:
        fn(*args, **kwargs)
    return info.value.code


def test_format_matches_the_spec(external: dict[str, Any]) -> None:
    example = external["c2sp_checkpoint"]
    body = example["note"].split("\n\n")[0] + "\n"
    assert cosigned_message(body, example["cosignature_timestamp"]) == \
        example["cosigned_message"].encode()
    # The spec's witness line carries that timestamp after its key ID (we lack its key).
    witness_line = example["note"].split("\n")[-2]
    sig = NoteSignature.from_line(witness_line)
    assert len(sig.signature) == 72
    assert struct.unpack(">Q", sig.signature[:8])[0] == example["cosignature_timestamp"]


def test_cosign_line_layout() -> None:
    line = cosign(BODY, name="witness/north", key=NORTH, timestamp=T)
    prefix, name, encoded = line[:-1].split(" ")
    assert (prefix, name, line[-1]) == ("—", "witness/north", "\n")
    raw = base64.b64decode(encoded)
    public = NORTH.public_key.raw
    assert raw[:4] == hashlib.sha256(b"witness/north\n\x04" + public).digest()[:4] == NORTH_KEY.key_id
    assert raw[4:12] == T.to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1767225600\n" + BODY.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(raw[12:], message)


def test_round_trip() -> None:
    line = cosign(BODY, name="witness/north", key=NORTH, timestamp=T)
    assert verify_cosignature(line, BODY, NORTH_KEY) == T
    assert verify_cosignature(line[:-1], BODY, NORTH_KEY) == T
    for t in (0, MAX_TIMESTAMP):
        assert verify_cosignature(cosign(BODY, name="witness/north", key=NORTH, timestamp=t), BODY,
                                  NORTH_KEY) == t


def test_wrong_timestamp_body_or_key_is_refused() -> None:
    line = cosign(BODY, name="witness/north", key=NORTH, timestamp=T)
    sig = NoteSignature.from_line(line)
    later = NoteSignature(sig.name, sig.key_id, (T + 1).to_bytes(8, "big") + sig.signature[8:])
    assert code_of(verify_cosignature, later.line(), BODY, NORTH_KEY) == Code.LOG_BAD_SIGNATURE
    other_body = Checkpoint(ORIGIN, 10, bytes(range(32))).body()
    assert code_of(verify_cosignature, line, other_body, NORTH_KEY) == Code.LOG_BAD_SIGNATURE
    extended = Checkpoint(ORIGIN, 9, bytes(range(32)), ("ext",)).body()
    assert code_of(verify_cosignature, line, extended, NORTH_KEY) == Code.LOG_BAD_SIGNATURE
    assert code_of(verify_cosignature, line, BODY, SOUTH_KEY) == Code.LOG_UNKNOWN_KEY
    impostor = CosignatureVerifier("witness/north", SOUTH.public_key.raw)
    assert code_of(verify_cosignature, line, BODY, impostor) == Code.LOG_UNKNOWN_KEY  # key ID differs
    huge = NoteSignature(sig.name, sig.key_id, (2**63).to_bytes(8, "big") + sig.signature[8:])
    assert code_of(verify_cosignature, huge.line(), BODY, NORTH_KEY) == Code.LOG_BAD_COSIGNATURE
    short = NoteSignature(sig.name, sig.key_id, sig.signature[:-1])
    assert code_of(verify_cosignature, short.line(), BODY, NORTH_KEY) == Code.LOG_BAD_COSIGNATURE
    assert code_of(verify_cosignature, "— witness/north\n", BODY, NORTH_KEY) == Code.LOG_BAD_NOTE
    assert code_of(verify_cosignature, line + line, BODY, NORTH_KEY) == Code.LOG_BAD_NOTE


def test_cosign_refuses_bad_input() -> None:
    for t in (-1, MAX_TIMESTAMP + 1, True, 1.5, "1"):
        assert code_of(cosign, BODY, name="w", key=NORTH, timestamp=t) == Code.LOG_BAD_COSIGNATURE
    assert code_of(cosign, "not a checkpoint\n", name="w", key=NORTH, timestamp=T) == \
        Code.LOG_BAD_CHECKPOINT
    assert code_of(cosign, BODY, name="w w", key=NORTH, timestamp=T) == Code.LOG_BAD_KEY


def test_verifier_keys_are_typed() -> None:
    vkey = NORTH_KEY.to_text()
    name, key_id, encoded = vkey.split("+", 2)
    assert (name, key_id) == ("witness/north", NORTH_KEY.key_id.hex())
    assert base64.b64decode(encoded) == b"\x04" + NORTH.public_key.raw
    assert CosignatureVerifier.from_text(vkey) == NORTH_KEY
    note_vkey = NoteVerifier("witness/north", NORTH.public_key.raw).to_text()
    assert code_of(CosignatureVerifier.from_text, note_vkey) == Code.LOG_BAD_KEY
    assert code_of(NoteVerifier.from_text, vkey) == Code.LOG_BAD_KEY
    assert NoteVerifier("w", NORTH.public_key.raw).key_id != CosignatureVerifier(
        "w", NORTH.public_key.raw).key_id


def cosigned_note() -> str:
    signed = sign_checkpoint(CP, LOG)
    return add_cosignatures(signed, [cosign(BODY, name="witness/north", key=NORTH, timestamp=T),
                                     cosign(BODY, name="witness/south", key=SOUTH, timestamp=T + 5)])


def test_add_split_and_verify_cosignatures() -> None:
    signed = sign_checkpoint(CP, LOG)
    note = cosigned_note()
    log_key = NoteVerifier(ORIGIN, LOG.public_key.raw)
    assert verify_checkpoint(note, log_key) == CP  # cosignatures are ignored by the log check
    assert verify_cosignatures(note, [NORTH_KEY, SOUTH_KEY]) == {"witness/north": T,
                                                                "witness/south": T + 5}
    assert verify_cosignatures(note, [SOUTH_KEY]) == {"witness/south": T + 5}
    assert verify_cosignatures(signed, [NORTH_KEY]) == {}
    # Cosignature verifiers plug into open_note like note keys.
    assert open_note(note, [NORTH_KEY, log_key]) == (BODY, [ORIGIN, "witness/north"])
    log_only, lines = split_cosignatures(note)
    assert log_only == signed
    assert add_cosignatures(log_only, lines) == note
    assert [verify_cosignature(line, BODY, k) for line, k in zip(lines, [NORTH_KEY, SOUTH_KEY],
                                                                 strict=True)] == [T, T + 5]


def test_a_newer_cosignature_replaces_the_older() -> None:
    note = cosigned_note()
    newer = cosign(BODY, name="witness/north", key=NORTH, timestamp=T + 60)
    updated = add_cosignatures(note, [newer])
    assert len(parse_note(updated).signatures) == 3
    assert verify_cosignatures(updated, [NORTH_KEY])["witness/north"] == T + 60


def test_a_bad_cosignature_from_a_known_witness_is_refused() -> None:
    note = cosigned_note()
    other = Checkpoint(ORIGIN, 10, bytes(range(32))).body()
    forged = add_cosignatures(note, [cosign(other, name="witness/north", key=NORTH, timestamp=T)])
    assert code_of(verify_cosignatures, forged, [NORTH_KEY]) == Code.LOG_BAD_SIGNATURE
    assert verify_cosignatures(forged, [SOUTH_KEY]) == {"witness/south": T + 5}


def test_split_needs_the_log_line() -> None:
    only_witness = BODY + "\n" + cosign(BODY, name="witness/north", key=NORTH, timestamp=T)
    assert code_of(split_cosignatures, only_witness) == Code.LOG_BAD_NOTE
    assert code_of(add_cosignatures, "not a note", []) == Code.LOG_BAD_NOTE
    assert code_of(add_cosignatures, sign_checkpoint(CP, LOG), ["garbage"]) == Code.LOG_BAD_NOTE


@FAST
@given(st.binary(min_size=0, max_size=90), st.integers(-2, 2**64 + 2))
def test_arbitrary_signatures_raise_log_error_only(raw: bytes, timestamp: int) -> None:
    line = NoteSignature("witness/north", NORTH_KEY.key_id, raw).line() if len(raw) else "— x y\n"
    for call in (lambda: verify_cosignature(line, BODY, NORTH_KEY),
                 lambda: cosign(BODY, name="witness/north", key=NORTH, timestamp=timestamp),
                 lambda: NORTH_KEY.verify(BODY.encode(), raw)):
        try:
            call()
        except LogError:
            pass
