"""Keys, fingerprints and domain-separated signatures (docs/ARCHITECTURE.md "Keys and signatures"). Pure: no
files, no clock.

Theory of operation:
- A public key travels as ``{"alg": "ed25519", "pub": BASE64}``. Its KEY_ID is the unpadded
  base64url SHA-256 of that object's RFC 8785 bytes, so a later hybrid key (Ed25519 + ML-DSA) gets
  its own id from the same rule without a format break.
- Every signature is over ``DOMAIN || 0x0A || JCS(object)``, with one DOMAIN per kind of object, so
  a signature made for one purpose can never be replayed as another.
- A signature travels as ``{"alg": "ed25519", "key": KEY_ID, "sig": BASE64}``.
- The safety number is a digest of one or more KEY_IDs shown as groups of five digits, for people
  to compare out of band (as Signal's safety numbers are).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from hotline.canonical import canonical_bytes
from hotline.errorcodes import Code
from hotline.errors import CryptoError

ALG_ED25519 = "ed25519"

SignatureJSON = dict[str, str]
"""A signature's JSON form, ``{"alg", "key", "sig"}`` (decoded by ``Signature.from_json``)."""
PublicKeyJSON = dict[str, str]
"""A public key's JSON form, ``{"alg", "pub"}`` (decoded by ``PublicKey.from_json``)."""


class Domain(StrEnum):
    """Signature domains: one per kind of signed object."""

    ENVELOPE = "hotline/v1/envelope"
    AUTH = "hotline/v1/auth"
    ENROLLMENT = "hotline/v1/enrollment"
    REVOCATION = "hotline/v1/revocation"
    AGREEMENT = "hotline/v1/agreement"
    HANDOVER = "hotline/v1/handover"
    HTTP = "hotline/v1/http"
    DESCRIPTOR = "hotline/v1/descriptor"
    EPOCH_KEY = "hotline/v1/epoch-key"


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: Any, *, what: str) -> bytes:
    """Strict standard base64 (padding required, no stray characters)."""
    if not isinstance(text, str):
        raise CryptoError(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CryptoError(f"{what} is not valid base64") from exc
    if b64encode(data) != text:
        raise CryptoError(f"{what} is not canonical base64")
    return data


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed_bytes(domain: Domain, obj: Any) -> bytes:
    return domain_bytes(domain, canonical_bytes(obj))


def domain_bytes(domain: Domain, canonical: bytes) -> bytes:
    """What is signed: ``DOMAIN || 0x0A || JCS(object)``."""
    return domain.value.encode("ascii") + b"\n" + canonical


class Verifier(Protocol):
    """A public key that checks signatures in a domain: an Ed25519 ``PublicKey`` or a hybrid
    ``hotline.hybrid.HybridPublicKey`` (same errors)."""

    @property
    def key_id(self) -> str: ...

    def to_json(self) -> dict[str, str]: ...

    def verify(self, *, domain: Domain, obj: Any, signature: Any) -> None: ...

    def verify_canonical(self, *, domain: Domain, canonical: bytes, signature: Any) -> None: ...


class CanonicalVerifier(Protocol):
    """What checks one signature over RFC 8785 bytes: a ``Verifier``, or an enrolled key as a
    template's signature suite admits it (``hotline.hybrid.Ed25519Suite``)."""

    def verify_canonical(self, *, domain: Domain, canonical: bytes, signature: Any) -> None: ...


class CanonicalSigner(Protocol):
    """What signs RFC 8785 bytes: a ``Signer``, or one in a template's signature suite
    (``hotline.hybrid.Ed25519SuiteSigner``)."""

    def sign_canonical(self, *, domain: Domain, canonical: bytes) -> dict[str, str]: ...


class Signer(Protocol):
    """A private key that signs in a domain: a ``SigningKey`` or a ``HybridSigningKey``."""

    @property
    def key_id(self) -> str: ...

    @property
    def public_key(self) -> Verifier: ...

    def sign(self, *, domain: Domain, obj: Any) -> dict[str, str]: ...

    def sign_canonical(self, *, domain: Domain, canonical: bytes) -> dict[str, str]: ...

    def to_pem(self, passphrase: bytes | None = None) -> bytes: ...


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key with its KEY_ID."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise CryptoError("an Ed25519 public key is 32 bytes")

    @classmethod
    def from_json(cls, obj: Any) -> PublicKey:
        if not isinstance(obj, dict) or set(obj) != {"alg", "pub"}:
            raise CryptoError('a public key is {"alg", "pub"}')
        if obj["alg"] != ALG_ED25519:
            raise CryptoError(f"unsupported key algorithm {obj['alg']!r}", code=Code.CRYPTO_UNSUPPORTED_ALG)
        return cls(b64decode(obj["pub"], what="public key"))

    def to_json(self) -> PublicKeyJSON:
        return {"alg": ALG_ED25519, "pub": b64encode(self.raw)}

    @classmethod
    def from_text(cls, text: Any) -> PublicKey:
        """Parse the config/profile form ``ed25519:BASE64``."""
        if not isinstance(text, str) or ":" not in text:
            raise CryptoError("a public key is written ed25519:BASE64")
        alg, _, pub = text.partition(":")
        return cls.from_json({"alg": alg, "pub": pub})

    def to_text(self) -> str:
        return f"{ALG_ED25519}:{b64encode(self.raw)}"

    @cached_property
    def _ed25519(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.raw)

    @cached_property
    def key_id(self) -> str:
        return b64url(hashlib.sha256(canonical_bytes(self.to_json())).digest())

    def verify(self, *, domain: Domain, obj: Any, signature: Any) -> None:
        """Check ``signature`` over ``obj`` in ``domain``.

        Raises:
            CryptoError: ``auth.bad_signature`` when it does not verify, ``crypto.invalid`` when
                the signature object is malformed or names another key.
        """
        self.verify_canonical(domain=domain, canonical=canonical_bytes(obj), signature=signature)

    def verify_canonical(self, *, domain: Domain, canonical: bytes, signature: Any) -> None:
        """``verify`` for an object already encoded with RFC 8785 (same errors)."""
        sig = Signature.from_json(signature)
        if sig.key != self.key_id:
            raise CryptoError(f"signature names key {sig.key}, expected {self.key_id}",
                              code=Code.AUTH_WRONG_KEY)
        try:
            self._ed25519.verify(sig.sig, domain_bytes(domain, canonical))
        except InvalidSignature as exc:
            raise CryptoError(f"{domain.value} signature does not verify",
                              code=Code.AUTH_BAD_SIGNATURE) from exc


@dataclass(frozen=True)
class Signature:
    alg: str
    key: str
    sig: bytes

    @classmethod
    def from_json(cls, obj: Any) -> Signature:
        if not isinstance(obj, dict) or set(obj) != {"alg", "key", "sig"}:
            raise CryptoError('a signature is {"alg", "key", "sig"}')
        if obj["alg"] != ALG_ED25519:
            raise CryptoError(f"unsupported signature algorithm {obj['alg']!r}",
                              code=Code.CRYPTO_UNSUPPORTED_ALG)
        if not isinstance(obj["key"], str) or not obj["key"]:
            raise CryptoError("signature key id must be a non-empty string")
        raw = b64decode(obj["sig"], what="signature")
        if len(raw) != 64:
            raise CryptoError("an Ed25519 signature is 64 bytes")
        return cls(obj["alg"], obj["key"], raw)

    def to_json(self) -> SignatureJSON:
        return {"alg": self.alg, "key": self.key, "sig": b64encode(self.sig)}


class SigningKey:
    """An Ed25519 private key. Serialize with ``to_pem``; generate with ``generate``."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                                serialization.PublicFormat.Raw)
        self.public_key = PublicKey(raw)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Deterministic key for test vectors only."""
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(seed))
        except ValueError as exc:
            raise CryptoError("an Ed25519 seed is 32 bytes") from exc

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(data, password=passphrase or None)
        except (ValueError, TypeError) as exc:
            raise CryptoError(f"cannot load private key: {exc}", code=Code.CRYPTO_BAD_KEY_FILE) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CryptoError("private key is not Ed25519", code=Code.CRYPTO_UNSUPPORTED_ALG)
        return cls(key)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        return private_pem([self._private], passphrase)

    @property
    def key_id(self) -> str:
        return self.public_key.key_id

    def sign(self, *, domain: Domain, obj: Any) -> SignatureJSON:
        """Signature object over ``obj`` (which must not contain its own signature)."""
        return self.sign_canonical(domain=domain, canonical=canonical_bytes(obj))

    def sign_canonical(self, *, domain: Domain, canonical: bytes) -> SignatureJSON:
        """``sign`` for an object already encoded with RFC 8785."""
        raw = self._private.sign(domain_bytes(domain, canonical))
        return Signature(ALG_ED25519, self.key_id, raw).to_json()


