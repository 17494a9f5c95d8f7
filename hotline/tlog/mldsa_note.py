"""ML-DSA-65 (FIPS 204) signatures on C2SP signed notes: a second signature line beside the
Ed25519 one, for checkpoints that must still convince an auditor after quantum computers exist.
Pure: no I/O, no clock.

C2SP signed-note assigns no signature type to ML-DSA; it reserves 0xff for "signature types
without an identifier byte assigned by this specification", followed by a longer identifier.
So the type is 0xff then ``hotline/ml-dsa-65`` and a newline (``IDENTIFIER``), and the key ID is
the spec's rule with that as the type: ``SHA-256(name || 0x0A || 0xff || IDENTIFIER || public
key)[:4]``. A verifier that knows only the Ed25519 key skips the line (the spec ignores
signatures from unknown keys), so Ed25519-only verifiers such as golang.org/x/mod/sumdb/note keep
working. The signature is over the note text, with ``IDENTIFIER`` (without its newline) as the
FIPS 204 context string. Verifier keys travel as ``<name>+<hex key ID>+<base64(0xff ||
IDENTIFIER || public key)>`` (about 2.7 kB, over the 1 kB bound of Ed25519 key texts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey, MLDSA65PublicKey

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.tlog._text import b64decode, b64encode
from hotline.tlog.note import Note, NoteSignature, check_body, check_key_name, key_id, parse_note

RESERVED_TYPE = 0xFF
IDENTIFIER = b"hotline/ml-dsa-65\n"
CONTEXT = IDENTIFIER.rstrip(b"\n")
PUBLIC_BYTES = 1952
SIGNATURE_BYTES = 3309
MAX_VKEY_TEXT = 4096


@dataclass(frozen=True)
class MLDSANoteVerifier:
    """A trusted ML-DSA-65 note key (``hotline.tlog.note.Verifier``)."""

    name: str
    public_key: bytes
    key_id: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_key_name(self.name, code=Code.LOG_BAD_KEY)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_BYTES:
            raise LogError(f"an ML-DSA-65 public key is {PUBLIC_BYTES} bytes", code=Code.LOG_BAD_KEY)
        object.__setattr__(self, "key_id", key_id(self.name, RESERVED_TYPE, IDENTIFIER + self.public_key))

    @classmethod
    def from_text(cls, vkey: str) -> MLDSANoteVerifier:
        """Parse ``<name>+<hex key ID>+<base64(0xff || IDENTIFIER || public key)>``.

        Raises:
            LogError: ``log.bad_key`` if it is malformed, of another type, or its key ID does
                not match.
        """
        if not isinstance(vkey, str) or len(vkey) > MAX_VKEY_TEXT or vkey.count("+") < 2:
            raise LogError("an ML-DSA-65 verifier key is <name>+<hex key ID>+<base64 key>",
                           code=Code.LOG_BAD_KEY)
        name, hex_id, text = vkey.split("+", 2)  # a name and a hex ID hold no "+"; base64 may
        material = b64decode(text, what="verifier key", code=Code.LOG_BAD_KEY)
        prefix = bytes([RESERVED_TYPE]) + IDENTIFIER
        if not material.startswith(prefix):
            raise LogError("not an ML-DSA-65 note key (type 0xff hotline/ml-dsa-65)",
                           code=Code.LOG_BAD_KEY)
        verifier = cls(name, material[len(prefix):])
        if verifier.key_id.hex() != hex_id:
            raise LogError(f"verifier key ID {hex_id} does not match its key", code=Code.LOG_BAD_KEY)
        return verifier

    def to_text(self) -> str:
        material = bytes([RESERVED_TYPE]) + IDENTIFIER + self.public_key
        return f"{self.name}+{self.key_id.hex()}+{b64encode(material)}"

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise ``LogError`` (``log.bad_signature``) unless ``signature`` signs ``message``."""
        try:
            MLDSA65PublicKey.from_public_bytes(self.public_key).verify(signature, message, CONTEXT)
        except (InvalidSignature, ValueError) as exc:
            raise LogError(f"ML-DSA-65 signature by {self.name}+{self.key_id.hex()} does not verify",
                           code=Code.LOG_BAD_SIGNATURE) from exc


class MLDSANoteSigner:
    """An ML-DSA-65 note signing key with its name (the log's, beside its Ed25519 key)."""

    def __init__(self, *, name: str, key: MLDSA65PrivateKey) -> None:
        self._key = key
        self.verifier = MLDSANoteVerifier(name, key.public_key().public_bytes_raw())
        self.name = name

    def __repr__(self) -> str:
        return f"MLDSANoteSigner({self.name}+{self.verifier.key_id.hex()})"  # never the key

    def sign(self, body: str) -> NoteSignature:
        """The signature line over a note body (``log.bad_note`` if it cannot be a note text)."""
        check_body(body)
        return NoteSignature(self.name, self.verifier.key_id, self._key.sign(body.encode("utf-8"), CONTEXT))


def add_signature(note: str, signer: MLDSANoteSigner) -> str:
    """``note`` (a signed note) with ``signer``'s signature line added after its others."""
    parsed = parse_note(note)
    return Note(parsed.body, (*parsed.signatures, signer.sign(parsed.body))).text()
