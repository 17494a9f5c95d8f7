"""Sealed fields: salted digests in the signed envelope, disclosures sealed to their audience
(docs/ARCHITECTURE.md "Sealed fields"). Pure: salts come in as arguments; ``cryptography`` draws
HPKE's ephemeral keys and the field keys.

Theory of operation:
- A field the host may not read is replaced by the digest of a **disclosure**, as SD-JWT does
  (RFC 9901, section 4.2): the disclosure is ``base64url(JCS([base64url(salt), name, value]))``
  with a fresh 128-bit salt, its digest ``base64url(SHA-256(disclosure))``. The sender's signature
  covers the clear fields and the digests; the salt keeps a guessable value (``yes``, a time)
  from being found by hashing candidates.
- Each field is encrypted **once**, whatever the number of its readers (the KEM-DEM way of CMS
  and JWE with several recipients): its disclosure's JSON under a fresh 256-bit field key with
  ChaCha20-Poly1305 (RFC 8439; one key seals one plaintext, so the nonce is zero), the channel,
  the envelope id and the field's name as associated data, so a ciphertext moved to another
  field, envelope or channel does not open.
- Each reader gets one HPKE **box** (RFC 9180, base mode: KEM ``MLKEM768-X25519``, HKDF-SHA256,
  ChaCha20-Poly1305) holding the keys of every field its audience grants, sealed to its verified
  epoch key. The HPKE ``info`` binds the channel, the envelope id, the reader, its epoch key and
  the fields, so a box copied into another envelope, another channel or under another reader's
  name does not open. (``cryptography`` exposes ``info`` but no per-message AAD; in HPKE both
  feed the same key schedule check, so ``info`` carries all the binding.) A field sealed to many
  readers thus costs its size once and a box (about 1.2 kB) per reader.
- A reader opens its box, decrypts each of its fields, checks each disclosure against the signed
  digest of its field (a host or sender that swaps a box or a ciphertext cannot make a reader
  accept another value), and gets exactly the fields its audience grants. ``verify_disclosure``
  is the same check for anyone shown a disclosure later (an auditor, the public).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from msgspec import Meta

from hotline.attachments.refs import MAX_ATTACHMENT_BYTES
from hotline.attachments.stream import TAG, chunk_count, sealed_size
from hotline.canonical import JSONValue, canonical_bytes, parse
from hotline.epochkeys import EpochPrivateKey, Reader
from hotline.errorcodes import Code
from hotline.errors import CryptoError, HotlineError, SealError
from hotline.keys import b64decode, b64encode, b64url
from hotline.names import ENVELOPE_ID, NAME, Digest, Name
from hotline.typed import convert

SALT_BYTES = 16
MAX_BOXES = 64
MAX_SEALED_FIELDS = 32
MAX_ATTACHMENTS = 64  # per field: the most a template may allow (``max_count``)
SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
INFO_PREFIX = b"hotline/v1/seal\n"
FIELD_AAD_PREFIX = b"hotline/v1/sealed-field\n"
FIELD_KEY_BYTES = 32
ZERO_NONCE = bytes(12)  # each field key encrypts one plaintext, once
_B64URL = re.compile(r"[A-Za-z0-9_-]+")



def _b64url_decode(text: str, *, what: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise SealError(f"{what} is not unpadded base64url", code=Code.SEAL_INVALID)
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(data) != text:
        raise SealError(f"{what} is not canonical base64url", code=Code.SEAL_INVALID)
    return data


@dataclass(frozen=True)
class Disclosure:
    """One field's value with its salt: what a digest commits to and a box carries."""

    salt: bytes
    name: str
    value: JSONValue

    def __post_init__(self) -> None:
        if len(self.salt) != SALT_BYTES:
            raise SealError(f"a disclosure's salt is {SALT_BYTES} bytes", code=Code.SEAL_INVALID)
        if not isinstance(self.name, str) or not NAME.fullmatch(self.name):
            raise SealError("a disclosure names a field by a name", code=Code.SEAL_INVALID)

    @property
    def json(self) -> bytes:
        """``JCS([base64url(salt), name, value])``: what a field's ciphertext holds."""
        return canonical_bytes([b64url(self.salt), self.name, self.value])

    @property
    def encoded(self) -> str:
        """``base64url(JCS([base64url(salt), name, value]))``: the form that is shown and
        hashed."""
        return b64url(self.json)

    @property
    def digest(self) -> str:
        return digest_of(self.encoded)

    @classmethod
    def from_encoded(cls, text: Any) -> Disclosure:
        """Strictly decode a disclosure; SealError (``seal.invalid``) says what is wrong. The
        JSON inside must be exactly its RFC 8785 form, so one value has one disclosure."""
        if not isinstance(text, str) or len(text) > 96 * 1024:
            raise SealError("a disclosure is a base64url string", code=Code.SEAL_INVALID)
        raw = _b64url_decode(text, what="a disclosure")
        try:
            parsed = parse(raw)
        except HotlineError as exc:
            raise SealError(f"a disclosure is not JSON: {exc.message}", code=Code.SEAL_INVALID) from exc
        if not (isinstance(parsed, list) and len(parsed) == 3 and isinstance(parsed[0], str)):
            raise SealError("a disclosure is [salt, name, value]", code=Code.SEAL_INVALID)
        if canonical_bytes(parsed) != raw:
            raise SealError("a disclosure is not in canonical (RFC 8785) form", code=Code.SEAL_INVALID)
        return cls(_b64url_decode(parsed[0], what="a disclosure's salt"), parsed[1], parsed[2])


