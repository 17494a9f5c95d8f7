"""The deployment descriptor (hotline/descriptor.py): a fixed vector, and every edit, a wrong
key, an oversized or malformed file refused with its typed code."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from hotline.canonical import dumps
from hotline.descriptor import (
    MAX_DESCRIPTOR,
    DescriptorError,
    fingerprints,
    make_descriptor,
    read_descriptor,
    verify_descriptor,
)
from hotline.errorcodes import Code
from hotline.keys import Domain, SigningKey
from hotline.tlog.note import NoteVerifier
from hotline.tlsca import make_ca, parse_names

LOG = SigningKey.from_seed(bytes(range(32)))
NORTH = SigningKey.from_seed(bytes([1]) * 32)
SOUTH = SigningKey.from_seed(bytes([2]) * 32)
ISSUED = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

# Ed25519 is deterministic: these bytes are the descriptor format. A change here is a format
# break every member's `hotline join` would see.
VECTOR = (
    '{"descriptor":{"type":"deployment","origin":"hotline.test","servers":'
    '["ws://127.0.0.1:8470/v1/ws"],"log_key":"hotline.test+92aadef0+AQOhB7/zzhC+HXDdGOdLwJln5NYw'
    'm6UNXx3chmQSVTG4","authorities":{"north":"ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w'
    '=","south":"ed25519:gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q="},"issued":"2026-12-01T12:00:'
    '00.000Z"},"sig":{"alg":"ed25519","key":"Ju8vrnAKiUbN-LJsK7w6o_JFNnA-0Xc8eqLWdjjsAUM","sig":"0I'
    'XTfmpCDjx7oLHZIR85BcEBPNrTPGADjqkOk8azuunX46nR85YM3bnTECcAZhPMUXc13kAsw23YEKs9bjTeBA=="}}')


def _signed(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"origin": "hotline.test", "servers": ["ws://127.0.0.1:8470/v1/ws"],
                            "log_key": LOG, "issued": ISSUED,
                            "authorities": {"north": NORTH.public_key, "south": SOUTH.public_key}}
    return make_descriptor(**{**args, **changes})


def _ca_pem() -> str:
    ca = make_ca(origin="hotline.test", names=parse_names(["hl.example"]), now=ISSUED)
    return ca.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _refused(value: Any, code: Code) -> None:
    with pytest.raises(DescriptorError) as caught:
        verify_descriptor(value)
    assert caught.value.code == code, caught.value.message


def test_the_vector_is_what_make_descriptor_signs_and_it_verifies() -> None:
    assert dumps(_signed()) == VECTOR
    record = read_descriptor(VECTOR.encode())
    assert record.origin == "hotline.test"
    assert record.authority_keys() == {"north": NORTH.public_key, "south": SOUTH.public_key}
    prints = fingerprints(record)
    assert prints.authorities == {
        "north": "47355 42261 00635 49053 42849 96980 75157 17606 44190 87878 66613 11893",
        "south": "81803 80376 84386 93936 55447 10619 91622 97957 35268 29267 65015 27246"}
    assert prints.log == ("16428 86397 55450 34368 69487 82800 75953 49972 30699 53509 57359 "
                          "16621")
    assert prints.tls_ca is None


def test_a_descriptor_with_a_tls_ca_shows_its_sha256() -> None:
    signed = _signed(servers=["wss://hl.example:8470/v1/ws"], tls_ca=_ca_pem())
    prints = fingerprints(verify_descriptor(signed))
    assert prints.tls_ca is not None and len(prints.tls_ca.split(":")) == 32


OTHER = SigningKey.from_seed(bytes([9]) * 32)
EDITS: dict[str, Any] = {
    "origin": "hotline.evil",
    "servers": ["ws://127.0.0.1:9999/v1/ws"],
    "authorities": {"north": f"ed25519:{OTHER.public_key.to_json()['pub']}",
                    "south": "ed25519:gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q="},
    "issued": "2026-12-02T12:00:00.000Z",
    # another valid log key of the same name: the signature names the real one
    "log_key": NoteVerifier(name="hotline.test", public_key=OTHER.public_key.raw).to_text(),
}


@pytest.mark.parametrize("field", sorted(EDITS))
def test_editing_any_field_breaks_the_signature(field: str) -> None:
    value = copy.deepcopy(_signed())
    value["descriptor"][field] = EDITS[field]
    _refused(value, Code.DESCRIPTOR_BAD_SIGNATURE)


def test_adding_a_party_or_a_ca_breaks_the_signature() -> None:
    value = copy.deepcopy(_signed())
    value["descriptor"]["authorities"]["west"] = EDITS["authorities"]["north"]
    _refused(value, Code.DESCRIPTOR_BAD_SIGNATURE)
    value = copy.deepcopy(_signed())
    value["descriptor"]["tls_ca"] = _ca_pem()
    value["descriptor"]["servers"] = ["wss://hl.example:8470/v1/ws"]
    _refused(value, Code.DESCRIPTOR_BAD_SIGNATURE)


def test_dropping_the_ca_breaks_the_signature() -> None:
    value = copy.deepcopy(_signed(servers=["wss://hl.example:8470/v1/ws"], tls_ca=_ca_pem()))
    del value["descriptor"]["tls_ca"]
    _refused(value, Code.DESCRIPTOR_BAD_SIGNATURE)


def test_a_descriptor_signed_by_another_key_than_its_log_key_is_refused() -> None:
    body = _signed()["descriptor"]
    forged = {"descriptor": body, "sig": OTHER.sign(domain=Domain.DESCRIPTOR, obj=body)}
    _refused(forged, Code.DESCRIPTOR_BAD_SIGNATURE)
    # the forger names its own key in log_key: then the origin's members' --expect log= and
    # the log key's fingerprint differ (join's check); the signature alone cannot tell
    body = {**body, "log_key": EDITS["log_key"]}
    assert verify_descriptor({"descriptor": body,
                              "sig": OTHER.sign(domain=Domain.DESCRIPTOR, obj=body)})


def test_a_signature_in_another_domain_is_refused() -> None:
    body = _signed()["descriptor"]
    _refused({"descriptor": body, "sig": LOG.sign(domain=Domain.AGREEMENT, obj=body)},
             Code.DESCRIPTOR_BAD_SIGNATURE)


def test_an_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(DescriptorError) as caught:
        read_descriptor(b" " * (MAX_DESCRIPTOR + 1))
    assert caught.value.code == Code.DESCRIPTOR_INVALID


@pytest.mark.parametrize("value", [
    None, [], "x", {}, {"descriptor": {}}, {"descriptor": {}, "sig": {}, "more": 1},
    {"descriptor": {"type": "handover"}, "sig": {}},
])
def test_malformed_shapes_are_invalid(value: Any) -> None:
    _refused(value, Code.DESCRIPTOR_INVALID)


def _resigned(**body_changes: Any) -> dict[str, Any]:
    """A descriptor edited and signed again by the log key: only the field checks stand."""
    body = {**_signed()["descriptor"], **body_changes}
    return {"descriptor": body, "sig": LOG.sign(domain=Domain.DESCRIPTOR, obj=body)}


@pytest.mark.parametrize("changes", [
    {"unknown": 1},
    {"servers": []},
    {"servers": ["http://127.0.0.1:8470/"]},
    {"servers": ["ws://"]},
    {"authorities": {}},
    {"authorities": {"north": "ed25519:AAAA"}},
    {"authorities": {"No Party!": "ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="}},
    {"issued": "yesterday"},
    {"tls_ca": "not a certificate"},
    {"log_key": "garbage"},
    {"origin": "another"},  # the log key is named hotline.test
])
def test_malformed_fields_are_invalid_even_when_signed(changes: dict[str, Any]) -> None:
    _refused(_resigned(**changes), Code.DESCRIPTOR_INVALID)


def test_a_plain_url_with_a_tls_ca_is_invalid() -> None:
    with pytest.raises(DescriptorError) as caught:
        _signed(tls_ca=_ca_pem())
    assert caught.value.code == Code.DESCRIPTOR_INVALID


def test_a_malformed_signature_is_invalid() -> None:
    value = copy.deepcopy(_signed())
    value["sig"] = {"alg": "ed25519", "key": "x", "sig": "AAAA"}
    _refused(value, Code.DESCRIPTOR_INVALID)
    value["sig"] = "nope"
    _refused(value, Code.DESCRIPTOR_INVALID)
