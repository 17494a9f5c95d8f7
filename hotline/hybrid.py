"""Hybrid post-quantum signatures: Ed25519 and ML-DSA-65 (FIPS 204) together, both required
(docs/ARCHITECTURE.md "Hybrid signatures"). Pure: no files, no clock.

Theory of operation:
- A hybrid public key travels as ``{"alg": "ed25519+ml-dsa-65", "ed25519": B64, "ml-dsa-65":
  B64}``; its KEY_ID follows ``hotline.keys``'s one rule (unpadded base64url SHA-256 of the
  object's RFC 8785 bytes), so it commits to both halves.
- Both halves sign the same message ``"hotline/v1/hybrid" || 0x0A || KEY_ID || 0x0A ||
  DOMAIN || 0x0A || JCS(object)``; ML-DSA-65 also gets DOMAIN as its FIPS 204 context string.
  Binding the hybrid KEY_ID makes the pair inseparable: the Ed25519 half of a hybrid signature
  is never a valid plain Ed25519 signature in any domain (plain messages start with a DOMAIN,
  never with ``hotline/v1/hybrid``), nor a half of another hybrid key's signature, so a forger
  who breaks one algorithm cannot strip the other (the "non-separability" of the IETF LAMPS
  composite signatures, built from the same parts).
- A signature travels as ``{"alg": "ed25519+ml-dsa-65", "key": KEY_ID, "ed25519": B64,
  "ml-dsa-65": B64}``. Verification checks both halves and refuses if either fails, naming it.
- An agreement may let some templates be signed with the Ed25519 suite (``ed25519_only``:
  heartbeats and echoes, frequent and cheap, whose forgery after quantum computers exist would
  fake liveness, never content). A hybrid key then signs ``{"alg": "ed25519", "key": KEY_ID,
  "sig": B64}``: exactly the Ed25519 half of its hybrid signature, over the same hybrid message,
  so nothing new is built and the half is still bound to the hybrid KEY_ID and the domain
  (``Ed25519Suite``; verified by ``HybridPublicKey.verify_canonical(..., ed25519_only=True)``).
- ML-DSA signing in ``cryptography`` is hedged (randomized), so hybrid signatures are not
  byte-reproducible; keys are (``HybridSigningKey.from_seeds``), and so are the signed bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey, MLDSA65PublicKey

from hotline.canonical import canonical_bytes
from hotline.errorcodes import Code
from hotline.errors import CryptoError
from hotline.keys import (
    ALG_ED25519,
    Domain,
    PublicKey,
    Signer,
    SigningKey,
    b64decode,
    b64encode,
    b64url,
    load_private_pem,
    pem_blocks,
    private_pem,
)

ALG_HYBRID = "ed25519+ml-dsa-65"
ALG_MLDSA65 = "ml-dsa-65"
MLDSA65_PUBLIC_BYTES = 1952
MLDSA65_SIGNATURE_BYTES = 3309
HYBRID_PREFIX = b"hotline/v1/hybrid\n"

HybridJSON = dict[str, str]
"""A hybrid public key's or signature's JSON form (decoded by ``from_json``)."""


def hybrid_message(key_id: str, domain: Domain, canonical: bytes) -> bytes:
    """What both halves sign: the prefix, the hybrid KEY_ID, then the plain domain bytes."""
    return HYBRID_PREFIX + key_id.encode("ascii") + b"\n" + domain.value.encode("ascii") + b"\n" + canonical


@dataclass(frozen=True)
class HybridPublicKey:
    """An Ed25519 public key and an ML-DSA-65 public key that sign together."""

    ed25519: bytes
    mldsa: bytes

    def __post_init__(self) -> None:
        if len(self.ed25519) != 32:
            raise CryptoError("an Ed25519 public key is 32 bytes")
        if len(self.mldsa) != MLDSA65_PUBLIC_BYTES:
            raise CryptoError(f"an ML-DSA-65 public key is {MLDSA65_PUBLIC_BYTES} bytes")

    @classmethod
    def from_json(cls, obj: Any) -> HybridPublicKey:
        if not isinstance(obj, dict) or set(obj) != {"alg", ALG_ED25519, ALG_MLDSA65}:
            raise CryptoError(f'a hybrid public key is {{"alg", "{ALG_ED25519}", "{ALG_MLDSA65}"}}')
        if obj["alg"] != ALG_HYBRID:
            raise CryptoError(f"unsupported key algorithm {obj['alg']!r}", code=Code.CRYPTO_UNSUPPORTED_ALG)
        return cls(b64decode(obj[ALG_ED25519], what="Ed25519 public key"),
                   b64decode(obj[ALG_MLDSA65], what="ML-DSA-65 public key"))

    def to_json(self) -> HybridJSON:
        return {"alg": ALG_HYBRID, ALG_ED25519: b64encode(self.ed25519),
                ALG_MLDSA65: b64encode(self.mldsa)}

    def to_text(self) -> str:
        """The config/profile form ``ed25519+ml-dsa-65:BASE64:BASE64`` (Ed25519 half first;
        base64 has no colon), read by ``member_key_from_text``."""
        return f"{ALG_HYBRID}:{b64encode(self.ed25519)}:{b64encode(self.mldsa)}"

    @cached_property
    def key_id(self) -> str:
        return b64url(hashlib.sha256(canonical_bytes(self.to_json())).digest())

    @cached_property
    def _ed25519(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.ed25519)

    @cached_property
    def _mldsa(self) -> MLDSA65PublicKey:
        try:
            return MLDSA65PublicKey.from_public_bytes(self.mldsa)
        except ValueError as exc:
            raise CryptoError("the ML-DSA-65 public key is invalid") from exc

    def verify(self, *, domain: Domain, obj: Any, signature: Any) -> None:
        """Check a hybrid ``signature`` over ``obj`` in ``domain``: both halves must verify.

        Raises:
            CryptoError: ``auth.bad_signature`` naming the half that does not verify,
                ``auth.wrong_key`` when it names another key, ``crypto.invalid`` or
                ``crypto.unsupported_alg`` when the signature object is malformed.
        """
        self.verify_canonical(domain=domain, canonical=canonical_bytes(obj), signature=signature)

    def verify_canonical(self, *, domain: Domain, canonical: bytes, signature: Any,
                         ed25519_only: bool = False) -> None:
        """``verify`` for an object already encoded with RFC 8785 (same errors).
        ``ed25519_only``: the Ed25519 suite is allowed too (see the module doc)."""
        if ed25519_only and isinstance(signature, dict) and signature.get("alg") == ALG_ED25519:
            self._verify_ed25519_half(domain, canonical, signature)
            return
        sig = HybridSignature.from_json(signature)
        if sig.key != self.key_id:
            raise CryptoError(f"signature names key {sig.key}, expected {self.key_id}",
                              code=Code.AUTH_WRONG_KEY)
        message = hybrid_message(self.key_id, domain, canonical)
        failed = []
        try:
            self._ed25519.verify(sig.ed25519, message)
        except InvalidSignature:
            failed.append("Ed25519")
        try:
            self._mldsa.verify(sig.mldsa, message, domain.value.encode("ascii"))
        except InvalidSignature:
            failed.append("ML-DSA-65")
        if failed:
            raise CryptoError(f"{domain.value} hybrid signature: the {' and the '.join(failed)} "
                              f"half does not verify (both are required)",
                              code=Code.AUTH_BAD_SIGNATURE)


    def _verify_ed25519_half(self, domain: Domain, canonical: bytes, signature: dict[str, Any]) -> None:
        if set(signature) != {"alg", "key", "sig"} or not isinstance(signature["key"], str):
            raise CryptoError('an Ed25519-suite signature is {"alg", "key", "sig"}')
        if signature["key"] != self.key_id:
            raise CryptoError(f"signature names key {signature['key']}, expected {self.key_id}",
                              code=Code.AUTH_WRONG_KEY)
        half = b64decode(signature["sig"], what="Ed25519 signature")
        try:
            self._ed25519.verify(half, hybrid_message(self.key_id, domain, canonical))
        except InvalidSignature as exc:
            raise CryptoError(f"{domain.value} Ed25519-suite signature does not verify",
                              code=Code.AUTH_BAD_SIGNATURE) from exc


@dataclass(frozen=True)
class Ed25519Suite:
    """A member's enrolled key as a verifier of a template the agreement lets be signed with the
    Ed25519 suite: a hybrid key accepts its Ed25519 half alone, or both; an Ed25519 key is
    itself. ``hotline.keys.Verifier``."""

    key: MemberKey

    def verify_canonical(self, *, domain: Domain, canonical: bytes, signature: Any) -> None:
        if isinstance(self.key, HybridPublicKey):
            self.key.verify_canonical(domain=domain, canonical=canonical, signature=signature,
                                      ed25519_only=True)
        else:
            self.key.verify_canonical(domain=domain, canonical=canonical, signature=signature)


@dataclass(frozen=True)
class HybridSignature:
    key: str
    ed25519: bytes
    mldsa: bytes

    @classmethod
    def from_json(cls, obj: Any) -> HybridSignature:
        if not isinstance(obj, dict) or set(obj) != {"alg", "key", ALG_ED25519, ALG_MLDSA65}:
            raise CryptoError(f'a hybrid signature is {{"alg", "key", "{ALG_ED25519}", '
                              f'"{ALG_MLDSA65}"}}')
        if obj["alg"] != ALG_HYBRID:
            raise CryptoError(f"unsupported signature algorithm {obj['alg']!r}",
                              code=Code.CRYPTO_UNSUPPORTED_ALG)
        if not isinstance(obj["key"], str) or not obj["key"]:
            raise CryptoError("signature key id must be a non-empty string")
        ed = b64decode(obj[ALG_ED25519], what="Ed25519 signature")
        ml = b64decode(obj[ALG_MLDSA65], what="ML-DSA-65 signature")
        if len(ed) != 64:
            raise CryptoError("an Ed25519 signature is 64 bytes")
        if len(ml) != MLDSA65_SIGNATURE_BYTES:
            raise CryptoError(f"an ML-DSA-65 signature is {MLDSA65_SIGNATURE_BYTES} bytes")
        return cls(obj["key"], ed, ml)

    def to_json(self) -> HybridJSON:
        return {"alg": ALG_HYBRID, "key": self.key, ALG_ED25519: b64encode(self.ed25519),
                ALG_MLDSA65: b64encode(self.mldsa)}


class HybridSigningKey:
    """An Ed25519 and an ML-DSA-65 private key that always sign together."""

    def __init__(self, ed25519: Ed25519PrivateKey, mldsa: MLDSA65PrivateKey) -> None:
        self._ed25519 = ed25519
        self._mldsa = mldsa
        ed_raw = ed25519.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
        self.public_key = HybridPublicKey(ed_raw, mldsa.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> HybridSigningKey:
        return cls(Ed25519PrivateKey.generate(), MLDSA65PrivateKey.generate())

    @classmethod
    def from_seeds(cls, ed25519_seed: bytes, mldsa_seed: bytes) -> HybridSigningKey:
        """Deterministic key for test vectors only (32-byte seeds, FIPS 204 ``xi`` for ML-DSA)."""
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(ed25519_seed),
                       MLDSA65PrivateKey.from_seed_bytes(mldsa_seed))
        except ValueError as exc:
            raise CryptoError("an Ed25519 or ML-DSA-65 seed is 32 bytes") from exc

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    def sign(self, *, domain: Domain, obj: Any) -> HybridJSON:
        """Hybrid signature object over ``obj`` (which must not contain its own signature)."""
        return self.sign_canonical(domain=domain, canonical=canonical_bytes(obj))

    def sign_canonical(self, *, domain: Domain, canonical: bytes) -> HybridJSON:
        """``sign`` for an object already encoded with RFC 8785."""
        message = hybrid_message(self.key_id, domain, canonical)
        return HybridSignature(self.key_id, self._ed25519.sign(message),
                               self._mldsa.sign(message, domain.value.encode("ascii"))).to_json()

    def sign_ed25519_suite(self, *, domain: Domain, canonical: bytes) -> dict[str, str]:
        """The Ed25519 half alone (see the module doc): for a template the agreement lets be
        signed with the Ed25519 suite."""
        message = hybrid_message(self.key_id, domain, canonical)
        return {"alg": ALG_ED25519, "key": self.key_id, "sig": b64encode(self._ed25519.sign(message))}

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """Both halves as PKCS#8 PEM blocks (Ed25519 first), encrypted under ``passphrase``
        when given: the member's one key file."""
        return private_pem([self._ed25519, self._mldsa], passphrase)


