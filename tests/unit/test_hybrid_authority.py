"""Hybrid authority keys (issue 16): a party's authority may be Ed25519 + ML-DSA-65, pinned as
text in a config, a profile and the deployment descriptor; every roster document and agreement
it signs then needs both halves, and an Ed25519 authority moves to one by a handover."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from hotline.canonical import canonical_bytes, dumps, parse
from hotline.ceremony import enroll, load_member_private, new_authority, rotate
from hotline.config import format_authority_key, parse_authority_key, parse_config, with_authority_pin
from hotline.descriptor import make_descriptor, read_descriptor, verify_descriptor
from hotline.errorcodes import Code
from hotline.errors import ConfigError, CryptoError
from hotline.hybrid import (
    ALG_HYBRID,
    MAX_KEY_TEXT,
    Ed25519SuiteSigner,
    HybridPublicKey,
    HybridSigningKey,
    member_key_from_text,
)
from hotline.keys import SigningKey
from hotline.publicfiles import read_authority_key
from hotline.roster import DOCUMENT_TYPES, Roster, handover
from hotline.typed import to_json
from tests.unit.test_roster import (
    AUTH,
    AUTHORITIES,
    KEYS,
    NOT_AFTER,
    NOW,
    T0,
    agreement_doc,
    enroll_doc,
    refused,
)

NORTH = HybridSigningKey.from_seeds(hashlib.sha256(b"north/ed").digest(),
                                    hashlib.sha256(b"north/ml").digest())
HALVES = {"ed25519": "Ed25519", "ml-dsa-65": "ML-DSA-65"}


def flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[5] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def signed_by(doc: Any, *keys: Any, bad: str | None = None) -> dict[str, Any]:
    """``doc`` signed by ``keys`` in its type's domain; ``bad``: the first key's signature has
    that half damaged (a forger who breaks only the other algorithm)."""
    obj = to_json(doc)
    sigs = [k.sign(domain=DOCUMENT_TYPES[obj["type"]], obj=obj) for k in keys]
    if bad is not None:
        sigs[0] = {**sigs[0], bad: flip(sigs[0][bad])}
    return {"document": obj, "sigs": sigs}


@pytest.fixture
def hybrid_north() -> Roster:
    return Roster(authorities={**AUTHORITIES, "north": NORTH.public_key})


def test_the_text_form_carries_both_halves_and_reads_back() -> None:
    text = NORTH.public_key.to_text()
    assert text.startswith(f"{ALG_HYBRID}:") and text.count(":") == 2
    assert len(text) == 2667 <= MAX_KEY_TEXT
    assert member_key_from_text(text) == NORTH.public_key
    assert parse_authority_key(format_authority_key(NORTH.public_key)) == NORTH.public_key
    plain = AUTH["south"].public_key
    assert parse_authority_key(format_authority_key(plain)) == plain


@pytest.mark.parametrize("mutate", [
    lambda t: t.rsplit(":", 1)[0],  # the ML-DSA-65 half missing
    lambda t: t.replace(":", "::", 1),  # an empty Ed25519 half
    lambda t: t[:-8],  # an ML-DSA-65 key cut short
    lambda t: t + "AAAA",  # or too long
    lambda t: t.replace(ALG_HYBRID, "ed25519+ml-dsa-44"),  # another algorithm
    lambda t: t.replace(ALG_HYBRID, "ed25519"),  # the Ed25519 form with a tail
    lambda t: t[:30] + "!" + t[31:],  # not base64
])
def test_a_mangled_text_form_is_a_typed_error(mutate: Any) -> None:
    with pytest.raises(CryptoError) as caught:
        parse_authority_key(mutate(NORTH.public_key.to_text()))
    assert "an authority key is written" in caught.value.message


def test_a_config_pins_a_hybrid_authority_and_refuses_a_broken_one(tmp_path: Path) -> None:
    base = '[server]\nport = 0\n[tlog]\nkey = "keys/log.pem"\n'
    text = with_authority_pin(base, party="north", key=NORTH.public_key, file="hotline.toml",
                              home=tmp_path)
    config = parse_config(text, file="hotline.toml", home=tmp_path, env={})
    assert parse_authority_key(config.roster.authorities["north"]) == NORTH.public_key
    broken = text.replace(NORTH.public_key.to_text(), NORTH.public_key.to_text()[:-4])
    with pytest.raises(ConfigError) as caught:
        parse_config(broken, file="hotline.toml", home=tmp_path, env={})
    assert caught.value.path == ("roster", "authorities", "north")


def test_a_descriptor_carries_hybrid_authorities() -> None:
    log = SigningKey.from_seed(bytes(range(32)))
    signed = make_descriptor(origin="hotline.test", servers=["ws://127.0.0.1:8470/v1/ws"],
                             log_key=log, issued=T0,
                             authorities={"north": NORTH.public_key,
                                          "south": AUTH["south"].public_key})
    record = verify_descriptor(signed)
    assert record.authority_keys() == {"north": NORTH.public_key, "south": AUTH["south"].public_key}
    assert read_descriptor(dumps(signed).encode()).authorities["north"] == NORTH.public_key.to_text()


def test_a_hybrid_authority_enrolls_with_both_halves(hybrid_north: Roster) -> None:
    assert hybrid_north.add(signed_by(enroll_doc("alice"), NORTH)) == "enrollment"
    assert hybrid_north.enrollments[KEYS["alice"].key_id].authority == NORTH.key_id


@pytest.mark.parametrize("half", HALVES)
def test_one_bad_half_on_a_roster_document_is_refused_and_named(hybrid_north: Roster,
                                                                half: str) -> None:
    error = refused(hybrid_north, signed_by(enroll_doc("alice"), NORTH, bad=half),
                    Code.ROSTER_BAD_SIGNATURE)
    assert f"the {HALVES[half]} half does not verify" in error.message


def test_the_ed25519_half_alone_is_not_an_authority_signature(hybrid_north: Roster) -> None:
    obj = enroll_doc("alice")
    half = Ed25519SuiteSigner(NORTH).sign_canonical(domain=DOCUMENT_TYPES["enrollment"],
                                                    canonical=canonical_bytes(obj))
    refused(hybrid_north, {"document": obj, "sigs": [half]}, Code.ROSTER_BAD_SIGNATURE)
    # nor a plain Ed25519 signature by the key the hybrid's Ed25519 half is
    refused(hybrid_north, signed_by(obj, AUTH["north"]), Code.ROSTER_BAD_SIGNATURE)


def test_an_agreement_needs_both_halves_of_a_hybrid_party(hybrid_north: Roster) -> None:
    doc = agreement_doc(authorities={"north": NORTH.key_id})
    others = (AUTH["south"], AUTH["mediator"])
    for half, named in HALVES.items():
        error = refused(hybrid_north, signed_by(doc, NORTH, *others, bad=half),
                        Code.ROSTER_BAD_SIGNATURE)
        assert "agreement signature of north" in error.message
        assert f"the {named} half does not verify" in error.message
    assert hybrid_north.add(signed_by(doc, NORTH, *others)) == "agreement"


def test_an_ed25519_authority_hands_over_to_a_hybrid_one() -> None:
    roster = Roster(authorities=dict(AUTHORITIES))
    passed = handover(party="north", old=AUTH["north"].public_key, new=NORTH.public_key, at=NOW)
    for half in HALVES:  # the new key's signature on the handover needs both halves too
        refused(roster, signed_by(passed, NORTH, AUTH["north"], bad=half), Code.ROSTER_BAD_SIGNATURE)
    assert roster.add(signed_by(passed, AUTH["north"], NORTH)) == "handover"
    assert roster.current["north"] == NORTH.public_key
    late = enroll_doc("alice", not_before=NOW, not_after=NOT_AFTER)
    refused(roster, signed_by(late, NORTH, bad="ml-dsa-65"), Code.ROSTER_BAD_SIGNATURE)
    assert roster.add(signed_by(late, NORTH)) == "enrollment"


def test_the_ceremony_makes_and_rotates_a_hybrid_authority(tmp_path: Path) -> None:
    key, private, public = new_authority(tmp_path, "north", b"pw", hybrid=True)
    assert isinstance(key.public_key, HybridPublicKey)
    assert read_authority_key(public).public_key == key.public_key
    assert load_member_private(private, b"pw").key_id == key.key_id
    member = SigningKey.generate().public_key
    signed = enroll(key, "north", "alice", "liaison", member, NOW, NOW + (NOT_AFTER - T0))
    assert set(signed.sigs[0]) == {"alg", "key", *HALVES}
    done = rotate(tmp_path, "north", b"pw", NOW)  # a hybrid authority's successor is hybrid
    assert isinstance(done.key.public_key, HybridPublicKey)
    roster = Roster(authorities={"north": key.public_key})
    assert roster.add(parse(done.handover_path.read_bytes())) == "handover"


def test_an_ed25519_authority_rotates_to_a_hybrid_one(tmp_path: Path) -> None:
    old, _, _ = new_authority(tmp_path, "north", None)
    done = rotate(tmp_path, "north", None, NOW, hybrid=True)
    assert isinstance(old.public_key, type(AUTH["north"].public_key))
    assert isinstance(done.key.public_key, HybridPublicKey)
    roster = Roster(authorities={"north": old.public_key})
    assert roster.add(parse(done.handover_path.read_bytes())) == "handover"
