"""Offline receipts: a C2SP tlog-proof bundle whose ``extra`` carries the entry's leaf bytes, so
one file proves "this exact entry is in the log at that signed checkpoint" to anyone holding the
log's verifier key. The leaf is authenticated by the inclusion proof, not by ``extra``.

The server pushes a receipt as soon as a checkpoint covers the entry, before any witness could
cosign that checkpoint: ``cosigners`` says which named witnesses did, so no output calls a
receipt cosigned that is not."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from hotline.entries import Entry, EntryError, decode_leaf
from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.roster import Roster
from hotline.tlog import Checkpoint, NoteVerifier, ProofBundle, verify_bundle
from hotline.tlog.note import parse_note
from hotline.wire.frames import Receipt
from hotline.witnesses import named_witnesses, verify_line, witness_keys


def bundle_from_frame(frame: Receipt) -> ProofBundle:
    """The tlog-proof bundle for a ``receipt`` frame."""
    try:
        proof = tuple(base64.b64decode(h, validate=True) for h in frame.proof)
        leaf = base64.b64decode(frame.leaf, validate=True)
    except ValueError as exc:  # binascii.Error: not base64
        raise LogError(f"receipt frame is malformed: {exc}", code=Code.LOG_BAD_BUNDLE) from exc
    return ProofBundle(index=frame.index, proof=proof, checkpoint_note=frame.checkpoint, extra=leaf)


def verify_receipt(text: str | bytes, log_key: NoteVerifier) -> tuple[Checkpoint, Entry]:
    """Check a saved receipt with only the log's key.

    Returns:
        The signed checkpoint it is proven against, and the entry (parsed from the leaf).

    Raises:
        LogError: a malformed bundle, a bad checkpoint signature, a leaf not in the tree.
    """
    bundle = ProofBundle.from_text(text)
    if bundle.extra is None:
        raise LogError("this receipt carries no entry (no extra line)", code=Code.LOG_BAD_BUNDLE)
    checkpoint = verify_bundle(text, leaf=bundle.extra, log_verifier=log_key)
    try:
        entry = decode_leaf(bundle.extra)
    except EntryError as exc:
        raise LogError(f"the proven leaf is not an entry: {exc.message}", code=Code.LOG_BAD_BUNDLE) from exc
    if entry.index != bundle.index:
        raise LogError("the proven leaf's index differs from the bundle's", code=Code.LOG_BAD_BUNDLE)
    return checkpoint, entry


@dataclass(frozen=True)
class Cosigned:
    """Which of the witnesses the agreements name cosigned a receipt's checkpoint."""

    by: tuple[str, ...]  # labels (party/member) of the named witnesses whose line verified
    named: tuple[str, ...]  # labels of every witness the channel's agreement names

    def describe(self) -> str:
        """In words, for the line that reports the proof."""
        if not self.named:
            return "no witness is named by the agreement"
        if not self.by:
            return (f"NOT cosigned yet by any of the {len(self.named)} witnesses the agreement "
                    "names (they cosign later checkpoints; `hotline audit verify` checks them)")
        return (f"cosigned by {len(self.by)} of the {len(self.named)} witnesses the agreement "
                f"names ({', '.join(self.by)})")


def cosigners(receipt: str, roster: Roster, channel: str) -> Cosigned:
    """The named witnesses (of ``channel``'s agreement, as ``roster`` built from the pinned
    authorities knows their keys) whose cosignature on the receipt's checkpoint verifies. A
    line that does not verify counts for nobody."""
    named = named_witnesses(roster, [channel])
    slots = witness_keys(roster, named)
    note = parse_note(ProofBundle.from_text(receipt).checkpoint_note)
    by: set[str] = set()
    for signature in note.signatures:
        try:
            found = verify_line(signature, note.body, slots)
        except LogError:
            continue
        if found is not None:
            by.add(found[0].witness.label)
    return Cosigned(tuple(sorted(by)), tuple(w.label for w in named))