MemberKey = PublicKey | HybridPublicKey
"""A member's enrolled public key, or a party authority's: Ed25519, or Ed25519 + ML-DSA-65."""
MemberSigningKey = SigningKey | HybridSigningKey
"""A member's private key, as its key file holds it."""


@dataclass(frozen=True)
class Ed25519SuiteSigner:
    """A member's key signing a template the agreement lets be signed with the Ed25519 suite:
    a hybrid key signs with its Ed25519 half alone; an Ed25519 key as always.
    ``hotline.keys.Signer``."""

    key: Signer

    def sign_canonical(self, *, domain: Domain, canonical: bytes) -> dict[str, str]:
        if isinstance(self.key, HybridSigningKey):
            return self.key.sign_ed25519_suite(domain=domain, canonical=canonical)
        return dict(self.key.sign_canonical(domain=domain, canonical=canonical))


def member_key_from_json(obj: Any) -> MemberKey:
    """An enrolled key's JSON form, by its ``alg`` (CryptoError as each form's ``from_json``)."""
    if isinstance(obj, dict) and obj.get("alg") == ALG_HYBRID:
        return HybridPublicKey.from_json(obj)
    return PublicKey.from_json(obj)


KEY_TEXT_FORMS = f'"{ALG_ED25519}:BASE64" or "{ALG_HYBRID}:BASE64:BASE64"'
"""How a pinned key is written in a config file, a profile or a descriptor."""
MAX_KEY_TEXT = 2700
"""The longest text form: a hybrid key's is 2,667 characters (base64 of 32 and 1,952 bytes)."""


