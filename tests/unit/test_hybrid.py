"""hotline.hybrid: Ed25519 + ML-DSA-65 signatures, both required, inseparable.

docs/ARCHITECTURE.md "Hybrid signatures".
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from hotline.canonical import canonical_bytes
from hotline.errorcodes import Code
from hotline.errors import CryptoError
from hotline.hybrid import (
    ALG_HYBRID,
    HYBRID_PREFIX,
    Ed25519Suite,
    Ed25519SuiteSigner,
    HybridPublicKey,
    HybridSigningKey,
    hybrid_message,
    member_key_from_json,
    signing_key_from_pem,
)
from hotline.keys import Domain, PublicKey, SigningKey, Verifier, b64url, pem_blocks

OBJ: dict[str, Any] = {"channel": "north-south", "body": {"text": "stand down"}, "n": 7}
SEEDS = (bytes(range(32)), bytes(range(32, 64)))


@pytest.fixture(scope="module")
def key() -> HybridSigningKey:
    return HybridSigningKey.from_seeds(*SEEDS)


def flip(text: str, at: int = 10) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("domain", list(Domain))
def test_both_halves_sign_and_verify_in_every_domain(key: HybridSigningKey, domain: Domain) -> None:
    sig = key.sign(domain=domain, obj=OBJ)
    assert sig["alg"] == ALG_HYBRID and sig["key"] == key.key_id
    key.public_key.verify(domain=domain, obj=OBJ, signature=sig)
    other = next(d for d in Domain if d is not domain)
    with pytest.raises(CryptoError) as err:
        key.public_key.verify(domain=other, obj=OBJ, signature=sig)
    assert err.value.code == Code.AUTH_BAD_SIGNATURE
    assert "Ed25519 and the ML-DSA-65" in err.value.message


def test_key_id_and_signed_message_follow_the_one_rule(key: HybridSigningKey) -> None:
    """Vector from fixed seeds: the KEY_ID is b64url SHA-256 of the key object's RFC 8785 bytes
    (recomputed here), and the message names the hybrid key before the plain domain bytes."""
    pub = key.public_key
    ed_pub = Ed25519PrivateKey.from_private_bytes(SEEDS[0]).public_key().public_bytes_raw()
    ml_pub = MLDSA65PrivateKey.from_seed_bytes(SEEDS[1]).public_key().public_bytes_raw()
    obj = {"alg": "ed25519+ml-dsa-65", "ed25519": base64.b64encode(ed_pub).decode(),
           "ml-dsa-65": base64.b64encode(ml_pub).decode()}
    assert pub.to_json() == obj
    assert pub.key_id == b64url(hashlib.sha256(canonical_bytes(obj)).digest())
    assert pub.key_id == HybridSigningKey.from_seeds(*SEEDS).key_id  # deterministic keys
    assert hybrid_message(pub.key_id, Domain.ENVELOPE, b"{}") == (
        b"hotline/v1/hybrid\n" + pub.key_id.encode() + b"\nhotline/v1/envelope\n{}")
    assert HybridPublicKey.from_json(obj) == pub
    # No plain domain may ever be the hybrid prefix: that would let a half pass as plain.
    assert all(d.value + "\n" != HYBRID_PREFIX.decode() for d in Domain)
    verifier: Verifier = pub  # one interface with Ed25519 keys
    assert verifier.key_id == pub.key_id


@pytest.mark.parametrize(("half", "named"), [("ed25519", "Ed25519"), ("ml-dsa-65", "ML-DSA-65")])
def test_one_bad_half_is_refused_and_named(key: HybridSigningKey, half: str, named: str) -> None:
    sig = key.sign(domain=Domain.ENVELOPE, obj=OBJ)
    bad = {**sig, half: flip(sig[half])}
    with pytest.raises(CryptoError) as err:
        key.public_key.verify(domain=Domain.ENVELOPE, obj=OBJ, signature=bad)
    assert err.value.code == Code.AUTH_BAD_SIGNATURE
    assert f"the {named} half does not verify" in err.value.message


def test_the_ed25519_half_is_never_a_plain_ed25519_signature(key: HybridSigningKey) -> None:
    """Stripping: a verifier that only knows the Ed25519 key refuses the Ed25519 half, in the
    domain of the object and in every other."""
    sig = key.sign(domain=Domain.ENVELOPE, obj=OBJ)
    plain = PublicKey(key.public_key.ed25519)
    for domain in Domain:
        with pytest.raises(CryptoError) as err:
            plain.verify(domain=domain, obj=OBJ, signature={"alg": "ed25519", "key": plain.key_id,
                                                            "sig": sig["ed25519"]})
        assert err.value.code == Code.AUTH_BAD_SIGNATURE


def test_halves_do_not_recombine_across_hybrid_keys(key: HybridSigningKey) -> None:
    """A second hybrid key sharing the Ed25519 key but with another ML-DSA key (what a forger
    who broke ML-DSA would make): its signature's halves do not verify under the first key."""
    twin = HybridSigningKey(Ed25519PrivateKey.from_private_bytes(SEEDS[0]), MLDSA65PrivateKey.generate())
    assert twin.public_key.ed25519 == key.public_key.ed25519 and twin.key_id != key.key_id
    theirs = twin.sign(domain=Domain.ENVELOPE, obj=OBJ)
    ours = key.sign(domain=Domain.ENVELOPE, obj=OBJ)
    mixed = {**ours, "ed25519": theirs["ed25519"]}
    with pytest.raises(CryptoError, match="the Ed25519 half"):
        key.public_key.verify(domain=Domain.ENVELOPE, obj=OBJ, signature=mixed)
    with pytest.raises(CryptoError) as err:
        key.public_key.verify(domain=Domain.ENVELOPE, obj=OBJ, signature=theirs)
    assert err.value.code == Code.AUTH_WRONG_KEY


