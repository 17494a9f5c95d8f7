"""Stable ``LogError`` codes raised by ``hotline.tlog``.

They are part of the wire contract (docs/ARCHITECTURE.md "Error codes"): clients, auditors and tests match on
them.
"""

from __future__ import annotations

BAD_RANGE = "log.bad_range"
"""Index or sizes that no proof can exist for: index >= size, old size 0 or > new size, > 2^64-1."""

BAD_PROOF = "log.bad_proof"
"""A proof of the wrong length or hash size, or an inclusion proof that does not lead to the root."""

INCONSISTENT = "log.inconsistent"
"""A consistency proof does not show the old root is a prefix of the new one (or equal sizes differ)."""

BAD_NODE = "log.bad_node"
"""A stored tree node the proof needs is missing or is not a 32-byte hash (store corruption)."""

BAD_NOTE = "log.bad_note"
"""Signed-note text that breaks the c2sp.org/signed-note grammar or size limits."""

BAD_KEY = "log.bad_key"
"""A malformed verifier/signer key string, key name or key object."""

UNKNOWN_KEY = "log.unknown_key"
"""No signature in the note is from a key the caller trusts."""

BAD_SIGNATURE = "log.bad_signature"
"""A signature from a trusted key does not verify."""

BAD_CHECKPOINT = "log.bad_checkpoint"
"""A checkpoint body that breaks c2sp.org/tlog-checkpoint."""

WRONG_ORIGIN = "log.wrong_origin"
"""A checkpoint's origin line is not the name of the log key that signed it."""

BAD_COSIGNATURE = "log.bad_cosignature"
"""A cosignature line that breaks c2sp.org/tlog-cosignature (length, timestamp range)."""

BAD_BUNDLE = "log.bad_bundle"
"""A proof bundle that breaks c2sp.org/tlog-proof."""
