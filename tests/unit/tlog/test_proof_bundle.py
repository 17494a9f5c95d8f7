"""hotline.tlog.proof_bundle: C2SP tlog-proof offline receipts (c2sp.org/tlog-proof)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.keys import SigningKey
from hotline.tlog.checkpoint import Checkpoint, sign_checkpoint
from hotline.tlog.cosignature import add_cosignatures, cosign
from hotline.tlog.merkle import Frontier, Node, inclusion_proof, leaf_hash
from hotline.tlog.note import NoteVerifier
from hotline.tlog.proof_bundle import HEADER, ProofBundle, verify_bundle

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=200)
LOG = SigningKey.from_seed(bytes([11]) * 32)
WITNESS = SigningKey.from_seed(bytes([12]) * 32)
ORIGIN = "hotline.test/log"
LOG_KEY = NoteVerifier(ORIGIN, LOG.public_key.raw)
LEAVES = [b"entry %d" % i for i in range(6)]


def make_log() -> tuple[dict[Node, bytes], Checkpoint, str]:
    frontier, store = Frontier(), {}
    for leaf in LEAVES:
        store.update({(lv, ix): h for lv, ix, h in frontier.append(leaf_hash(leaf))})
    checkpoint = Checkpoint(ORIGIN, frontier.size, frontier.root())
    return store, checkpoint, sign_checkpoint(checkpoint, LOG)


STORE, CHECKPOINT, SIGNED = make_log()


def bundle(index: int, note: str = SIGNED, extra: bytes | None = None) -> ProofBundle:
    return ProofBundle(index, tuple(inclusion_proof(index, len(LEAVES), STORE)), note, extra)


def code_of(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(LogError) as info:
        fn(*args, **kwargs)
    return info.value.code


def test_text_format() -> None:
    b = bundle(5, extra=b"hi")
    lines = b.to_text().split("\n")
    assert lines[:3] == [HEADER, "extra aGk=", "index 5"]
    assert len(b.proof) == 2 and lines[5] == ""
    assert "\n".join(lines[6:]) == SIGNED
    assert bundle(5).to_text().startswith(f"{HEADER}\nindex 5\n")


@pytest.mark.parametrize("index", range(len(LEAVES)))
def test_round_trip_and_verify(index: int) -> None:
    for extra in (None, b"", b"envelope id"):
        b = bundle(index, extra=extra)
        text = b.to_text()
        assert ProofBundle.from_text(text) == b
        assert ProofBundle.from_text(text.encode()) == b
        assert verify_bundle(text, leaf=LEAVES[index], log_verifier=LOG_KEY) == CHECKPOINT


def test_cosigned_checkpoint_is_carried_verbatim() -> None:
    note = add_cosignatures(SIGNED, [cosign(CHECKPOINT.body(), name="w", key=WITNESS, timestamp=1)])
    b = bundle(2, note)
    assert ProofBundle.from_text(b.to_text()).checkpoint_note == note
    assert verify_bundle(b.to_text(), leaf=LEAVES[2], log_verifier=LOG_KEY) == CHECKPOINT


def test_a_bundle_for_a_one_leaf_tree_has_no_proof_lines() -> None:
    frontier = Frontier()
    frontier.append(leaf_hash(b"only"))
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, frontier.root()), LOG)
    text = ProofBundle(0, (), note).to_text()
    assert text.startswith(f"{HEADER}\nindex 0\n\n")
    assert verify_bundle(text, leaf=b"only", log_verifier=LOG_KEY).size == 1


def test_verification_failures() -> None:
    text = bundle(3).to_text()
    assert code_of(verify_bundle, text, leaf=LEAVES[2], log_verifier=LOG_KEY) == Code.LOG_BAD_PROOF
    other = NoteVerifier(ORIGIN, WITNESS.public_key.raw)
    assert code_of(verify_bundle, text, leaf=LEAVES[3], log_verifier=other) == Code.LOG_UNKNOWN_KEY
    beyond = ProofBundle(6, bundle(3).proof, SIGNED).to_text()
    assert code_of(verify_bundle, beyond, leaf=LEAVES[3], log_verifier=LOG_KEY) == Code.LOG_BAD_RANGE
    moved = ProofBundle(2, bundle(3).proof, SIGNED).to_text()
    assert code_of(verify_bundle, moved, leaf=LEAVES[3], log_verifier=LOG_KEY) == Code.LOG_BAD_PROOF


@pytest.mark.parametrize("text", [
    "",
    f"{HEADER}\n",
    f"{HEADER}\nindex 0\n",  # no blank line, no checkpoint
    f"{HEADER}\nindex 0\n\n",  # blank line, no checkpoint
    f"c2sp.org/tlog-proof@v2\nindex 0\n\n{SIGNED}",
    f"{HEADER}\nindex 00\n\n{SIGNED}",
    f"{HEADER}\nindex -1\n\n{SIGNED}",
    f"{HEADER}\nindex 18446744073709551616\n\n{SIGNED}",
    f"{HEADER}\nindex  1\n\n{SIGNED}",
    f"{HEADER}\nindex\n\n{SIGNED}",
    f"{HEADER}\n\nindex 0\n\n{SIGNED}",
    f"{HEADER}\nextra !!\nindex 0\n\n{SIGNED}",
    f"{HEADER}\nextra aGk\nindex 0\n\n{SIGNED}",
    f"{HEADER}\nindex 0\nextra aGk=\n\n{SIGNED}",
    f"{HEADER}\nextra aGk=\nextra aGk=\nindex 0\n\n{SIGNED}",
    f"{HEADER}\nindex 0\nAAAA\n\n{SIGNED}",  # a 3-byte hash
    f"{HEADER}\nindex 0\n{'A' * 43}=\n{'A' * 43}\n\n{SIGNED}",
    f"{HEADER}\nindex 0\n" + f"{'A' * 43}=\n" * 65 + f"\n{SIGNED}",
    f"{HEADER}\r\nindex 0\r\n\r\n{SIGNED}",
    f"{HEADER}\nindex 0\n\nnot a note\n",
    f"{HEADER}\nindex 0\n\nnot a checkpoint\n\n— {ORIGIN} AAAAAAAAAAAAAAAA\n",
    f"{HEADER}\nindex 0\n\n\n{SIGNED}",
])
def test_malformed_bundles_are_refused(text: str) -> None:
    assert code_of(ProofBundle.from_text, text) == Code.LOG_BAD_BUNDLE
    assert code_of(verify_bundle, text, leaf=LEAVES[0], log_verifier=LOG_KEY) == Code.LOG_BAD_BUNDLE


def test_constructor_refuses_bad_fields() -> None:
    proof = bundle(1).proof
    for args in [(-1, proof, SIGNED), (2**64, proof, SIGNED), (1, list(proof), SIGNED),
                 (1, (b"x",), SIGNED), (1, proof, "not a note"), (1, proof, SIGNED.encode()),
                 (1, (proof[0],) * 65, SIGNED), (1, proof, SIGNED, "extra")]:
        assert code_of(ProofBundle, *args) == Code.LOG_BAD_BUNDLE


def test_every_one_byte_alteration_is_refused() -> None:
    """Flip, blank or replace each byte of a small receipt: each result raises LogError."""
    data = bundle(4).to_text().encode()
    assert verify_bundle(data, leaf=LEAVES[4], log_verifier=LOG_KEY) == CHECKPOINT
    for at in range(len(data)):
        for new in {data[at] ^ 0x01, data[at] ^ 0x20, data[at] ^ 0x80, 0x0A, 0x20, 0x41} - {data[at]}:
            altered = data[:at] + bytes([new]) + data[at + 1:]
            with pytest.raises(LogError):
                verify_bundle(altered, leaf=LEAVES[4], log_verifier=LOG_KEY)
        dropped = data[:at] + data[at + 1:]
        with pytest.raises(LogError):
            verify_bundle(dropped, leaf=LEAVES[4], log_verifier=LOG_KEY)


def test_the_extra_data_is_not_authenticated() -> None:
    """tlog-proof: "Applications MUST NOT implicitly trust the extra data"; changing it is not
    detected, which is why verify_bundle does not return it."""
    text = bundle(4, extra=b"envelope A").to_text()
    forged = text.replace("extra ZW52ZWxvcGUgQQ==", "extra ZW52ZWxvcGUgQg==")  # "envelope B"
    assert forged != text
    assert verify_bundle(forged, leaf=LEAVES[4], log_verifier=LOG_KEY) == CHECKPOINT


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_log_error_only(data: bytes) -> None:
    for candidate in (data, HEADER.encode() + b"\n" + data, bundle(1).to_text().encode()[:200] + data):
        try:
            verify_bundle(candidate, leaf=LEAVES[1], log_verifier=LOG_KEY)
        except LogError:
            pass