def test_a_plain_signature_is_not_a_hybrid_one(key: HybridSigningKey) -> None:
    plain = SigningKey.from_seed(SEEDS[0]).sign(domain=Domain.ENVELOPE, obj=OBJ)
    with pytest.raises(CryptoError) as err:
        key.public_key.verify(domain=Domain.ENVELOPE, obj=OBJ, signature=plain)
    assert err.value.code == Code.CRYPTO_INVALID


@pytest.mark.parametrize("mutate", [
    lambda s: {**s, "alg": "ed25519"},
    lambda s: {**s, "extra": "x"},
    lambda s: {k: v for k, v in s.items() if k != "ml-dsa-65"},
    lambda s: {**s, "ml-dsa-65": base64.b64encode(b"x" * 3308).decode()},
    lambda s: {**s, "ed25519": base64.b64encode(b"x" * 63).decode()},
    lambda s: {**s, "ed25519": s["ed25519"].rstrip("=")},
    lambda s: {**s, "key": ""},
    lambda s: [s],
])
def test_malformed_signatures_are_refused_typed(key: HybridSigningKey, mutate: Any) -> None:
    sig = key.sign(domain=Domain.AUTH, obj=OBJ)
    with pytest.raises(CryptoError) as err:
        key.public_key.verify(domain=Domain.AUTH, obj=OBJ, signature=mutate(sig))
    assert err.value.code in (Code.CRYPTO_INVALID, Code.CRYPTO_UNSUPPORTED_ALG)


@pytest.mark.parametrize("mutate", [
    lambda k: {**k, "alg": "ed25519"},
    lambda k: {**k, "ml-dsa-65": base64.b64encode(b"x" * 100).decode()},
    lambda k: {**k, "ed25519": base64.b64encode(b"x" * 31).decode()},
    lambda k: {"alg": k["alg"], "ed25519": k["ed25519"]},
    lambda k: "ed25519+ml-dsa-65",
])
def test_malformed_public_keys_are_refused_typed(key: HybridSigningKey, mutate: Any) -> None:
    with pytest.raises(CryptoError) as err:
        HybridPublicKey.from_json(mutate(key.public_key.to_json()))
    assert err.value.code in (Code.CRYPTO_INVALID, Code.CRYPTO_UNSUPPORTED_ALG)


def test_bad_seeds_are_a_typed_error() -> None:
    with pytest.raises(CryptoError):
        HybridSigningKey.from_seeds(b"short", SEEDS[1])
    with pytest.raises(CryptoError):
        HybridSigningKey.from_seeds(SEEDS[0], b"short")


