"""Member encryption keys per epoch (docs/ARCHITECTURE.md "Sealed fields"). Pure: times come in as
arguments; only ``EpochPrivateKey.generate`` draws randomness.

Theory of operation:
- Time is cut into epochs of a fixed length (the agreement's; 24 h by default): epoch ``n`` runs
  from ``n * length`` to ``(n + 1) * length`` seconds after the Unix epoch, so every member and
  every server agrees on it without talking.
- For each epoch a member makes a fresh HPKE key pair with the hybrid post-quantum KEM
  ML-KEM-768 + X25519 (HPKE KEM ``MLKEM768-X25519``, 0x647A: X-Wing), publishes the public half
  as an ``epoch-key`` document signed by its enrolled signing key in the ``hotline/v1/epoch-key``
  domain, and deletes the private half once the epoch and the longest ack deadline have passed.
  A stolen laptop therefore holds at most the keys of the epochs not yet retired.
- A sender seals only to an epoch key it has verified: signed by the member's enrolled key, for
  that member, party and epoch (``verify_epoch_key``). The host cannot substitute its own key
  without the member's signing key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.hpke import MLKEM768X25519PrivateKey, MLKEM768X25519PublicKey
from msgspec import Meta

from hotline.canonical import canonical_bytes
from hotline.errorcodes import Code
from hotline.errors import CryptoError, SealError
from hotline.keys import Domain, Signer, Verifier, b64decode, b64encode, b64url, load_private_pem, private_pem
from hotline.names import Name
from hotline.typed import convert

KEM = "MLKEM768-X25519"
MLKEM768_PUBLIC_BYTES = 1184
X25519_PUBLIC_BYTES = 32
DEFAULT_EPOCH = timedelta(hours=24)
MIN_EPOCH_SECONDS = 60
MAX_EPOCH_SECONDS = 31 * 24 * 3600
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_of(at: datetime, length: timedelta) -> int:
    """The number of the epoch ``at`` falls in."""
    return int((at - UNIX_EPOCH) // length)


def epoch_start(epoch: int, length: timedelta) -> datetime:
    return UNIX_EPOCH + epoch * length


class EpochKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, dict=True,
               tag_field="type", tag="epoch-key"):
    """A member's public encryption key for one epoch, as signed by its enrolled key and logged."""

    party: Name
    member: Name
    epoch: Annotated[int, Meta(ge=0, le=2**40)]
    length: Annotated[int, Meta(ge=MIN_EPOCH_SECONDS, le=MAX_EPOCH_SECONDS)]  # seconds
    kem: Literal["MLKEM768-X25519"]
    pub: str  # base64: ML-KEM-768 encapsulation key (1184 bytes) || X25519 public key (32)

    @classmethod
    def from_json(cls, obj: Any) -> EpochKey:
        """Strictly decoded; SealError (``seal.invalid``) names the field at fault."""
        doc = convert(obj, cls, what="epoch key", code=Code.SEAL_INVALID, error=SealError)
        doc.public_key  # noqa: B018 - decodes and checks the key now, not at first use
        return doc

    def to_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]

    @cached_property
    def canonical(self) -> bytes:
        return canonical_bytes(self.to_json())

    @cached_property
    def key_id(self) -> str:
        """Unpadded base64url SHA-256 of the document's RFC 8785 bytes: names the key, its member
        and its epoch at once, and is what a sealed box says it was sealed to."""
        return b64url(hashlib.sha256(self.canonical).digest())

    @property
    def not_before(self) -> datetime:
        return epoch_start(self.epoch, timedelta(seconds=self.length))

    @property
    def not_after(self) -> datetime:
        return epoch_start(self.epoch + 1, timedelta(seconds=self.length))

    @cached_property
    def public_key(self) -> MLKEM768X25519PublicKey:
        try:
            raw = b64decode(self.pub, what="epoch key")
        except CryptoError as exc:
            raise SealError(f"epoch key of {self.member}: {exc.message}", code=Code.SEAL_INVALID) from exc
        if len(raw) != MLKEM768_PUBLIC_BYTES + X25519_PUBLIC_BYTES:
            raise SealError(f"epoch key of {self.member}: an {KEM} public key is "
                            f"{MLKEM768_PUBLIC_BYTES + X25519_PUBLIC_BYTES} bytes",
                            code=Code.SEAL_INVALID)
        try:
            return MLKEM768X25519PublicKey(
                MLKEM768PublicKey.from_public_bytes(raw[:MLKEM768_PUBLIC_BYTES]),
                X25519PublicKey.from_public_bytes(raw[MLKEM768_PUBLIC_BYTES:]))
        except ValueError as exc:
            raise SealError(f"epoch key of {self.member}: not a valid {KEM} public key",
                            code=Code.SEAL_INVALID) from exc

    def sign(self, key: Signer) -> dict[str, str]:
        return key.sign_canonical(domain=Domain.EPOCH_KEY, canonical=self.canonical)


