"""hotline.keys: key ids, domain-separated Ed25519 signatures, PEM files, safety numbers.

docs/ARCHITECTURE.md "Keys and signatures".
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import CryptoError, HotlineError
from hotline.keys import (
    Domain,
    PublicKey,
    Signature,
    SigningKey,
    b64decode,
    b64encode,
    b64url,
    safety_number,
    same_safety_number,
    signed_bytes,
)

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=100)

SEED = bytes(range(32))
# Vector for SEED: the public key is the well-known one for seed 00..1f; the KEY_ID is
# b64url(SHA-256(JCS({"alg": "ed25519", "pub": ...}))), recomputed independently below.
SEED_PUB_HEX = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
SEED_PUB_B64 = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
SEED_KEY_ID = "Ju8vrnAKiUbN-LJsK7w6o_JFNnA-0Xc8eqLWdjjsAUM"
SEED_SAFETY_NUMBER = "16428 86397 55450 34368 69487 82800 75953 49972 30699 53509 57359 16621"

OBJ = {"type": "test", "n": 7, "items": ["a", "\u00e9", None, True], "nested": {"b": 1, "a": 2}}


def seeded(n: int) -> SigningKey:
    return SigningKey.from_seed(bytes([n]) * 32)


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.from_seed(SEED)


def code_of(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(CryptoError) as info:
        fn(*args, **kwargs)
    return info.value.code


# -- key ids ----------------------------------------------------------------------------------

def test_key_id_vector(key: SigningKey) -> None:
    assert key.public_key.raw.hex() == SEED_PUB_HEX
    assert key.public_key.to_json() == {"alg": "ed25519", "pub": SEED_PUB_B64}
    assert key.key_id == SEED_KEY_ID
    assert key.public_key.key_id == SEED_KEY_ID


def test_key_id_recomputed_independently(key: SigningKey) -> None:
    jcs = b'{"alg":"ed25519","pub":"' + SEED_PUB_B64.encode() + b'"}'
    digest = hashlib.sha256(jcs).digest()
    assert key.key_id == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key.key_id)


def test_key_ids_differ_between_keys() -> None:
    ids = {seeded(n).key_id for n in range(20)}
    assert len(ids) == 20


def test_from_seed_is_deterministic() -> None:
    assert SigningKey.from_seed(SEED).key_id == SigningKey.from_seed(SEED).key_id
    assert SigningKey.generate().key_id != SigningKey.generate().key_id


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33)])
def test_from_seed_wrong_length(seed: bytes) -> None:
    with pytest.raises(CryptoError):
        SigningKey.from_seed(seed)


# -- sign / verify ----------------------------------------------------------------------------

@pytest.mark.parametrize("domain", list(Domain))
def test_sign_verify_round_trip(key: SigningKey, domain: Domain) -> None:
    sig = key.sign(domain=domain, obj=OBJ)
    assert set(sig) == {"alg", "key", "sig"}
    assert sig["alg"] == "ed25519" and sig["key"] == key.key_id
    assert key.public_key.verify(domain=domain, obj=OBJ, signature=sig) is None


def test_signed_bytes_format() -> None:
    assert signed_bytes(Domain.AUTH, {"b": 1, "a": "x"}) == b'hotline/v1/auth\n{"a":"x","b":1}'
    assert signed_bytes(Domain.ENVELOPE, []) == b"hotline/v1/envelope\n[]"


def test_domain_strings_are_distinct_and_versioned() -> None:
    values = [d.value for d in Domain]
    assert len(set(values)) == len(values)
    assert all(re.fullmatch(r"hotline/v1/[a-z]+(-[a-z]+)*", v) for v in values)


def test_signature_checks_with_plain_cryptography(key: SigningKey) -> None:
    # Independent of PublicKey.verify: Ed25519 over DOMAIN || 0x0A || JCS(obj).
    sig = key.sign(domain=Domain.ENROLLMENT, obj={"z": 1, "a": [True]})
    raw = base64.b64decode(sig["sig"])
    Ed25519PublicKey.from_public_bytes(key.public_key.raw).verify(
        raw, b'hotline/v1/enrollment\n{"a":[true],"z":1}')


def test_signatures_are_deterministic(key: SigningKey) -> None:
    assert key.sign(domain=Domain.AUTH, obj=OBJ) == key.sign(domain=Domain.AUTH, obj=OBJ)


def test_key_order_does_not_matter(key: SigningKey) -> None:
    sig = key.sign(domain=Domain.AUTH, obj={"a": 1, "b": 2})
    key.public_key.verify(domain=Domain.AUTH, obj={"b": 2, "a": 1}, signature=sig)


@pytest.mark.parametrize(("signed_in", "checked_in"),
                         [(a, b) for a, b in itertools.permutations(Domain, 2)])
def test_domain_separation(key: SigningKey, signed_in: Domain, checked_in: Domain) -> None:
    sig = key.sign(domain=signed_in, obj=OBJ)
    assert code_of(key.public_key.verify, domain=checked_in, obj=OBJ,
                   signature=sig) == "auth.bad_signature"


def test_envelope_signature_fails_as_auth(key: SigningKey) -> None:
    sig = key.sign(domain=Domain.ENVELOPE, obj=OBJ)
    with pytest.raises(CryptoError) as info:
        key.public_key.verify(domain=Domain.AUTH, obj=OBJ, signature=sig)
    assert info.value.code == "auth.bad_signature"
    assert "hotline/v1/auth" in info.value.message


@pytest.mark.parametrize("tamper", [
    lambda o: {**o, "n": 8},
    lambda o: {**o, "extra": None},
    lambda o: {k: v for k, v in o.items() if k != "n"},
    lambda o: {**o, "items": ["a", "e\u0301", None, True]},  # no Unicode normalization
    lambda o: {**o, "items": ["a", "\u00e9", None, 1]},  # True is not 1
    lambda o: {**o, "nested": {"b": 1, "a": 2, "c": 3}},
    lambda o: [o],
], ids=["value", "added", "removed", "normalized", "bool-vs-int", "nested", "wrapped"])
def test_tampered_object_fails(key: SigningKey, tamper: Any) -> None:
    sig = key.sign(domain=Domain.ENVELOPE, obj=OBJ)
    assert code_of(key.public_key.verify, domain=Domain.ENVELOPE, obj=tamper(OBJ),
                   signature=sig) == "auth.bad_signature"


def test_tampered_signature_bytes_fail(key: SigningKey) -> None:
    sig = key.sign(domain=Domain.ENVELOPE, obj=OBJ)
    raw = bytearray(base64.b64decode(sig["sig"]))
    raw[0] ^= 1
    bad = {**sig, "sig": b64encode(bytes(raw))}
    assert code_of(key.public_key.verify, domain=Domain.ENVELOPE, obj=OBJ,
                   signature=bad) == "auth.bad_signature"


def test_signature_naming_another_key_fails(key: SigningKey) -> None:
    other = seeded(7)
    sig = other.sign(domain=Domain.ENVELOPE, obj=OBJ)
    assert code_of(key.public_key.verify, domain=Domain.ENVELOPE, obj=OBJ,
                   signature=sig) == "auth.wrong_key"


def test_relabelled_signature_fails(key: SigningKey) -> None:
    # Another key's signature, relabelled with our key id: names us, but does not verify.
    sig = seeded(7).sign(domain=Domain.ENVELOPE, obj=OBJ)
    sig["key"] = key.key_id
    assert code_of(key.public_key.verify, domain=Domain.ENVELOPE, obj=OBJ,
                   signature=sig) == "auth.bad_signature"


# -- malformed signature objects --------------------------------------------------------------

GOOD_SIG_B64 = b64encode(bytes(64))


@pytest.mark.parametrize(("sig", "code"), [
    (None, "crypto.invalid"),
    ("sig", "crypto.invalid"),
    ([], "crypto.invalid"),
    ({}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": GOOD_SIG_B64, "x": 1}, "crypto.invalid"),
    ({"alg": "ed448", "key": SEED_KEY_ID, "sig": GOOD_SIG_B64}, "crypto.unsupported_alg"),
    ({"alg": "ED25519", "key": SEED_KEY_ID, "sig": GOOD_SIG_B64}, "crypto.unsupported_alg"),
    ({"alg": ["ed25519"], "key": SEED_KEY_ID, "sig": GOOD_SIG_B64}, "crypto.unsupported_alg"),
    ({"alg": "ed25519", "key": "", "sig": GOOD_SIG_B64}, "crypto.invalid"),
    ({"alg": "ed25519", "key": 5, "sig": GOOD_SIG_B64}, "crypto.invalid"),
    ({"alg": "ed25519", "key": None, "sig": GOOD_SIG_B64}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": None}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": "***"}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": GOOD_SIG_B64.rstrip("=")}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": GOOD_SIG_B64 + "\n"}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": " " + GOOD_SIG_B64}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": "\u00e9" + GOOD_SIG_B64[1:]}, "crypto.invalid"),
    # Non-canonical: the padding bits of the last character are not zero.
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": GOOD_SIG_B64[:-3] + "B=="}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": b64encode(bytes(63))}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": b64encode(bytes(65))}, "crypto.invalid"),
    ({"alg": "ed25519", "key": SEED_KEY_ID, "sig": b64url(bytes(64))}, "crypto.invalid"),
])
def test_malformed_signature_objects(key: SigningKey, sig: Any, code: str) -> None:
    assert code_of(Signature.from_json, sig) == code
    assert code_of(key.public_key.verify, domain=Domain.AUTH, obj=OBJ, signature=sig) == code


def test_signature_json_round_trip(key: SigningKey) -> None:
    sig = key.sign(domain=Domain.AUTH, obj=OBJ)
    parsed = Signature.from_json(sig)
    assert parsed.key == key.key_id and len(parsed.sig) == 64
    assert parsed.to_json() == sig


sig_like = st.fixed_dictionaries(
    {"alg": st.sampled_from(["ed25519", "x"]) | st.integers(),
     "key": st.sampled_from([SEED_KEY_ID, ""]) | st.text(max_size=5) | st.none(),
     "sig": st.sampled_from([GOOD_SIG_B64]) | st.text(max_size=90) | st.binary().map(b64encode)},
    optional={"extra": st.none()},
)
any_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c,
                                                                            max_size=3),
                        max_leaves=8)


@FAST
@given(sig_like | any_json)
def test_verify_raises_only_crypto_error(sig: Any) -> None:
    key = SigningKey.from_seed(SEED)
    with pytest.raises(CryptoError):
        key.public_key.verify(domain=Domain.AUTH, obj=OBJ, signature=sig)


# -- public keys ------------------------------------------------------------------------------

def test_public_key_json_round_trip(key: SigningKey) -> None:
    assert PublicKey.from_json(key.public_key.to_json()) == key.public_key


@pytest.mark.parametrize(("obj", "code"), [
    (None, "crypto.invalid"),
    (SEED_PUB_B64, "crypto.invalid"),
    ({"pub": SEED_PUB_B64}, "crypto.invalid"),
    ({"alg": "ed25519"}, "crypto.invalid"),
    ({"alg": "ed25519", "pub": SEED_PUB_B64, "kid": SEED_KEY_ID}, "crypto.invalid"),
    ({"alg": "x25519", "pub": SEED_PUB_B64}, "crypto.unsupported_alg"),
    ({"alg": None, "pub": SEED_PUB_B64}, "crypto.unsupported_alg"),
    ({"alg": "ed25519", "pub": None}, "crypto.invalid"),
    ({"alg": "ed25519", "pub": list(bytes.fromhex(SEED_PUB_HEX))}, "crypto.invalid"),
    ({"alg": "ed25519", "pub": SEED_PUB_HEX}, "crypto.invalid"),  # hex is not base64 of 32 bytes
    ({"alg": "ed25519", "pub": SEED_PUB_B64.rstrip("=")}, "crypto.invalid"),
    ({"alg": "ed25519", "pub": SEED_PUB_B64 + "\n"}, "crypto.invalid"),
    ({"alg": "ed25519", "pub": SEED_PUB_B64.replace("/", "_")}, "crypto.invalid"),  # base64url
    ({"alg": "ed25519", "pub": SEED_PUB_B64[:-2] + "h="}, "crypto.invalid"),  # non-canonical
    ({"alg": "ed25519", "pub": b64encode(bytes(31))}, "crypto.invalid"),
    ({"alg": "ed25519", "pub": b64encode(bytes(33))}, "crypto.invalid"),
    ({"alg": "ed25519", "pub": ""}, "crypto.invalid"),
])
def test_public_key_from_json_is_strict(obj: Any, code: str) -> None:
    assert code_of(PublicKey.from_json, obj) == code


@FAST
@given(any_json)
def test_public_key_from_json_raises_only_crypto_error(obj: Any) -> None:
    try:
        PublicKey.from_json(obj)
    except CryptoError:
        pass


@pytest.mark.parametrize("raw", [b"", bytes(31), bytes(33)])
def test_public_key_length(raw: bytes) -> None:
    with pytest.raises(CryptoError):
        PublicKey(raw)


@pytest.mark.parametrize("raw", [bytes(32), b"\xff" * 32, bytes([1]) + bytes(31)])
def test_degenerate_public_keys_fail_closed(key: SigningKey, raw: bytes) -> None:
    # Small-order or non-canonical points must not verify anything, nor raise a stray error.
    pub = PublicKey(raw)
    sig = {**key.sign(domain=Domain.AUTH, obj=OBJ), "key": pub.key_id}
    assert code_of(pub.verify, domain=Domain.AUTH, obj=OBJ, signature=sig) == "auth.bad_signature"
    zero = {"alg": "ed25519", "key": pub.key_id, "sig": b64encode(bytes(64))}
    assert code_of(pub.verify, domain=Domain.AUTH, obj=OBJ, signature=zero) == "auth.bad_signature"


def test_b64_helpers() -> None:
    assert b64decode(b64encode(b"\x00\xff"), what="x") == b"\x00\xff"
    assert b64url(b"\xfb\xff") == "-_8"
    with pytest.raises(CryptoError) as info:
        b64decode(b"AAAA", what="thing")
    assert "thing" in info.value.message


# -- PEM files --------------------------------------------------------------------------------

def test_pem_round_trip_without_passphrase(key: SigningKey) -> None:
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    loaded = SigningKey.from_pem(pem)
    assert loaded.key_id == key.key_id
    assert loaded.sign(domain=Domain.AUTH, obj=OBJ) == key.sign(domain=Domain.AUTH, obj=OBJ)


def test_pem_round_trip_with_passphrase(key: SigningKey) -> None:
    pem = key.to_pem(b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert key.to_pem() not in pem
    loaded = SigningKey.from_pem(pem, b"correct horse")
    assert loaded.key_id == key.key_id
    assert loaded.sign(domain=Domain.AUTH, obj=OBJ) == key.sign(domain=Domain.AUTH, obj=OBJ)


@pytest.mark.parametrize(("passphrase_written", "passphrase_given"), [
    (b"correct horse", b"wrong horse"),
    (b"correct horse", None),
    (b"correct horse", b""),
    (None, b"unexpected"),
], ids=["wrong", "missing", "empty", "unexpected"])
def test_pem_passphrase_mismatch(key: SigningKey, passphrase_written: bytes | None,
                                 passphrase_given: bytes | None) -> None:
    pem = key.to_pem(passphrase_written)
    assert code_of(SigningKey.from_pem, pem, passphrase_given) == "crypto.bad_key_file"


@pytest.mark.parametrize("data", [
    b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
])
def test_pem_garbage(data: bytes) -> None:
    assert code_of(SigningKey.from_pem, data) == "crypto.bad_key_file"


def test_pem_truncated(key: SigningKey) -> None:
    pem = key.to_pem()
    assert code_of(SigningKey.from_pem, pem[: len(pem) // 2]) == "crypto.bad_key_file"


@pytest.mark.parametrize("private", [
    ec.derive_private_key(12345, ec.SECP256R1()),
    ed448.Ed448PrivateKey.from_private_bytes(bytes(57)),
], ids=["p256", "ed448"])
def test_pem_of_another_algorithm(private: Any) -> None:
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    assert code_of(SigningKey.from_pem, pem) == "crypto.unsupported_alg"


# -- safety numbers ---------------------------------------------------------------------------

SAFETY_FORMAT = re.compile(r"\d{5}( \d{5}){11}")


def test_safety_number_vector() -> None:
    assert safety_number(SEED_KEY_ID) == SEED_SAFETY_NUMBER


def test_safety_number_recomputed_independently() -> None:
    ids = [seeded(1).key_id, seeded(2).key_id]
    joined = "\n".join(sorted(ids)).encode()
    digest = hashlib.sha512(b"hotline/v1/safety-number\n" + joined).digest()
    groups = [int.from_bytes(digest[5 * i:5 * i + 5], "big") % 100000 for i in range(12)]
    assert safety_number(*ids) == " ".join(f"{g:05d}" for g in groups)


def test_safety_number_is_order_independent() -> None:
    ids = [seeded(n).key_id for n in (1, 2, 3)]
    numbers = {safety_number(*p) for p in itertools.permutations(ids)}
    assert len(numbers) == 1
    assert SAFETY_FORMAT.fullmatch(numbers.pop())


def test_safety_number_differs_for_different_keys() -> None:
    a, b, c = (seeded(n).key_id for n in (1, 2, 3))
    numbers = [safety_number(a), safety_number(b), safety_number(a, b), safety_number(a, c),
               safety_number(b, c), safety_number(a, b, c)]
    assert len(set(numbers)) == len(numbers)


def test_safety_number_needs_a_key() -> None:
    with pytest.raises(CryptoError):
        safety_number()


@FAST
@given(st.lists(st.integers(0, 255), min_size=1, max_size=4, unique=True), st.randoms())
def test_safety_number_properties(seeds: list[int], rnd: Any) -> None:
    ids = [seeded(n).key_id for n in seeds]
    number = safety_number(*ids)
    assert SAFETY_FORMAT.fullmatch(number)
    shuffled = list(ids)
    rnd.shuffle(shuffled)
    assert safety_number(*shuffled) == number


def test_errors_are_hotline_errors() -> None:
    assert issubclass(CryptoError, HotlineError)


# -- text form (config files, profiles) -------------------------------------------------------

def test_public_key_text_round_trip(key: SigningKey) -> None:
    text = key.public_key.to_text()
    assert text == "ed25519:" + SEED_PUB_B64
    assert PublicKey.from_text(text) == key.public_key


@pytest.mark.parametrize(("text", "code"), [
    (None, "crypto.invalid"),
    ("", "crypto.invalid"),
    (SEED_PUB_B64, "crypto.invalid"),
    ("ed25519:", "crypto.invalid"),
    ("ed25519:" + SEED_PUB_B64.rstrip("="), "crypto.invalid"),
    ("ed25519: " + SEED_PUB_B64, "crypto.invalid"),
    ("ed25519:" + b64encode(bytes(31)), "crypto.invalid"),
    ("ED25519:" + SEED_PUB_B64, "crypto.unsupported_alg"),
    ("x25519:" + SEED_PUB_B64, "crypto.unsupported_alg"),
])
def test_public_key_from_text_is_strict(text: Any, code: str) -> None:
    assert code_of(PublicKey.from_text, text) == code


def test_a_typed_safety_number_is_compared_by_its_digits_all_of_them() -> None:
    number = safety_number(SigningKey.from_seed(bytes(32)).key_id)
    assert same_safety_number(number, number)
    assert same_safety_number(number.replace(" ", "-"), number)
    assert same_safety_number(number.replace(" ", ""), number)
    assert not same_safety_number(number[:-1] + ("1" if number[-1] != "1" else "2"), number)
    assert not same_safety_number(number[:-6], number)  # a prefix is no match
    assert not same_safety_number("", "")