@pytest.mark.parametrize("passphrase", [None, b"pw"])
def test_a_key_file_holds_either_kind_of_key(key: HybridSigningKey, passphrase: bytes | None) -> None:
    again = signing_key_from_pem(key.to_pem(passphrase), passphrase)
    assert isinstance(again, HybridSigningKey) and again.key_id == key.key_id
    plain = SigningKey.from_seed(SEEDS[0])
    assert signing_key_from_pem(plain.to_pem(passphrase), passphrase).key_id == plain.key_id
    assert member_key_from_json(key.public_key.to_json()) == key.public_key
    assert member_key_from_json(plain.public_key.to_json()) == plain.public_key


def test_unreadable_hybrid_key_files_are_a_typed_error(key: HybridSigningKey) -> None:
    pem = key.to_pem(b"pw")
    ed_block, ml_block = pem_blocks(pem)
    other = HybridSigningKey.generate().to_pem(b"pw")
    for data, passphrase in ((pem, b"wrong"), (ml_block + ed_block, b"pw"),
                             (pem + pem_blocks(other)[0], b"pw"), (ed_block + ed_block, b"pw")):
        with pytest.raises(CryptoError) as err:
            signing_key_from_pem(data, passphrase)
        assert err.value.code == Code.CRYPTO_BAD_KEY_FILE
    with pytest.raises(CryptoError) as err:  # one ML-DSA block alone: not a member key
        signing_key_from_pem(ml_block, b"pw")
    assert err.value.code == Code.CRYPTO_UNSUPPORTED_ALG


def test_the_ed25519_suite_is_the_ed25519_half_and_only_where_admitted(key: HybridSigningKey) -> None:
    """``ed25519_only``: the suite's signature is exactly the Ed25519 half of the hybrid one
    (same message, bound to the hybrid KEY_ID and the domain); a hybrid key admits it only as
    ``Ed25519Suite``, never by default, and it is no plain Ed25519 signature of the half."""
    canonical = canonical_bytes(OBJ)
    half = Ed25519SuiteSigner(key).sign_canonical(domain=Domain.ENVELOPE, canonical=canonical)
    full = key.sign_canonical(domain=Domain.ENVELOPE, canonical=canonical)
    assert set(half) == {"alg", "key", "sig"} and half["alg"] == "ed25519" and half["key"] == key.key_id
    assert half["sig"] == full["ed25519"]  # Ed25519 is deterministic: the very half
    suite = Ed25519Suite(key.public_key)
    for sig in (half, full):
        suite.verify_canonical(domain=Domain.ENVELOPE, canonical=canonical, signature=sig)
    with pytest.raises(CryptoError):  # not admitted by default
        key.public_key.verify_canonical(domain=Domain.ENVELOPE, canonical=canonical, signature=half)
    for bad, code in (({**half, "sig": flip(half["sig"])}, Code.AUTH_BAD_SIGNATURE),
                      ({**half, "key": "another"}, Code.AUTH_WRONG_KEY)):
        with pytest.raises(CryptoError) as err:
            suite.verify_canonical(domain=Domain.ENVELOPE, canonical=canonical, signature=bad)
        assert err.value.code == code
    with pytest.raises(CryptoError):  # another domain
        suite.verify_canonical(domain=Domain.AUTH,
                               canonical=canonical, signature=half)
    ed_half = PublicKey(key.public_key.ed25519)
    with pytest.raises(CryptoError):  # the half is no plain Ed25519 signature by that key
        ed_half.verify_canonical(domain=Domain.ENVELOPE, canonical=canonical,
                                 signature={**half, "key": ed_half.key_id})
    plain = SigningKey.from_seed(SEEDS[0])  # an Ed25519 member is itself in the suite
    sig = Ed25519SuiteSigner(plain).sign_canonical(domain=Domain.ENVELOPE, canonical=canonical)
    Ed25519Suite(plain.public_key).verify_canonical(domain=Domain.ENVELOPE, canonical=canonical,
                                                    signature=sig)
    assert sig == plain.sign_canonical(domain=Domain.ENVELOPE, canonical=canonical)
