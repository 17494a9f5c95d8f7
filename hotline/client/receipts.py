"""Offline receipts: a C2SP tlog-proof bundle whose ``extra`` carries the entry's leaf bytes, so
one file proves "this exact entry is in the log at that signed checkpoint" to anyone holding the
log's verifier key. The leaf is authenticated by the inclusion proof, not by ``extra``."""

from __future__ import annotations

import base64
from typing import Any

from hotline.canonical import parse
from hotline.errors import LogError, WireError
from hotline.tlog import Checkpoint, NoteVerifier, ProofBundle, verify_bundle


def bundle_from_frame(frame: dict[str, Any]) -> ProofBundle:
    """The tlog-proof bundle for a ``receipt`` frame."""
    try:
        proof = tuple(base64.b64decode(h, validate=True) for h in frame["proof"])
        leaf = base64.b64decode(frame["leaf"], validate=True)
    except (ValueError, TypeError) as exc:
        raise LogError(f"receipt frame is malformed: {exc}", code="log.bad_bundle") from exc
    return ProofBundle(index=frame["index"], proof=proof, checkpoint_note=frame["checkpoint"],
                       extra=leaf)


def verify_receipt(text: str | bytes, log_key: NoteVerifier) -> tuple[Checkpoint, dict[str, Any]]:
    """Check a saved receipt with only the log's key.

    Returns:
        The signed checkpoint it is proven against, and the entry (parsed from the leaf).

    Raises:
        LogError: a malformed bundle, a bad checkpoint signature, a leaf not in the tree.
    """
    bundle = ProofBundle.from_text(text)
    if bundle.extra is None:
        raise LogError("this receipt carries no entry (no extra line)", code="log.bad_bundle")
    checkpoint = verify_bundle(text, leaf=bundle.extra, log_verifier=log_key)
    try:
        entry = parse(bundle.extra)
    except WireError as exc:
        raise LogError(f"the proven leaf is not an entry: {exc.message}", code="log.bad_bundle") from exc
    if not isinstance(entry, dict) or entry.get("index") != bundle.index:
        raise LogError("the proven leaf's index differs from the bundle's", code="log.bad_bundle")
    return checkpoint, entry
