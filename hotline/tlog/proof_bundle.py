"""C2SP transparency log proofs (https://c2sp.org/tlog-proof): the offline receipt. Pure.

Format (lines end in a newline)::

    c2sp.org/tlog-proof@v1
    extra <base64 opaque data>          (optional, unauthenticated)
    index <leaf index, decimal>
    <base64 inclusion proof hash>       (zero or more, leaf's sibling first)
    <empty line>
    <the signed checkpoint note, verbatim, cosignatures included>

``verify_bundle`` checks the log's signature on the checkpoint, then the inclusion of the leaf
at ``index`` in the tree of the checkpoint's size (RFC 9162 §2.1.3.2). The extra data is not
authenticated by anything: never trust it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.tlog._text import b64decode, b64encode, decode_text, parse_decimal
from hotline.tlog.checkpoint import Checkpoint, verify_checkpoint
from hotline.tlog.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from hotline.tlog.note import MAX_NOTE_BYTES, NoteVerifier, parse_note

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 64  # uint64 tree: an inclusion proof has at most 64 hashes
MAX_EXTRA_BYTES = 256 * 1024  # hotline puts the leaf here (an envelope entry is at most ~70 KiB)
MAX_BUNDLE_BYTES = MAX_NOTE_BYTES + 16 * 1024 + MAX_EXTRA_BYTES * 4 // 3


@dataclass(frozen=True)
class ProofBundle:
    """A leaf index, its inclusion proof and the signed checkpoint the proof is against.

    Raises:
        LogError: ``log.bad_bundle`` for a field that cannot appear in a bundle, or a
            ``checkpoint_note`` that is not a signed checkpoint note (signatures unchecked).
    """

    index: int
    proof: tuple[bytes, ...]
    checkpoint_note: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.index, int) or isinstance(self.index, bool) or not 0 <= self.index < 2**64:
            raise LogError("bundle index must be an integer from 0 to 2^64-1", code=Code.LOG_BAD_BUNDLE)
        if not isinstance(self.proof, tuple) or len(self.proof) > MAX_PROOF_HASHES:
            raise LogError(f"a bundle proof is a tuple of at most {MAX_PROOF_HASHES} hashes",
                           code=Code.LOG_BAD_BUNDLE)
        if not all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in self.proof):
            raise LogError(f"bundle proof hashes are {HASH_SIZE} bytes", code=Code.LOG_BAD_BUNDLE)
        if self.extra is not None and (not isinstance(self.extra, bytes)
                                       or len(self.extra) > MAX_EXTRA_BYTES):
            raise LogError(f"bundle extra data is at most {MAX_EXTRA_BYTES} bytes", code=Code.LOG_BAD_BUNDLE)
        if not isinstance(self.checkpoint_note, str):
            raise LogError("a bundle's checkpoint is a signed note", code=Code.LOG_BAD_BUNDLE)
        try:
            Checkpoint.from_body(parse_note(self.checkpoint_note).body)
        except LogError as exc:
            raise LogError(f"bundle checkpoint: {exc.message}", code=Code.LOG_BAD_BUNDLE) from exc

    def to_text(self) -> str:
        """The ``.tlog-proof`` text."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64encode(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(b64encode(h) for h in self.proof)
        return "".join(line + "\n" for line in lines) + "\n" + self.checkpoint_note

    @classmethod
    def from_text(cls, text: str | bytes) -> ProofBundle:
        """Parse a ``.tlog-proof`` text strictly (nothing is verified).

        Raises:
            LogError: ``log.bad_bundle`` for anything but a canonical bundle.
        """
        text = decode_text(text, what="proof bundle", code=Code.LOG_BAD_BUNDLE, max_bytes=MAX_BUNDLE_BYTES)
        # Every header and proof line is non-empty, so the first empty line ends them; the
        # checkpoint note after it has its own empty line before its signatures.
        split = text.find("\n\n")
        if split < 0:
            raise LogError("proof bundle has no empty line before its checkpoint", code=Code.LOG_BAD_BUNDLE)
        lines, note = text[:split].split("\n"), text[split + 2:]
        if lines[0] != HEADER:
            raise LogError(f"proof bundle must start with {HEADER}", code=Code.LOG_BAD_BUNDLE)
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = b64decode(rest.pop(0).removeprefix("extra "), what="bundle extra data",
                              code=Code.LOG_BAD_BUNDLE)
        if not rest or not rest[0].startswith("index "):
            raise LogError("proof bundle has no index line", code=Code.LOG_BAD_BUNDLE)
        index = parse_decimal(rest.pop(0).removeprefix("index "), what="bundle index",
                              code=Code.LOG_BAD_BUNDLE)
        if len(rest) > MAX_PROOF_HASHES:
            raise LogError(f"proof bundle has more than {MAX_PROOF_HASHES} hashes", code=Code.LOG_BAD_BUNDLE)
        proof = tuple(b64decode(line, what="bundle proof hash", code=Code.LOG_BAD_BUNDLE) for line in rest)
        bundle = cls(index=index, proof=proof, checkpoint_note=note, extra=extra)
        if bundle.to_text() != text:  # the parse is strict, so this cannot fail; kept as a guard
            raise LogError("proof bundle is not canonical", code=Code.LOG_BAD_BUNDLE)
        return bundle


def verify_bundle(text: str | bytes, *, leaf: bytes, log_verifier: NoteVerifier) -> Checkpoint:
    """Verify an offline receipt: ``leaf`` is in the log that ``log_verifier`` signs for.

    Args:
        text: the ``.tlog-proof`` text.
        leaf: the leaf bytes (docs/ARCHITECTURE.md "Log entries": JCS of the entry); hashed here with
            ``leaf_hash``.
        log_verifier: the log's key; its name must be the checkpoint origin.

    Returns:
        The verified checkpoint the leaf is included in. Check cosignatures on
        ``ProofBundle.from_text(text).checkpoint_note`` with ``verify_cosignatures``.

    Raises:
        LogError: ``log.bad_bundle`` for a malformed bundle; the note and checkpoint codes of
            ``verify_checkpoint``; ``log.bad_range``/``log.bad_proof`` if the proof fails.
    """
    bundle = ProofBundle.from_text(text)
    checkpoint = verify_checkpoint(bundle.checkpoint_note, log_verifier)
    verify_inclusion(leaf_hash=leaf_hash(leaf), index=bundle.index, size=checkpoint.size,
                     proof=bundle.proof, root=checkpoint.root_hash)
    return checkpoint