def digest_of(encoded: str) -> str:
    """SD-JWT's digest of a disclosure: base64url SHA-256 of its ASCII form."""
    return b64url(hashlib.sha256(encoded.encode("ascii")).digest())


def verify_disclosure(encoded: Any, *, name: str, digest: str) -> Disclosure:
    """The disclosure ``encoded`` if it is the one the logged ``digest`` of field ``name``
    commits to (what an auditor or anyone else checks a disclosure shown to them by).

    Raises:
        SealError: ``seal.digest_mismatch`` for a forged or altered disclosure, ``seal.invalid``
            for a malformed one.
    """
    disclosure = Disclosure.from_encoded(encoded)
    if disclosure.name != name:
        raise SealError(f"the disclosure is of field {disclosure.name!r}, not {name!r}",
                        code=Code.SEAL_DIGEST_MISMATCH)
    if digest_of(encoded) != digest:
        raise SealError(f"the disclosure of field {name!r} does not match its logged digest",
                        code=Code.SEAL_DIGEST_MISMATCH)
    return disclosure


class Box(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The keys of the fields one reader may read, sealed to its epoch key."""

    party: Name
    member: Name
    key: Digest  # the reader's epoch key id (``EpochKey.key_id``)
    fields: Annotated[list[Name], Meta(min_length=1, max_length=MAX_SEALED_FIELDS)]
    enc: str  # base64: HPKE encapsulated key || ciphertext


class StoredStream(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A sealed attachment's stream as the server stores it (``hotline.attachments.stream``):
    what the host checks it holds before it accepts the message, and serves."""

    sha256: Digest
    size: Annotated[int, Meta(ge=TAG, le=sealed_size(MAX_ATTACHMENT_BYTES))]


class Sealed(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
             omit_defaults=True):
    """An envelope's sealed fields: the digests its signature covers, each field's ciphertext
    and the readers' boxes; for a sealed attachment field, the streams its attachments are
    sealed in, in the order of the field's references (``attachments``: in clear, signed)."""

    digests: Annotated[dict[Name, Digest], Meta(min_length=1, max_length=MAX_SEALED_FIELDS)]
    ciphertexts: Annotated[dict[Name, str], Meta(min_length=1, max_length=MAX_SEALED_FIELDS)]
    boxes: Annotated[list[Box], Meta(min_length=1, max_length=MAX_BOXES)]
    attachments: dict[Name, Annotated[list[StoredStream], Meta(
        min_length=1, max_length=MAX_ATTACHMENTS)]] = msgspec.field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Any) -> Sealed:
        """Strictly decoded and its shape checked (what the host validates without reading):
        every box names sorted, known, distinct fields and a distinct reader; every field has a
        reader and one ciphertext. SealError (``seal.invalid``) names the rule."""
        sealed = convert(obj, cls, what="sealed", code=Code.SEAL_INVALID, error=SealError)
        sealed.check()
        return sealed

    def check(self) -> None:
        """The rules beyond the fields' shapes (``from_json`` applies them; a decoder that built
        this from JSON otherwise, the envelope's, calls this once)."""
        if set(self.ciphertexts) != set(self.digests):
            raise SealError("every sealed field has one digest and one ciphertext",
                            code=Code.SEAL_INVALID)
        if unknown := set(self.attachments) - set(self.digests):
            raise SealError(f"attachments are named for fields that are not sealed: "
                            f"{', '.join(sorted(unknown))}", code=Code.SEAL_INVALID)
        for name, streams in self.attachments.items():
            for i, stream in enumerate(streams):
                try:
                    chunk_count(stream.size)
                except SealError:
                    raise SealError(f"sealed.attachments.{name}[{i}]: no sealed stream is "
                                    f"{stream.size} bytes long", code=Code.SEAL_INVALID) from None
        for text in self.ciphertexts.values():
            _check_b64(text)
        readers: set[tuple[str, str]] = set()
        granted: set[str] = set()
        for box in self.boxes:
            if (box.party, box.member) in readers:
                raise SealError(f"two boxes for {box.member} ({box.party})", code=Code.SEAL_INVALID)
            readers.add((box.party, box.member))
            if box.fields != sorted(set(box.fields)):
                raise SealError(f"the box for {box.member} must list distinct fields in order",
                                code=Code.SEAL_INVALID)
            if unknown := set(box.fields) - set(self.digests):
                raise SealError(f"the box for {box.member} names fields with no digest: "
                                f"{', '.join(sorted(unknown))}", code=Code.SEAL_INVALID)
            granted.update(box.fields)
            _check_b64(box.enc)
        if unread := set(self.digests) - granted:
            raise SealError(f"no reader is given fields {', '.join(sorted(unread))}",
                            code=Code.SEAL_INVALID)

    def to_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


