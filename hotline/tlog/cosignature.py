"""C2SP Ed25519 witness cosignatures, ``cosignature/v1`` (https://c2sp.org/tlog-cosignature). Pure.

Theory of operation:
- A cosignature is one more signature line on the signed checkpoint note, by a witness key of
  signature type 0x04: key ID ``SHA-256(name || 0x0A || 0x04 || public key)[:4]``, signature
  bytes ``u64 big-endian timestamp || Ed25519 signature`` (72 bytes).
- The signed message is ``"cosignature/v1\\n" || "time <timestamp>\\n" || checkpoint body``, the
  body with all its extension lines but no signature lines. The timestamp is POSIX seconds, at
  most 2^63-1; time is an argument here, never read from a clock.
- A v1 cosignature says: as of that time, this is the largest tree the witness has seen for the
  origin, consistent with all it saw before. The witness must check consistency before cosigning;
  ``cosign`` only makes the signature.
- ``CosignatureVerifier`` implements ``hotline.tlog.note.Verifier``, so ``open_note`` and
  ``verified_signatures`` check cosignature lines like any other signature.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.tlog.checkpoint import Checkpoint
from hotline.tlog.note import (
    MAX_SIGNATURES,
    Ed25519Key,
    Note,
    NoteSignature,
    TypedKey,
    check_key_name,
    key_id,
    parse_note,
    private_key,
    public_bytes,
    verified_signatures,
)

COSIGNATURE_TYPE = 0x04
HEADER = "cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1
SIGNATURE_SIZE = 8 + 64  # u64 timestamp, Ed25519 signature


def cosigned_message(checkpoint_body: str, timestamp: int) -> bytes:
    """The bytes a ``cosignature/v1`` signs (tlog-cosignature §Ed25519 signed message).

    Raises:
        LogError: ``log.bad_cosignature`` for a timestamp outside 0..2^63-1,
            ``log.bad_checkpoint`` if ``checkpoint_body`` is not a checkpoint body.
    """
    _check_timestamp(timestamp)
    Checkpoint.from_body(checkpoint_body)  # a witness signs checkpoints and nothing else
    return f"{HEADER}time {timestamp}\n{checkpoint_body}".encode()


@dataclass(frozen=True)
class CosignatureVerifier(TypedKey):
    """A trusted witness key (signature type 0x04)."""

    SIG_TYPE: ClassVar[int] = COSIGNATURE_TYPE
    KIND: ClassVar[str] = "cosignature"

    def verify(self, message: bytes, signature: bytes) -> None:
        """``hotline.tlog.note.Verifier``: ``message`` is the checkpoint body, ``signature`` the
        timestamped signature.

        Raises:
            LogError: ``log.bad_cosignature`` if malformed, ``log.bad_signature`` if it fails.
        """
        self.verify_timestamped(message, signature)

    def verify_timestamped(self, checkpoint_body: bytes, signature: bytes) -> int:
        """Check a ``timestamped_signature`` over a checkpoint body and return its timestamp.

        Raises:
            LogError: ``log.bad_cosignature`` for a wrong length or timestamp,
                ``log.bad_checkpoint`` for a body that is not a checkpoint, ``log.bad_signature``
                if it does not verify.
        """
        if len(signature) != SIGNATURE_SIZE:
            raise LogError(f"a cosignature is {SIGNATURE_SIZE} bytes, not {len(signature)}",
                           code=Code.LOG_BAD_COSIGNATURE)
        (timestamp,) = struct.unpack(">Q", signature[:8])
        try:
            body = checkpoint_body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LogError("checkpoint is not valid UTF-8", code=Code.LOG_BAD_COSIGNATURE) from exc
        message = cosigned_message(body, timestamp)
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature[8:], message)
        except InvalidSignature as exc:
            raise LogError(f"cosignature by {self.name}+{self.key_id.hex()} does not verify",
                           code=Code.LOG_BAD_SIGNATURE) from exc
        return int(timestamp)


def cosign(checkpoint_body: str, *, name: str, key: Ed25519Key, timestamp: int) -> str:
    """Cosign a checkpoint body as witness ``name`` at ``timestamp``.

    Args:
        checkpoint_body: the checkpoint note text, without signature lines; the caller has
            verified the log's signature and consistency with what it cosigned before.
        name: the witness key name.
        key: the witness's Ed25519 key.
        timestamp: POSIX seconds, 0..2^63-1.

    Returns:
        One signature line (ending in a newline) to append to the signed checkpoint.

    Raises:
        LogError: ``log.bad_checkpoint``, ``log.bad_cosignature`` (timestamp) or ``log.bad_key``.
    """
    check_key_name(name, code=Code.LOG_BAD_KEY)
    private = private_key(key)
    message = cosigned_message(checkpoint_body, timestamp)
    signature = struct.pack(">Q", timestamp) + private.sign(message)
    kid = key_id(name, COSIGNATURE_TYPE, public_bytes(private))
    return NoteSignature(name, kid, signature).line()


def verify_cosignature(line: str, checkpoint_body: str, verifier: CosignatureVerifier) -> int:
    """Verify one cosignature line over a checkpoint body.

    Returns:
        The cosignature's timestamp (POSIX seconds); compare it with your clock if you must.

    Raises:
        LogError: ``log.bad_note`` for a malformed line, ``log.unknown_key`` if the line is not
            by ``verifier``, ``log.bad_cosignature``/``log.bad_checkpoint`` for malformed
            content, ``log.bad_signature`` if it does not verify.
    """
    sig = NoteSignature.from_line(line)
    if (sig.name, sig.key_id) != (verifier.name, verifier.key_id):
        raise LogError(f"cosignature is by {sig.name}+{sig.key_id.hex()}, not by "
                       f"{verifier.name}+{verifier.key_id.hex()}", code=Code.LOG_UNKNOWN_KEY)
    if not isinstance(checkpoint_body, str):
        raise LogError("a checkpoint body is text", code=Code.LOG_BAD_COSIGNATURE)
    return verifier.verify_timestamped(checkpoint_body.encode("utf-8"), sig.signature)


def verify_cosignatures(note_text: str | bytes,
                        verifiers: Sequence[CosignatureVerifier]) -> dict[str, int]:
    """Verify the cosignatures on a checkpoint note from the witnesses in ``verifiers``.

    This does not check the log's own signature: call ``verify_checkpoint`` too. Cosignatures
    from unknown witnesses are ignored; count the result against your quorum.

    Returns:
        The witness name and timestamp of each verified cosignature.

    Raises:
        LogError: ``log.bad_note`` for a malformed note, ``log.bad_signature`` (or
            ``log.bad_cosignature``) if a known witness's cosignature fails.
    """
    note = parse_note(note_text)
    return {sig.name: int(struct.unpack(">Q", sig.signature[:8])[0])
            for sig in verified_signatures(note, verifiers)}


def add_cosignatures(note_text: str | bytes, lines: Iterable[str]) -> str:
    """Append cosignature lines to a signed checkpoint note.

    A new line replaces an existing one from the same key (name and key ID), so a witness's newer
    cosignature supersedes its older one. Nothing is verified here.

    Raises:
        LogError: ``log.bad_note`` for a malformed note or line, or too many signatures.
    """
    note = parse_note(note_text)
    added = [NoteSignature.from_line(line) for line in lines]
    replaced = {(sig.name, sig.key_id) for sig in added}
    kept = [sig for sig in note.signatures if (sig.name, sig.key_id) not in replaced]
    if len(kept) + len(added) > MAX_SIGNATURES:
        raise LogError(f"note would have more than {MAX_SIGNATURES} signatures", code=Code.LOG_BAD_NOTE)
    return Note(note.body, (*kept, *added)).text()


def split_cosignatures(note_text: str | bytes) -> tuple[str, tuple[str, ...]]:
    """Split a cosigned checkpoint into the log-signed note and the other signature lines.

    The log's lines are those whose key name is the checkpoint origin (docs/ARCHITECTURE.md "Transparency
    log").

    Returns:
        The note with only the origin's signature lines, and the other lines (each ending in a
        newline) in note order.

    Raises:
        LogError: ``log.bad_note`` if malformed or no line is named by the origin,
            ``log.bad_checkpoint`` if the body is not a checkpoint.
    """
    note = parse_note(note_text)
    origin = Checkpoint.from_body(note.body).origin
    own = tuple(sig for sig in note.signatures if sig.name == origin)
    if not own:
        raise LogError(f"no signature line is named by the origin {origin!r}", code=Code.LOG_BAD_NOTE)
    others = tuple(sig.line() for sig in note.signatures if sig.name != origin)
    return Note(note.body, own).text(), others


def _check_timestamp(timestamp: object) -> None:
    if (not isinstance(timestamp, int) or isinstance(timestamp, bool)
            or not 0 <= timestamp <= MAX_TIMESTAMP):
        raise LogError("a cosignature timestamp is an integer from 0 to 2^63-1",
                       code=Code.LOG_BAD_COSIGNATURE)
