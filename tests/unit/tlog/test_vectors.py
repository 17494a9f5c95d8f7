"""tests/vectors/tlog/tlog_vectors.json: hotline's log artifacts, byte for byte.

The file is written by make_tlog_vectors.py from fixed seeds; these tests check the committed file
is what the generator makes now, and verify each artifact independently of the generator.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any

from hotline.keys import SigningKey
from hotline.tlog import (
    Checkpoint,
    CosignatureVerifier,
    NoteSigner,
    NoteVerifier,
    ProofBundle,
    leaf_hash,
    root_of,
    verify_bundle,
    verify_checkpoint,
    verify_consistency,
    verify_cosignature,
    verify_cosignatures,
    verify_inclusion,
)
from tests.unit.tlog.conftest import VECTORS


def test_generator_output_matches_the_committed_file() -> None:
    spec = importlib.util.spec_from_file_location("make_tlog_vectors", VECTORS / "make_tlog_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = json.dumps(module.build(), indent=2, ensure_ascii=False) + "\n"
    assert (VECTORS / "tlog_vectors.json").read_text(encoding="utf-8") == expected


def test_tree_vectors(ours: dict[str, Any]) -> None:
    leaves = [leaf_hash(leaf.encode()) for leaf in ours["leaves"]]
    roots = [bytes.fromhex(r) for r in ours["roots"]]
    assert [root_of(leaves[:n]) for n in range(len(leaves) + 1)] == roots
    inc = ours["inclusion"]
    verify_inclusion(leaf_hash=leaves[inc["index"]], index=inc["index"], size=inc["size"],
                     proof=[bytes.fromhex(h) for h in inc["proof"]], root=roots[inc["size"]])
    con = ours["consistency"]
    verify_consistency(old_size=con["old"], new_size=con["new"], old_root=roots[con["old"]],
                       new_root=roots[con["new"]], proof=[bytes.fromhex(h) for h in con["proof"]])


def test_signed_artifact_vectors(ours: dict[str, Any]) -> None:
    log = NoteVerifier.from_text(ours["log"]["vkey"])
    assert NoteSigner.from_text(ours["log"]["skey"]).verifier == log
    assert log.public_key == SigningKey.from_seed(bytes.fromhex(ours["log"]["seed"])).public_key.raw
    witness = CosignatureVerifier.from_text(ours["witness"]["vkey"])
    body = ours["checkpoint_body"]
    checkpoint = Checkpoint.from_body(body)
    assert checkpoint.root_hash.hex() == ours["roots"][-1]
    assert verify_checkpoint(ours["signed_checkpoint"], log) == checkpoint
    assert verify_checkpoint(ours["cosigned_checkpoint"], log) == checkpoint
    timestamp = ours["witness"]["timestamp"]
    assert verify_cosignature(ours["cosignature_line"], body, witness) == timestamp
    assert verify_cosignatures(ours["cosigned_checkpoint"], [witness]) == {witness.name: timestamp}
    leaf = ours["leaves"][ours["inclusion"]["index"]].encode()
    assert verify_bundle(ours["bundle"], leaf=leaf, log_verifier=log) == checkpoint
    assert verify_bundle(ours["bundle_with_extra"], leaf=leaf, log_verifier=log) == checkpoint
    assert ProofBundle.from_text(ours["bundle_with_extra"]).extra == b"envelope 4"