def member_key_from_text(text: Any) -> MemberKey:
    """A key's text form (``PublicKey.to_text`` or ``HybridPublicKey.to_text``), by its
    algorithm prefix.

    Raises:
        CryptoError: neither form, or a key of the wrong size or bad base64.
    """
    if not isinstance(text, str) or ":" not in text:
        raise CryptoError(f"a key is written {KEY_TEXT_FORMS}")
    alg, _, rest = text.partition(":")
    if alg != ALG_HYBRID:
        return PublicKey.from_text(text)
    ed, sep, ml = rest.partition(":")
    if not sep:
        raise CryptoError(f"a hybrid key is written {ALG_HYBRID}:BASE64:BASE64 (Ed25519, then "
                          "ML-DSA-65)")
    return HybridPublicKey.from_json({"alg": ALG_HYBRID, ALG_ED25519: ed, ALG_MLDSA65: ml})


def signing_key_from_pem(data: bytes, passphrase: bytes | None = None) -> MemberSigningKey:
    """A key file: one Ed25519 PKCS#8 block, or an Ed25519 block then an ML-DSA-65 block.

    Raises:
        CryptoError: ``crypto.bad_key_file`` (unreadable, wrong passphrase, another shape),
            ``crypto.unsupported_alg`` (one block of another algorithm).
    """
    if len(pem_blocks(data)) <= 1:
        return SigningKey.from_pem(data, passphrase)
    keys = load_private_pem(data, passphrase, what="private key")
    if (len(keys) != 2 or not isinstance(keys[0], Ed25519PrivateKey)
            or not isinstance(keys[1], MLDSA65PrivateKey)):
        raise CryptoError("a hybrid key file holds an Ed25519 key then an ML-DSA-65 key",
                          code=Code.CRYPTO_BAD_KEY_FILE)
    return HybridSigningKey(keys[0], keys[1])
