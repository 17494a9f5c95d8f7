"""The transparency log's pure core (docs/ARCHITECTURE.md "Transparency log"): hashes, proofs, signed notes,
checkpoints,
cosignatures and offline receipts. No I/O, no clock (times are arguments), no randomness.

Theory of operation:
- Every log entry's leaf bytes are hashed into an RFC 9162 §2.1 Merkle tree (``merkle``). The
  store keeps each complete subtree's hash, addressed ``(level, index)``; a ``Frontier`` of
  O(log n) hashes appends and gives the root; proofs name the O(log n) nodes they need
  (``inclusion_nodes``, ``consistency_nodes``) so the store fetches them in one query.
- The log publishes its tree head as a C2SP checkpoint (``checkpoint``: origin, size, root),
  signed as a C2SP signed note (``note``) with its Ed25519 key, whose key name is the origin.
- Witnesses (the parties' agents) append C2SP ``cosignature/v1`` lines (``cosignature``) after
  checking consistency with the last checkpoint they cosigned.
- A sender's offline receipt is a C2SP tlog-proof bundle (``proof_bundle``): index, inclusion
  proof and the cosigned checkpoint, checkable with the log's key alone.
- Verifiers take sizes and roots only from checkpoints whose signature they verified; they return
  None and raise ``hotline.errors.LogError`` (codes ``Code.LOG_*`` of ``hotline.errorcodes``) on
  any failure or malformed input, never another exception.

Specifications:
- RFC 9162 §2.1 (Merkle trees, inclusion and consistency proofs):
  https://www.rfc-editor.org/rfc/rfc9162#section-2.1
- https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint,
  https://c2sp.org/tlog-cosignature (Ed25519 ``cosignature/v1`` only), https://c2sp.org/tlog-proof
"""

from hotline.tlog.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from hotline.tlog.cosignature import (
    CosignatureVerifier,
    add_cosignatures,
    cosign,
    cosigned_message,
    split_cosignatures,
    verify_cosignature,
    verify_cosignatures,
)
from hotline.tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    Frontier,
    Node,
    consistency_nodes,
    consistency_proof,
    frontier_nodes,
    inclusion_nodes,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from hotline.tlog.note import (
    Ed25519Key,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    PinnedNoteVerifier,
    Verifier,
    open_note,
    parse_note,
    sign_note,
)
from hotline.tlog.proof_bundle import ProofBundle, verify_bundle

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Checkpoint",
    "CosignatureVerifier",
    "Ed25519Key",
    "Frontier",
    "Node",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "PinnedNoteVerifier",
    "ProofBundle",
    "Verifier",
    "add_cosignatures",
    "consistency_nodes",
    "consistency_proof",
    "cosign",
    "cosigned_message",
    "frontier_nodes",
    "inclusion_nodes",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_note",
    "parse_note",
    "root_of",
    "sign_checkpoint",
    "sign_note",
    "split_cosignatures",
    "verify_bundle",
    "verify_checkpoint",
    "verify_consistency",
    "verify_cosignature",
    "verify_cosignatures",
    "verify_inclusion",
]