def safety_number(*key_ids: str) -> str:
    """Human-comparable digits for one or more key ids, independent of their order.

    Two people compare it over a trusted channel (voice, in person) to confirm they hold the same
    keys. 12 groups of 5 digits, each from 5 bytes of SHA-512 reduced mod 100000.
    """
    if not key_ids:
        raise CryptoError("a safety number needs at least one key id")
    digest = hashlib.sha512(b"hotline/v1/safety-number\n" + "\n".join(sorted(key_ids)).encode()).digest()
    groups = [int.from_bytes(digest[i * 5:(i + 1) * 5], "big") % 100000 for i in range(12)]
    return " ".join(f"{g:05d}" for g in groups)


def same_safety_number(typed: str, number: str) -> bool:
    """Whether what a person typed (groups split by spaces or dashes, or not at all) is the
    safety number ``number``: only the digits count, and all of them."""
    def digits(text: str) -> str:
        return "".join(c for c in text if c.isdigit())
    return len(digits(typed)) == 60 and digits(typed) == digits(number)


class _PrivateKey(Protocol):
    def private_bytes(self, encoding: serialization.Encoding, format: serialization.PrivateFormat,
                      encryption_algorithm: serialization.KeySerializationEncryption) -> bytes: ...


def private_pem(keys: Sequence[_PrivateKey], passphrase: bytes | None) -> bytes:
    """``keys`` as PKCS#8 PEM blocks, in order, encrypted under ``passphrase`` when given: one
    key file (two blocks for a hybrid or an epoch key)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    return b"".join(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      encryption) for key in keys)


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]{1,40})-----\n.*?\n-----END \1-----\n?", re.DOTALL)


def load_private_pem(data: bytes, passphrase: bytes | None, *, what: str) -> list[PrivateKeyTypes]:
    """The private keys of a key file's PEM blocks, in order (what ``private_pem`` wrote).

    Raises:
        CryptoError: ``crypto.bad_key_file`` for a block that does not load (a wrong passphrase).
    """
    try:
        return [serialization.load_pem_private_key(block, password=passphrase or None)
                for block in pem_blocks(data)]
    except (ValueError, TypeError) as exc:
        raise CryptoError(f"cannot load {what}: {exc}", code=Code.CRYPTO_BAD_KEY_FILE) from exc


def pem_blocks(data: bytes) -> list[bytes]:
    """The PEM blocks of a key file, in order (a hybrid or epoch key file holds two)."""
    return [match.group(0) for match in _PEM_BLOCK.finditer(data)]
