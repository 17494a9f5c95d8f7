"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys. Pure: no I/O, no clock.

Theory of operation:
- A signed note is the note text (UTF-8, ending in a newline, empty lines allowed), an empty line,
  then one or more signature lines ``— <key name> <base64(key ID || signature)>``. The text is
  separated from the signatures by the *last* empty line. No control characters but newline.
- A key is known by the pair (key name, 4-byte key ID); the ID is
  ``SHA-256(name || 0x0A || signature type || public key)[:4]``. Ed25519 note keys are type 0x01;
  timestamped cosignatures (type 0x04) live in ``hotline.tlog.cosignature`` and plug into
  ``open_note`` through the same ``Verifier`` protocol.
- ``open_note`` ignores signatures from keys the caller does not know, rejects the note if a known
  key's signature fails, and requires at least one known signature to verify.
- Verifier keys travel as ``<name>+<hex key ID>+<base64(type || public key)>`` (signed-note
  §Verifier keys); signer keys as ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``
  (golang.org/x/mod/sumdb/note, which the test vectors come from).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.keys import SigningKey
from hotline.tlog._text import b64decode, b64encode, check_no_controls, decode_text

ED25519_TYPE = 0x01
SIGNATURE_PREFIX = "— "  # U+2014 EM DASH, U+0020 SPACE
# The spec asks verifiers to bound the signature count but accept at least 16 (post-quantum lines
# reach ~5 kB). 100 signatures is golang.org/x/mod/sumdb/note's limit; 128 KiB bounds the work.
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 128 * 1024
MAX_KEY_TEXT = 1024

Ed25519Key = SigningKey | Ed25519PrivateKey
"""A private key for note or cosignature signing: hotline's ``SigningKey`` or a raw one."""

_HEX8 = re.compile("[0-9a-f]{8}")


class Verifier(Protocol):
    """What ``open_note`` needs from a trusted key (``NoteVerifier``, ``CosignatureVerifier``)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise ``LogError`` unless ``signature`` (the bytes after the key ID) signs ``message``."""


@dataclass(frozen=True)
class NoteSignature:
    """One signature line, not yet verified."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """The signature line, with its final newline."""
        return f"{SIGNATURE_PREFIX}{self.name} {b64encode(self.key_id + self.signature)}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Parse one signature line, with or without its final newline.

        Raises:
            LogError: ``log.bad_note`` for a line that breaks the signed-note grammar.
        """
        if not isinstance(line, str):
            raise LogError("a signature line is text", code=Code.LOG_BAD_NOTE)
        line = line.removesuffix("\n")
        check_no_controls(line, what="signature line", code=Code.LOG_BAD_NOTE)  # also refuses inner "\n"
        if not line.startswith(SIGNATURE_PREFIX):
            raise LogError("a signature line starts with an em dash and a space", code=Code.LOG_BAD_NOTE)
        name, space, encoded = line[len(SIGNATURE_PREFIX):].partition(" ")
        if not space:
            raise LogError("a signature line is '— NAME BASE64'", code=Code.LOG_BAD_NOTE)
        check_key_name(name, code=Code.LOG_BAD_NOTE)
        raw = b64decode(encoded, what=f"signature by {name}", code=Code.LOG_BAD_NOTE)
        if len(raw) < 5:  # a 4-byte key ID and a non-empty signature
            raise LogError(f"signature by {name} is too short", code=Code.LOG_BAD_NOTE)
        return cls(name, raw[:4], raw[4:])


@dataclass(frozen=True)
class Note:
    """A parsed signed note whose signatures have *not* been checked: do not trust ``body``."""

    body: str
    signatures: tuple[NoteSignature, ...]

    def text(self) -> str:
        """The signed-note text: body, empty line, signature lines."""
        return self.body + "\n" + "".join(sig.line() for sig in self.signatures)


@dataclass(frozen=True)
class TypedKey:
    """A named Ed25519 public key of one C2SP signature type; its key ID binds name, type and key.

    Subclasses fix ``SIG_TYPE`` (0x01 note keys, 0x04 cosignature keys) and ``verify``.
    """

    SIG_TYPE: ClassVar[int]
    KIND: ClassVar[str]

    name: str
    public_key: bytes
    key_id: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name, code=Code.LOG_BAD_KEY)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != 32:
            raise LogError("an Ed25519 public key is 32 bytes", code=Code.LOG_BAD_KEY)
        object.__setattr__(self, "key_id", key_id(self.name, self.SIG_TYPE, self.public_key))

    @classmethod
    def from_text(cls, vkey: str) -> Self:
        """Parse a verifier key ``<name>+<hex key ID>+<base64(type || public key)>``.

        Raises:
            LogError: ``log.bad_key`` if it is malformed, of another signature type, or its key
                ID does not match.
        """
        name, sig_type, material = parse_vkey(vkey)
        if sig_type != cls.SIG_TYPE:
            raise LogError(f"verifier key type 0x{sig_type:02x} is not a {cls.KIND} key "
                           f"(0x{cls.SIG_TYPE:02x})", code=Code.LOG_BAD_KEY)
        return cls(name, material)

    def to_text(self) -> str:
        return vkey_text(self.name, self.key_id, self.SIG_TYPE, self.public_key)