PUBLISH_AHEAD = 2  # epochs: how far ahead of its epoch a key may be published


def publishable(doc: EpochKey, now: datetime) -> bool:
    """Whether the host logs ``doc`` at ``now``: its epoch is not over and starts at most
    ``PUBLISH_AHEAD`` epochs from now. This bounds what one member can add to the log (a few
    keys per epoch, never keys for all of time in advance)."""
    return doc.not_after > now and doc.epoch <= epoch_of(now, timedelta(seconds=doc.length)) + PUBLISH_AHEAD


def verify_epoch_key(doc: EpochKey, sig: Any, *, enrolled: Verifier, party: str, member: str,
                     epoch: int, length: timedelta) -> None:
    """Refuse an epoch key unless it is ``member``'s (of ``party``) for ``epoch`` of ``length``,
    signed by the member's enrolled signing key ``enrolled``: what a sender checks before it
    seals anything to the key.

    Raises:
        SealError: ``seal.bad_epoch_key`` naming what does not hold.
    """
    def refuse(why: str) -> SealError:
        return SealError(f"epoch key offered for {member} ({party}), epoch {epoch}: {why}",
                         code=Code.SEAL_BAD_EPOCH_KEY)
    if (doc.party, doc.member) != (party, member):
        raise refuse(f"it is {doc.member} ({doc.party})'s")
    if (doc.epoch, doc.length) != (epoch, int(length.total_seconds())):
        raise refuse(f"it is for epoch {doc.epoch} of {doc.length} s")
    try:
        enrolled.verify_canonical(domain=Domain.EPOCH_KEY, canonical=doc.canonical, signature=sig)
    except CryptoError as exc:
        raise refuse(f"not signed by the member's enrolled key ({exc.message})") from exc


@dataclass(frozen=True)
class EpochPrivateKey:
    """The private half of one epoch key: kept by its member until the epoch is retired."""

    mlkem: MLKEM768PrivateKey
    x25519: X25519PrivateKey

    @classmethod
    def generate(cls) -> EpochPrivateKey:
        return cls(MLKEM768PrivateKey.generate(), X25519PrivateKey.generate())

    @classmethod
    def from_seeds(cls, mlkem_seed: bytes, x25519_seed: bytes) -> EpochPrivateKey:
        """Deterministic key for test vectors only (64-byte ML-KEM seed, 32-byte X25519 key)."""
        try:
            return cls(MLKEM768PrivateKey.from_seed_bytes(mlkem_seed),
                       X25519PrivateKey.from_private_bytes(x25519_seed))
        except ValueError as exc:
            raise CryptoError("an ML-KEM-768 seed is 64 bytes, an X25519 key 32") from exc

    @property
    def hpke(self) -> MLKEM768X25519PrivateKey:
        return MLKEM768X25519PrivateKey(self.mlkem, self.x25519)

    def public_bytes(self) -> bytes:
        return (self.mlkem.public_key().public_bytes_raw()
                + self.x25519.public_key().public_bytes(serialization.Encoding.Raw,
                                                        serialization.PublicFormat.Raw))

    def document(self, *, party: str, member: str, epoch: int, length: timedelta) -> EpochKey:
        """The public ``epoch-key`` document for this key (to sign with ``EpochKey.sign``)."""
        return EpochKey.from_json({"type": "epoch-key", "party": party, "member": member,
                                   "epoch": epoch, "length": int(length.total_seconds()),
                                   "kem": KEM, "pub": b64encode(self.public_bytes())})

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """Both halves as PKCS#8 PEM blocks, encrypted under ``passphrase`` when given."""
        return private_pem([self.mlkem, self.x25519], passphrase)

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> EpochPrivateKey:
        keys = load_private_pem(data, passphrase, what="epoch key")
        if (len(keys) != 2 or not isinstance(keys[0], MLKEM768PrivateKey)
                or not isinstance(keys[1], X25519PrivateKey)):
            raise CryptoError("an epoch key file holds an ML-KEM-768 key then an X25519 key",
                              code=Code.CRYPTO_BAD_KEY_FILE)
        return cls(keys[0], keys[1])


@dataclass(frozen=True)
class Reader:
    """A member fields may be sealed to, with its epoch key (from a roster that verified it:
    ``hotline.roster.readers_of``)."""

    party: str
    member: str
    key: EpochKey
