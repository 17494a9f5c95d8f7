"""C2SP checkpoints (https://c2sp.org/tlog-checkpoint): the log's signed tree head. Pure.

The note body is three or more non-empty lines: the origin (the log's identity), the tree size in
decimal without leading zeros, the base64 RFC 9162 root hash, then optional opaque extension
lines. The log signs it as a signed note with its Ed25519 key, whose key name is the origin
(docs/ARCHITECTURE.md "Transparency log"); witnesses add cosignatures (``hotline.tlog.cosignature``).
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.tlog._text import b64decode, b64encode, check_no_controls, decode_text, parse_decimal
from hotline.tlog.merkle import HASH_SIZE, MAX_SIZE
from hotline.tlog.note import (
    MAX_NOTE_BYTES,
    Ed25519Key,
    NoteVerifier,
    PinnedNoteVerifier,
    open_note,
    parse_note,
    sign_note,
    verified_signatures,
)


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: ``origin``, ``size`` and ``root_hash``, plus opaque ``extensions`` lines.

    Raises:
        LogError: ``log.bad_checkpoint`` if a field cannot appear in a checkpoint body.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.extensions, tuple):
            raise LogError("checkpoint extensions are a tuple of lines", code=Code.LOG_BAD_CHECKPOINT)
        for what, line in (("origin", self.origin), *(("extension", e) for e in self.extensions)):
            if not isinstance(line, str) or not line or "\n" in line:
                raise LogError(f"checkpoint {what} must be a non-empty line", code=Code.LOG_BAD_CHECKPOINT)
            check_no_controls(line, what=f"checkpoint {what}", code=Code.LOG_BAD_CHECKPOINT)
        size = self.size
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
            raise LogError("checkpoint size must be an integer from 0 to 2^64-1",
                           code=Code.LOG_BAD_CHECKPOINT)
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise LogError(f"checkpoint root hash must be {HASH_SIZE} bytes", code=Code.LOG_BAD_CHECKPOINT)

    def body(self) -> str:
        """The note text: origin, size, base64 root hash, extensions; each line ends in "\\n"."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_body(cls, text: str | bytes) -> Checkpoint:
        """Parse a checkpoint note body (the text of a signed note, signatures excluded).

        Raises:
            LogError: ``log.bad_checkpoint`` for anything but a canonical checkpoint body.
        """
        text = decode_text(text, what="checkpoint", code=Code.LOG_BAD_CHECKPOINT, max_bytes=MAX_NOTE_BYTES)
        if not text.endswith("\n"):
            raise LogError("checkpoint body must end with a newline", code=Code.LOG_BAD_CHECKPOINT)
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise LogError("a checkpoint has an origin, a size and a root hash line",
                           code=Code.LOG_BAD_CHECKPOINT)
        origin, size, root, *extensions = lines
        checkpoint = cls(
            origin=origin,
            size=parse_decimal(size, what="checkpoint size", code=Code.LOG_BAD_CHECKPOINT),
            root_hash=b64decode(root, what="checkpoint root hash", code=Code.LOG_BAD_CHECKPOINT),
            extensions=tuple(extensions),
        )
        if checkpoint.body() != text:  # the parse is strict, so this cannot fail; kept as a guard
            raise LogError("checkpoint body is not canonical", code=Code.LOG_BAD_CHECKPOINT)
        return checkpoint


def sign_checkpoint(checkpoint: Checkpoint, key: Ed25519Key) -> str:
    """Sign ``checkpoint`` as the log: a signed note whose key name is the origin.

    Raises:
        LogError: ``log.bad_key`` if the origin cannot be a key name (it has a space or ``+``).
    """
    return sign_note(checkpoint.body(), name=checkpoint.origin, key=key)


def verify_checkpoint(text: str | bytes, log_verifier: NoteVerifier) -> Checkpoint:
    """Verify the log's signature on a signed checkpoint and parse it.

    Other signatures (cosignatures, rotated keys) are ignored; check cosignatures with
    ``hotline.tlog.cosignature.verify_cosignatures``.

    Args:
        text: the signed checkpoint note.
        log_verifier: the log's key; its name must be the checkpoint's origin.

    Returns:
        The checkpoint, whose size and root are now fit to verify proofs against.

    Raises:
        LogError: ``log.bad_note``/``log.unknown_key``/``log.bad_signature`` from the note,
            ``log.bad_checkpoint`` for a malformed body, ``log.wrong_origin`` if the origin is
            not the log key's name.
    """
    body, _ = open_note(text, [log_verifier])
    if isinstance(log_verifier, PinnedNoteVerifier):  # a post-quantum key pinned too: required
        note = parse_note(text)
        for other in log_verifier.also:
            if not verified_signatures(note, [other]):
                raise LogError(f"the checkpoint carries no signature by the pinned log key "
                               f"{other.name}+{other.key_id.hex()} (post-quantum): the host signs "
                               "with fewer keys than the profile pins", code=Code.LOG_UNKNOWN_KEY)
    checkpoint = Checkpoint.from_body(body)
    if checkpoint.origin != log_verifier.name:
        raise LogError(f"checkpoint origin {checkpoint.origin!r} is not the log key name "
                       f"{log_verifier.name!r}", code=Code.LOG_WRONG_ORIGIN)
    return checkpoint