@dataclass(frozen=True)
class NoteVerifier(TypedKey):
    """A trusted Ed25519 note key (signature type 0x01)."""

    SIG_TYPE: ClassVar[int] = ED25519_TYPE
    KIND: ClassVar[str] = "note"

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check an Ed25519 signature over ``message`` (the note text).

        Raises:
            LogError: ``log.bad_signature`` if it does not verify.
        """
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature as exc:
            raise LogError(f"signature by {self.name}+{self.key_id.hex()} does not verify",
                           code=Code.LOG_BAD_SIGNATURE) from exc


@dataclass(frozen=True)
class PinnedNoteVerifier(NoteVerifier):
    """The log's Ed25519 note key pinned together with its other keys of the same name (its
    ML-DSA-65 key, ``hotline.tlog.mldsa_note``): a checkpoint verified against it must carry a
    valid signature by every one (``hotline.tlog.checkpoint.verify_checkpoint``). Everything
    else about it is the Ed25519 key's, so Ed25519-only verifiers and texts are unchanged."""

    also: tuple[Verifier, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if any(other.name != self.name for other in self.also):
            raise LogError("the log's keys are all named by its origin", code=Code.LOG_BAD_KEY)


class NoteSigner:
    """An Ed25519 note signing key with its name (signature type 0x01)."""

    def __init__(self, *, name: str, key: Ed25519Key) -> None:
        check_key_name(name, code=Code.LOG_BAD_KEY)
        self.name = name
        self._key = private_key(key)
        self.verifier = NoteVerifier(name, public_bytes(self._key))

    def __repr__(self) -> str:
        return f"NoteSigner({self.verifier.to_text()!r})"  # never the seed

    @property
    def key_id(self) -> bytes:
        return self.verifier.key_id

    @classmethod
    def from_text(cls, skey: str) -> NoteSigner:
        """Parse a signer key ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``.

        Raises:
            LogError: ``log.bad_key`` if it is malformed or its key ID does not match the public
                key derived from the seed.
        """
        if not isinstance(skey, str) or not skey.startswith("PRIVATE+KEY+"):
            raise LogError("a signer key starts with PRIVATE+KEY+", code=Code.LOG_BAD_KEY)
        if len(skey) > MAX_KEY_TEXT:
            raise LogError("signer key is too long", code=Code.LOG_BAD_KEY)
        name, hex_id, material = _split_key_text(skey.removeprefix("PRIVATE+KEY+"))
        if len(material) != 33 or material[0] != ED25519_TYPE:
            raise LogError("a signer key holds 0x01 and a 32-byte Ed25519 seed", code=Code.LOG_BAD_KEY)
        signer = cls(name=name, key=Ed25519PrivateKey.from_private_bytes(material[1:]))
        if signer.key_id.hex() != hex_id:
            raise LogError("signer key ID does not match its key", code=Code.LOG_BAD_KEY)
        return signer

    def to_text(self) -> str:
        """The secret signer key string: whoever holds it can sign as this key."""
        seed = self._key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                       serialization.NoEncryption())
        return "PRIVATE+KEY+" + vkey_text(self.name, self.key_id, ED25519_TYPE, seed)

    def sign(self, body: str) -> NoteSignature:
        """Sign a note body.

        Raises:
            LogError: ``log.bad_note`` if ``body`` cannot be a note text.
        """
        check_body(body)
        return NoteSignature(self.name, self.key_id, self._key.sign(body.encode("utf-8")))


def sign_note(body: str, *, name: str, key: Ed25519Key) -> str:
    """Sign ``body`` as key ``name`` and return the signed note.

    Args:
        body: the note text: non-empty, ending in a newline, no control characters but newline.
        name: the key name (non-empty, no spaces, no ``+``); for a checkpoint, its origin.
        key: the Ed25519 private key.

    Raises:
        LogError: ``log.bad_note`` for a bad body, ``log.bad_key`` for a bad name or key.
    """
    signature = NoteSigner(name=name, key=key).sign(body)
    return Note(body, (signature,)).text()


def parse_note(text: str | bytes) -> Note:
    """Split a signed note into its body and signature lines, checking only the grammar.

    Nothing is verified: use ``open_note`` before trusting anything in the body.

    Raises:
        LogError: ``log.bad_note`` for anything but a well-formed signed note.
    """
    text = decode_text(text, what="note", code=Code.LOG_BAD_NOTE, max_bytes=MAX_NOTE_BYTES)
    split = text.rfind("\n\n")
    if split < 0:
        raise LogError("note has no empty line before its signatures", code=Code.LOG_BAD_NOTE)
    body, block = text[:split + 1], text[split + 2:]
    if not block.endswith("\n"):
        raise LogError("note must end with a signature line and a newline", code=Code.LOG_BAD_NOTE)
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise LogError(f"note has more than {MAX_SIGNATURES} signatures", code=Code.LOG_BAD_NOTE)
    return Note(body, tuple(NoteSignature.from_line(line) for line in lines))