def _check_b64(text: str) -> bytes:
    try:
        return b64decode(text, what="a sealed box")
    except CryptoError as exc:
        raise SealError(exc.message, code=Code.SEAL_INVALID) from exc


@dataclass(frozen=True)
class SealContext:
    """Where a sealed envelope lives: what every box is bound to."""

    channel: str
    envelope: str

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.channel) or not ENVELOPE_ID.fullmatch(self.envelope):
            raise SealError("a sealing context is a channel name and an envelope id",
                            code=Code.SEAL_INVALID)

    def info(self, *, party: str, member: str, key: str, fields: Iterable[str]) -> bytes:
        """The HPKE ``info``: every fact the box is bound to, in one RFC 8785 object."""
        return INFO_PREFIX + canonical_bytes({
            "channel": self.channel, "envelope": self.envelope, "party": party,
            "member": member, "key": key, "fields": sorted(fields)})

    def field_aad(self, name: str) -> bytes:
        """A field ciphertext's associated data: where it belongs."""
        return FIELD_AAD_PREFIX + canonical_bytes({
            "channel": self.channel, "envelope": self.envelope, "field": name})


def make_disclosures(fields: Mapping[str, JSONValue], salts: Mapping[str, bytes]) -> list[Disclosure]:
    """One disclosure per field, each with its own salt (the caller draws them, 16 bytes each)."""
    return [Disclosure(salts[name], name, value) for name, value in sorted(fields.items())]


