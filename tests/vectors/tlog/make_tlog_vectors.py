"""Write tests/vectors/tlog/tlog_vectors.json: exact bytes of hotline's log artifacts.

Everything comes from fixed seeds, leaves and times, and Ed25519 is deterministic, so the output is
the same on every run. tests/unit/tlog/test_vectors.py recomputes each value and compares it byte
for byte: a change to tree hashing, the note, checkpoint, cosignature or bundle formats fails it.

external_vectors.json beside this script is not generated: it is transcribed from the sources it
names (RFC 6962 test data, the Go sumdb/note tests, the C2SP spec examples), and the tests check
that hotline reproduces or accepts each item.

Regenerate only for an intended, reviewed format change (and say so in the commit):

    python tests/vectors/tlog/make_tlog_vectors.py            # rewrite the file
    python tests/vectors/tlog/make_tlog_vectors.py --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hotline.keys import SigningKey
from hotline.tlog import (
    Checkpoint,
    CosignatureVerifier,
    Frontier,
    NoteSigner,
    ProofBundle,
    add_cosignatures,
    consistency_proof,
    cosign,
    inclusion_proof,
    leaf_hash,
    sign_checkpoint,
)

OUT = Path(__file__).with_name("tlog_vectors.json")

ORIGIN = "hotline.test/log"
LOG_SEED = bytes(range(32))
WITNESS_NAME = "hotline.test/witness/north"
WITNESS_SEED = bytes(range(32, 64))
TIMESTAMP = 1767225600  # 2026-01-01T00:00:00Z
LEAVES = [b'{"index":%d,"kind":"test","time":"2026-01-01T00:00:0%dZ"}' % (i, i) for i in range(7)]


def build() -> dict[str, Any]:
    frontier = Frontier()
    store: dict[tuple[int, int], bytes] = {}
    roots = [frontier.root().hex()]
    for leaf in LEAVES:
        for level, index, value in frontier.append(leaf_hash(leaf)):
            store[(level, index)] = value
        roots.append(frontier.root().hex())

    log_key, witness_key = SigningKey.from_seed(LOG_SEED), SigningKey.from_seed(WITNESS_SEED)
    log_signer = NoteSigner(name=ORIGIN, key=log_key)
    witness_public = witness_key.public_key.raw
    checkpoint = Checkpoint(ORIGIN, len(LEAVES), frontier.root())
    signed = sign_checkpoint(checkpoint, log_key)
    cosignature = cosign(checkpoint.body(), name=WITNESS_NAME, key=witness_key, timestamp=TIMESTAMP)
    cosigned = add_cosignatures(signed, [cosignature])
    proof4 = inclusion_proof(4, len(LEAVES), store)
    return {
        "description": "hotline transparency log: RFC 9162 tree over fixed leaves, and the C2SP "
                       "checkpoint, cosignature and tlog-proof texts made from fixed Ed25519 seeds",
        "generator": "tests/vectors/tlog/make_tlog_vectors.py",
        "leaves": [leaf.decode() for leaf in LEAVES],
        "roots": roots,
        "nodes": {f"{level},{index}": value.hex() for (level, index), value in sorted(store.items())},
        "inclusion": {"index": 4, "size": 7, "proof": [h.hex() for h in proof4]},
        "consistency": {"old": 3, "new": 7,
                        "proof": [h.hex() for h in consistency_proof(3, 7, store)]},
        "log": {"seed": LOG_SEED.hex(), "vkey": log_signer.verifier.to_text(),
                "skey": log_signer.to_text()},
        "witness": {"seed": WITNESS_SEED.hex(), "timestamp": TIMESTAMP,
                    "vkey": CosignatureVerifier(WITNESS_NAME, witness_public).to_text()},
        "checkpoint_body": checkpoint.body(),
        "signed_checkpoint": signed,
        "cosignature_line": cosignature,
        "cosigned_checkpoint": cosigned,
        "bundle": ProofBundle(4, tuple(proof4), cosigned).to_text(),
        "bundle_with_extra": ProofBundle(4, tuple(proof4), signed, extra=b"envelope 4").to_text(),
    }


def main(argv: list[str]) -> int:
    text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
    if "--check" in argv:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