def verified_signatures(note: Note, verifiers: Sequence[Verifier]) -> list[NoteSignature]:
    """Verify each signature in ``note`` by a key in ``verifiers``; ignore the others.

    Like golang.org/x/mod/sumdb/note, only the first signature per known key is checked; repeats
    are dropped.

    Returns:
        The verified signatures, in note order (possibly none).

    Raises:
        LogError: ``log.bad_signature`` if a known key's signature does not verify,
            ``log.bad_key`` if two different verifiers share a name and key ID.
    """
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        if slot in known and known[slot] != verifier:
            raise LogError(f"two verifiers for {verifier.name}+{verifier.key_id.hex()}",
                           code=Code.LOG_BAD_KEY)
        known[slot] = verifier
    message = note.body.encode("utf-8")
    verified: list[NoteSignature] = []
    for sig in note.signatures:
        found = known.pop((sig.name, sig.key_id), None)
        if found is not None:
            found.verify(message, sig.signature)
            verified.append(sig)
    return verified


def open_note(text: str | bytes, verifiers: Sequence[Verifier]) -> tuple[str, list[str]]:
    """Parse a signed note and verify its signatures (c2sp.org/signed-note §Signatures).

    Args:
        text: the signed note.
        verifiers: the keys the caller trusts.

    Returns:
        The body (the note text, final newline included) and the names of the keys whose
        signatures verified, in note order.

    Raises:
        LogError: ``log.bad_note`` for a malformed note, ``log.bad_signature`` if a trusted key's
            signature fails, ``log.unknown_key`` if no trusted key signed it.
    """
    note = parse_note(text)
    verified = verified_signatures(note, verifiers)
    if not verified:
        raise LogError("note has no signature from a trusted key", code=Code.LOG_UNKNOWN_KEY)
    return note.body, [sig.name for sig in verified]


# --- keys ---------------------------------------------------------------------------------------

def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || signature type || public key)[:4]`` (signed-note §Signatures)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def check_key_name(name: object, *, code: Code) -> None:
    """A key name is non-empty with no Unicode space and no ``+`` (signed-note §Format).

    Raises:
        LogError: with ``code`` otherwise.
    """
    if not isinstance(name, str) or not name:
        raise LogError("a key name is a non-empty string", code=code)
    if "+" in name or any(c.isspace() or unicodedata.category(c) in ("Zs", "Zl", "Zp")
                          for c in name):
        raise LogError(f"key name {name!r} contains a space or '+'", code=code)
    try:
        check_no_controls(name, what="key name", code=code)
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LogError("key name is not valid UTF-8", code=code) from exc


def parse_vkey(vkey: str) -> tuple[str, int, bytes]:
    """Split a verifier key ``<name>+<hex key ID>+<base64(type || key)>`` and check its key ID.

    Returns:
        The name, the signature type byte and the public key material.

    Raises:
        LogError: ``log.bad_key`` if it is malformed or the key ID does not match.
    """
    if not isinstance(vkey, str) or len(vkey) > MAX_KEY_TEXT:
        raise LogError("a verifier key is a string of at most 1024 characters", code=Code.LOG_BAD_KEY)
    name, hex_id, material = _split_key_text(vkey)
    if key_id(name, material[0], material[1:]).hex() != hex_id:
        raise LogError(f"verifier key ID {hex_id} does not match its key", code=Code.LOG_BAD_KEY)
    return name, material[0], material[1:]


def vkey_text(name: str, kid: bytes, sig_type: int, material: bytes) -> str:
    return f"{name}+{kid.hex()}+{b64encode(bytes([sig_type]) + material)}"


def private_key(key: Ed25519Key) -> Ed25519PrivateKey:
    """The ``cryptography`` key inside ``key``.

    ``hotline.keys.SigningKey`` has no accessor for its Ed25519PrivateKey, and this package must
    not change keys.py, so this one function reads its ``_private`` attribute.
    """
    if isinstance(key, Ed25519PrivateKey):
        return key
    if isinstance(key, SigningKey):
        return key._private
    raise LogError("a signing key is a hotline SigningKey or an Ed25519PrivateKey", code=Code.LOG_BAD_KEY)


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def check_body(body: object) -> None:
    """A note text is non-empty, ends in a newline and has no control character but newline."""
    if not isinstance(body, str) or not body.endswith("\n"):
        raise LogError("a note body is text ending in a newline", code=Code.LOG_BAD_NOTE)
    decode_text(body, what="note body", code=Code.LOG_BAD_NOTE, max_bytes=MAX_NOTE_BYTES)


def _split_key_text(text: str) -> tuple[str, str, bytes]:
    # The base64 part may itself contain "+", so split off only the first two fields.
    name, _, rest = text.partition("+")
    hex_id, _, encoded = rest.partition("+")
    check_key_name(name, code=Code.LOG_BAD_KEY)
    if not _HEX8.fullmatch(hex_id):
        raise LogError("a key ID is 8 lowercase hex digits", code=Code.LOG_BAD_KEY)
    material = b64decode(encoded, what="key", code=Code.LOG_BAD_KEY)
    if not material:
        raise LogError("key material is empty", code=Code.LOG_BAD_KEY)
    return name, hex_id, material