def seal(disclosures: Iterable[Disclosure], readers: Mapping[str, Iterable[Reader]],
         context: SealContext, attachments: Mapping[str, list[StoredStream]] | None = None) -> Sealed:
    """Seal each disclosure to every reader of its field (``readers[name]``): each field
    encrypted once under a fresh key, and one box per reader with the keys of every field it
    may read. ``attachments``: the sealed streams of each sealed attachment field, named in
    clear beside them.

    Raises:
        SealError: ``seal.no_reader`` for a field nobody could read (it would be lost),
            ``seal.invalid`` for more fields or readers than an envelope holds.
    """
    by_name = {d.name: d for d in disclosures}
    per_reader: dict[tuple[str, str], tuple[Reader, list[str]]] = {}
    for name in by_name:
        granted = list(readers.get(name, ()))
        if not granted:
            raise SealError(f"field {name!r} has no reader with an epoch key: it would be lost",
                            code=Code.SEAL_NO_READER)
        for reader in granted:
            if (reader.party, reader.member) != (reader.key.party, reader.key.member):
                raise SealError(f"the epoch key given for {reader.member} is "
                                f"{reader.key.member}'s", code=Code.SEAL_BAD_EPOCH_KEY)
            per_reader.setdefault((reader.party, reader.member), (reader, []))[1].append(name)
    field_keys = {name: ChaCha20Poly1305.generate_key() for name in by_name}
    ciphertexts = {name: b64encode(ChaCha20Poly1305(field_keys[name]).encrypt(
        ZERO_NONCE, d.json, context.field_aad(name))) for name, d in sorted(by_name.items())}
    boxes = []
    for (party, member), (reader, names) in sorted(per_reader.items()):
        names.sort()
        info = context.info(party=party, member=member, key=reader.key.key_id, fields=names)
        plaintext = canonical_bytes([b64url(field_keys[name]) for name in names])
        enc = SUITE.encrypt(plaintext, reader.key.public_key, info)
        boxes.append(Box(party=party, member=member, key=reader.key.key_id, fields=names,
                         enc=b64encode(enc)))
    return Sealed.from_json(msgspec.to_builtins(
        Sealed(digests={name: d.digest for name, d in sorted(by_name.items())},
               ciphertexts=ciphertexts, boxes=boxes, attachments=dict(attachments or {}))))


def open_sealed(sealed: Sealed, *, party: str, member: str, keys: Mapping[str, EpochPrivateKey],
                context: SealContext) -> dict[str, Disclosure]:
    """The fields ``member`` of ``party`` may read, each checked against its signed digest; an
    empty mapping when no box is addressed to it. ``keys`` maps epoch key ids to the private keys
    the member still holds.

    Raises:
        SealError: ``seal.no_key`` when the box is sealed to an epoch key the member no longer
            holds (retired), ``seal.cannot_open`` when the box does not open (tampered, moved or
            sealed to another key) or a field it names does not open with the key it holds,
            ``seal.digest_mismatch`` when a field is not what the sender signed, ``seal.invalid``
            when its content is malformed.
    """
    box = next((b for b in sealed.boxes if (b.party, b.member) == (party, member)), None)
    if box is None:
        return {}
    private = keys.get(box.key)
    if private is None:
        raise SealError(f"the box for {member} is sealed to epoch key {box.key}, which this "
                        f"member no longer holds (retired) or never held", code=Code.SEAL_NO_KEY)
    info = context.info(party=party, member=member, key=box.key, fields=box.fields)
    try:
        plaintext = SUITE.decrypt(_check_b64(box.enc), private.hpke, info)
    except (InvalidTag, ValueError) as exc:
        raise SealError(f"the box for {member} does not open with its epoch key (tampered, moved "
                        f"from another envelope, or sealed to another key)",
                        code=Code.SEAL_CANNOT_OPEN) from exc
    try:
        field_keys = parse(plaintext)
    except HotlineError as exc:
        raise SealError("a sealed box holds no JSON", code=Code.SEAL_INVALID) from exc
    if not (isinstance(field_keys, list) and len(field_keys) == len(box.fields)
            and all(isinstance(k, str) for k in field_keys)):
        raise SealError("a sealed box holds one key per field it names", code=Code.SEAL_INVALID)
    opened = {}
    for name, text in zip(box.fields, field_keys, strict=True):
        key = _b64url_decode(str(text), what="a field key")
        if len(key) != FIELD_KEY_BYTES:
            raise SealError(f"a field key is {FIELD_KEY_BYTES} bytes", code=Code.SEAL_INVALID)
        try:
            json = ChaCha20Poly1305(key).decrypt(ZERO_NONCE, _check_b64(sealed.ciphertexts[name]),
                                                 context.field_aad(name))
        except InvalidTag as exc:
            raise SealError(f"sealed field {name} does not open with the key {member}'s box holds "
                            "(tampered, or moved from another field or envelope)",
                            code=Code.SEAL_CANNOT_OPEN) from exc
        opened[name] = verify_disclosure(b64url(json), name=name, digest=sealed.digests[name])
    return opened
