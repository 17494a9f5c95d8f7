"""hotline.tlog.merkle against RFC 9162 §2.1, docs/ARCHITECTURE.md "Transparency log".

Every tree size 1..64 (all indexes, all old/new pairs) is checked against a recursive reference
written from the RFC's MTH, PATH and PROOF/SUBPROOF definitions, with the proofs built the way the
server builds them: from the complete nodes ``Frontier.append`` returns, reading only the nodes
``inclusion_nodes``/``consistency_nodes`` name. Hypothesis then covers trees of a few thousand.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errorcodes import Code
from hotline.errors import LogError
from hotline.tlog.merkle import (
    EMPTY_ROOT,
    MAX_SIZE,
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

FAST = settings(derandomize=True, database=None, deadline=None, max_examples=150)

# -- reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1, written recursively and independently ---------

LEAVES = [hashlib.sha256(b"\x00" + i.to_bytes(2, "big")).digest() for i in range(64)]


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@functools.cache
def mth(lo: int, hi: int) -> bytes:
    if hi - lo == 0:
        return hashlib.sha256(b"").digest()
    if hi - lo == 1:
        return LEAVES[lo]
    k = _split(hi - lo)
    return hashlib.sha256(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi)).digest()


def ref_path(m: int, lo: int, hi: int) -> list[bytes]:
    if hi - lo == 1:
        return []
    k = _split(hi - lo)
    if m < k:
        return [*ref_path(m, lo, lo + k), mth(lo + k, hi)]
    return [*ref_path(m - k, lo + k, hi), mth(lo, lo + k)]


def ref_subproof(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    if m == hi - lo:
        return [] if whole else [mth(lo, hi)]
    k = _split(hi - lo)
    if m <= k:
        return [*ref_subproof(m, lo, lo + k, whole), mth(lo + k, hi)]
    return [*ref_subproof(m - k, lo + k, hi, False), mth(lo, lo + k)]


def ref_proof(old: int, new: int) -> list[bytes]:
    return ref_subproof(old, 0, new, True)


# -- the server's side: a store of complete nodes, filled from Frontier.append ------------------

def build_store(leaves: list[bytes]) -> tuple[dict[Node, bytes], list[bytes]]:
    """All complete nodes of the tree over ``leaves``, and the root at every size."""
    frontier, store, roots = Frontier(), {}, [EMPTY_ROOT]
    for value in leaves:
        for level, index, node in frontier.append(value):
            assert (level, index) not in store  # complete nodes are written once
            store[(level, index)] = node
        roots.append(frontier.root())
    return store, roots


STORE, _ = build_store(LEAVES)


def only(nodes: list[Node]) -> Mapping[Node, bytes]:
    """The store restricted to ``nodes``: a proof that reads any other node raises KeyError."""
    return {node: STORE[node] for node in nodes}


def assert_complete_within(nodes: list[Node], size: int) -> None:
    assert len(set(nodes)) == len(nodes)
    for level, index in nodes:
        assert (index + 1) << level <= size, (level, index, size)
    assert len(nodes) <= 2 * size.bit_length()  # O(log n)


def raises(code: str, fn: Callable[..., Any], **kwargs: Any) -> None:
    with pytest.raises(LogError) as info:
        fn(**kwargs)
    assert info.value.code == code, info.value.message


# -- hashes and roots ---------------------------------------------------------------------------

def test_hashes_are_rfc_9162() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_rfc6962_reference_vectors(external: dict[str, Any]) -> None:
    data = external["rfc6962"]
    leaves = [leaf_hash(bytes.fromhex(h)) for h in data["leaves"]]
    store, roots = build_store(leaves)
    assert [r.hex() for r in roots] == data["roots"]
    assert [root_of(leaves[:n]).hex() for n in range(9)] == data["roots"]
    for case in data["inclusion"]:
        index, size, proof = case["index"], case["size"], [bytes.fromhex(h) for h in case["proof"]]
        assert inclusion_proof(index, size, store) == proof
        verify_inclusion(leaf_hash=leaves[index], index=index, size=size, proof=proof,
                         root=roots[size])
    for case in data["consistency"]:
        old, new, proof = case["old"], case["new"], [bytes.fromhex(h) for h in case["proof"]]
        assert consistency_proof(old, new, store) == proof
        verify_consistency(old_size=old, new_size=new, old_root=roots[old], new_root=roots[new],
                           proof=proof)


def test_roots_for_every_size_up_to_64() -> None:
    frontier = Frontier()
    assert frontier.size == 0 and frontier.root() == EMPTY_ROOT == root_of([])
    for n in range(1, 65):
        frontier.append(LEAVES[n - 1])
        assert frontier.size == n
        assert frontier.root() == mth(0, n) == root_of(LEAVES[:n])


def test_append_returns_exactly_the_new_complete_nodes() -> None:
    frontier = Frontier()
    for n in range(1, 65):
        created = frontier.append(LEAVES[n - 1])
        # A leaf completes level L iff the new size is a multiple of 2^L.
        levels = [level for level in range(7) if n % (1 << level) == 0]
        assert [(lv, ix) for lv, ix, _ in created] == [(lv, (n >> lv) - 1) for lv in levels]
        for level, index, value in created:
            assert value == mth(index << level, (index + 1) << level)


@pytest.mark.parametrize("size", range(0, 65))
def test_frontier_rebuilds_from_stored_nodes(size: int) -> None:
    wanted = frontier_nodes(size)
    assert_complete_within(wanted, max(size, 1))
    stored = only(wanted)
    frontier = Frontier.from_nodes(size, lambda level, index: stored[(level, index)])
    assert frontier.size == size and frontier.root() == mth(0, size)
    # It then carries on exactly as one that never stopped.
    for n in range(size + 1, 65):
        created = frontier.append(LEAVES[n - 1])
        assert all(STORE[(lv, ix)] == value for lv, ix, value in created)
        assert frontier.root() == mth(0, n)


# -- proofs for every index and every pair up to 64 ------------------------------------------

@pytest.mark.parametrize("size", range(1, 65))
def test_inclusion_proofs_match_the_reference(size: int) -> None:
    root = mth(0, size)
    for index in range(size):
        nodes = inclusion_nodes(index, size)
        assert_complete_within(nodes, size)
        proof = inclusion_proof(index, size, only(nodes))
        assert proof == ref_path(index, 0, size)
        verify_inclusion(leaf_hash=LEAVES[index], index=index, size=size, proof=proof, root=root)


@pytest.mark.parametrize("new", range(1, 65))
def test_consistency_proofs_match_the_reference(new: int) -> None:
    for old in range(1, new + 1):
        nodes = consistency_nodes(old, new)
        assert_complete_within(nodes, new)
        proof = consistency_proof(old, new, only(nodes))
        assert proof == ref_proof(old, new)
        verify_consistency(old_size=old, new_size=new, old_root=mth(0, old), new_root=mth(0, new),
                           proof=proof)


# -- verification failures --------------------------------------------------------------------

def flipped(proof: list[bytes], i: int, at: int = 0) -> list[bytes]:
    out = list(proof)
    out[i] = out[i][:at] + bytes([out[i][at] ^ 1]) + out[i][at + 1:]
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 13, 31, 32, 33, 64])
def test_inclusion_rejects_corruption(size: int) -> None:
    root = mth(0, size)
    for index in range(size):
        proof = ref_path(index, 0, size)
        good: dict[str, Any] = {"leaf_hash": LEAVES[index], "index": index, "size": size, "proof": proof,
                "root": root}
        for i in range(len(proof)):
            for at in (0, 31):
                raises(Code.LOG_BAD_PROOF, verify_inclusion, **{**good, "proof": flipped(proof, i, at)})
        if size > 1:
            raises(Code.LOG_BAD_PROOF, verify_inclusion, **{**good, "leaf_hash": LEAVES[index - 1]})
        raises(Code.LOG_BAD_PROOF, verify_inclusion, **{**good, "root": mth(0, size - 1)})
        raises(Code.LOG_BAD_PROOF, verify_inclusion, **{**good, "proof": [*proof, root]})
        raises(Code.LOG_BAD_PROOF, verify_inclusion, **{**good, "proof": [root, *proof]})
        if proof:
            raises(Code.LOG_BAD_PROOF, verify_inclusion, **{**good, "proof": proof[:-1]})
            raises(Code.LOG_BAD_PROOF, verify_inclusion, **{**good, "proof": proof[1:]})
            raises(Code.LOG_BAD_PROOF, verify_inclusion, **{**good, "proof": [proof[0][:31], *proof[1:]]})
        for wrong in {index - 1, index + 1, index ^ 2} - {index}:
            if 0 <= wrong < size:
                raises(Code.LOG_BAD_PROOF, verify_inclusion, **{**good, "index": wrong})
            else:
                raises(Code.LOG_BAD_RANGE, verify_inclusion, **{**good, "index": wrong})
        # A proof of (index, size) proves nothing about another size: with that size's own root
        # it fails unless it happens to be the very same proof (the size is not hashed in,
        # which is why sizes come only from signed checkpoints).
        for other in {size - 1, size + 1, size * 2, size // 2} - {size}:
            if other <= index:
                raises(Code.LOG_BAD_RANGE, verify_inclusion, **{**good, "size": other})
            elif other <= 64 and ref_path(index, 0, other) != proof:
                with pytest.raises(LogError):
                    verify_inclusion(**{**good, "size": other, "root": mth(0, other)})


def test_inclusion_edge_cases() -> None:
    leaf, root = LEAVES[0], LEAVES[0]
    verify_inclusion(leaf_hash=leaf, index=0, size=1, proof=[], root=root)
    raises(Code.LOG_BAD_RANGE, verify_inclusion, leaf_hash=leaf, index=0, size=0, proof=[], root=EMPTY_ROOT)
    raises(Code.LOG_BAD_RANGE, verify_inclusion, leaf_hash=leaf, index=1, size=1, proof=[], root=root)
    raises(Code.LOG_BAD_RANGE, verify_inclusion, leaf_hash=leaf, index=-1, size=1, proof=[], root=root)
    raises(Code.LOG_BAD_RANGE, verify_inclusion, leaf_hash=leaf, index=0, size=MAX_SIZE + 1, proof=[],
           root=root)
    raises(Code.LOG_BAD_RANGE, verify_inclusion, leaf_hash=leaf, index=True, size=2, proof=[], root=root)
    raises(Code.LOG_BAD_PROOF, verify_inclusion, leaf_hash=leaf[:31], index=0, size=1, proof=[], root=root)
    raises(Code.LOG_BAD_PROOF, verify_inclusion, leaf_hash=leaf, index=0, size=1, proof=[], root=b"")
    raises(Code.LOG_BAD_PROOF, verify_inclusion, leaf_hash=leaf, index=0, size=1, proof=[root], root=root)
    raises(Code.LOG_BAD_PROOF, verify_inclusion, leaf_hash=leaf, index=0, size=2, proof="x" * 32,
           root=root)
    # The largest tree: 64 hashes, each length-checked before any hashing.
    raises(Code.LOG_BAD_PROOF, verify_inclusion, leaf_hash=leaf, index=MAX_SIZE - 1, size=MAX_SIZE,
           proof=[root] * 64, root=root)
    raises(Code.LOG_BAD_PROOF, verify_inclusion, leaf_hash=leaf, index=MAX_SIZE - 1, size=MAX_SIZE,
           proof=[root] * 65, root=root)


@pytest.mark.parametrize(("old", "new"), [(1, 2), (1, 8), (2, 5), (3, 7), (4, 8), (6, 7), (6, 8),
                                          (7, 8), (5, 13), (31, 33), (32, 64), (33, 64), (63, 64)])
def test_consistency_rejects_corruption(old: int, new: int) -> None:
    proof = ref_proof(old, new)
    old_root, new_root = mth(0, old), mth(0, new)
    good: dict[str, Any] = {"old_size": old, "new_size": new, "old_root": old_root, "new_root": new_root,
            "proof": proof}
    for i in range(len(proof)):
        for at in (0, 31):
            raises(Code.LOG_INCONSISTENT, verify_consistency, **{**good, "proof": flipped(proof, i, at)})
    raises(Code.LOG_INCONSISTENT, verify_consistency, **{**good, "old_root": new_root, "new_root": old_root})
    raises(Code.LOG_INCONSISTENT, verify_consistency, **{**good, "old_root": mth(0, old - 1)})
    raises(Code.LOG_INCONSISTENT, verify_consistency, **{**good, "new_root": mth(0, new - 1)})
    raises(Code.LOG_BAD_PROOF, verify_consistency, **{**good, "proof": []})
    raises(Code.LOG_BAD_PROOF, verify_consistency, **{**good, "proof": [*proof, old_root]})
    raises(Code.LOG_BAD_PROOF, verify_consistency, **{**good, "proof": [new_root, *proof]})
    raises(Code.LOG_BAD_PROOF, verify_consistency, **{**good, "proof": proof[:-1]})
    raises(Code.LOG_BAD_PROOF, verify_consistency, **{**good, "proof": [proof[0] + b"\x00", *proof[1:]]})
    raises(Code.LOG_BAD_RANGE, verify_consistency, **{**good, "old_size": 0, "old_root": EMPTY_ROOT})
    raises(Code.LOG_BAD_RANGE, verify_consistency, **{**good, "old_size": new + 1})
    raises(Code.LOG_BAD_RANGE, verify_consistency, **{**good, "old_size": new, "new_size": old})
    for other_old, other_new in [(old - 1, new), (old + 1, new), (old ^ 2, new), (old, new - 1),
                                 (old, new + 1), (old, new * 2), (old, new // 2)]:
        if (other_old, other_new) == (old, new):
            continue
        if not 0 < other_old <= other_new:
            with pytest.raises(LogError):
                verify_consistency(**{**good, "old_size": other_old, "new_size": other_new})
        elif other_new <= 64 and ref_proof(other_old, other_new) != proof:
            with pytest.raises(LogError):
                verify_consistency(**{**good, "old_size": other_old, "new_size": other_new,
                                      "old_root": mth(0, other_old), "new_root": mth(0, other_new)})


def test_consistency_edge_cases() -> None:
    a, b = mth(0, 3), mth(0, 4)
    verify_consistency(old_size=3, new_size=3, old_root=a, new_root=a, proof=[])
    raises(Code.LOG_INCONSISTENT, verify_consistency, old_size=3, new_size=3, old_root=a, new_root=b,
           proof=[])
    raises(Code.LOG_BAD_PROOF, verify_consistency, old_size=3, new_size=3, old_root=a, new_root=a,
           proof=[a])
    # docs/ARCHITECTURE.md "Transparency log": a consistency proof from size 0 is refused, even the RFC's
    # empty one.
    raises(Code.LOG_BAD_RANGE, verify_consistency, old_size=0, new_size=3, old_root=EMPTY_ROOT,
           new_root=a, proof=[])
    raises(Code.LOG_BAD_RANGE, verify_consistency, old_size=0, new_size=0, old_root=EMPTY_ROOT,
           new_root=EMPTY_ROOT, proof=[])
    raises(Code.LOG_BAD_RANGE, verify_consistency, old_size=4, new_size=3, old_root=b, new_root=a,
           proof=[])
    raises(Code.LOG_BAD_PROOF, verify_consistency, old_size=3, new_size=4, old_root=a[:16],
           new_root=b, proof=ref_proof(3, 4))
    raises(Code.LOG_BAD_PROOF, verify_consistency, old_size=3, new_size=4, old_root=a, new_root=None,
           proof=ref_proof(3, 4))


def test_proof_generation_edge_cases() -> None:
    raises(Code.LOG_BAD_RANGE, inclusion_nodes, index=0, size=0)
    raises(Code.LOG_BAD_RANGE, inclusion_nodes, index=5, size=5)
    raises(Code.LOG_BAD_RANGE, consistency_nodes, old_size=0, new_size=5)
    raises(Code.LOG_BAD_RANGE, consistency_nodes, old_size=6, new_size=5)
    raises(Code.LOG_BAD_RANGE, frontier_nodes, size=-1)
    assert consistency_nodes(5, 5) == [] and consistency_proof(5, 5, {}) == []
    raises(Code.LOG_BAD_NODE, inclusion_proof, index=3, size=65, nodes=STORE)  # beyond the store
    raises(Code.LOG_BAD_NODE, inclusion_proof, index=0, size=2, nodes={**STORE, (0, 1): b"short"})
    raises(Code.LOG_BAD_NODE, Frontier.from_nodes, size=3, get=lambda level, index: b"")
    raises(Code.LOG_BAD_PROOF, Frontier().append, leaf_hash=b"x" * 31)
    raises(Code.LOG_BAD_PROOF, leaf_hash, leaf="text")


# -- properties over larger trees ---------------------------------------------------------------

BIG = 3000
BIG_LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(BIG)]
BIG_STORE, BIG_ROOTS = build_store(BIG_LEAVES)


@FAST
@given(st.data())
def test_inclusion_round_trips(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, BIG), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(index, size, {n: BIG_STORE[n] for n in inclusion_nodes(index, size)})
    verify_inclusion(leaf_hash=BIG_LEAVES[index], index=index, size=size, proof=proof,
                     root=BIG_ROOTS[size])
    wrong = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="wrong index") \
        if size > 1 else None
    if wrong is not None:
        with pytest.raises(LogError):
            verify_inclusion(leaf_hash=BIG_LEAVES[index], index=wrong, size=size, proof=proof,
                             root=BIG_ROOTS[size])


@FAST
@given(st.data())
def test_consistency_round_trips(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, BIG), label="new")
    old = data.draw(st.integers(1, new), label="old")
    proof = consistency_proof(old, new, {n: BIG_STORE[n] for n in consistency_nodes(old, new)})
    verify_consistency(old_size=old, new_size=new, old_root=BIG_ROOTS[old],
                       new_root=BIG_ROOTS[new], proof=proof)
    if old < new:
        with pytest.raises(LogError):
            verify_consistency(old_size=old, new_size=new, old_root=BIG_ROOTS[old - 1] if old > 1
                               else BIG_ROOTS[new], new_root=BIG_ROOTS[new], proof=proof)


def test_frontier_memory_is_logarithmic() -> None:
    frontier = Frontier.from_nodes(BIG, lambda level, index: BIG_STORE[(level, index)])
    assert frontier.root() == BIG_ROOTS[BIG]
    assert len(frontier._nodes) == BIG.bit_count()


GARBAGE = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=4),
                    st.binary(max_size=40))
SIZES = st.one_of(st.integers(-3, 70), st.integers(MAX_SIZE - 3, MAX_SIZE + 3),
                  st.integers(-2**70, 2**70), GARBAGE)
HASHES = st.one_of(st.binary(min_size=32, max_size=32), st.sampled_from(BIG_ROOTS[:70]), GARBAGE)
PROOFS = st.one_of(st.lists(HASHES, max_size=10), st.lists(st.sampled_from(BIG_ROOTS[:70]), max_size=10),
                   GARBAGE)


@FAST
@given(index=SIZES, size=SIZES, leaf=HASHES, root=HASHES, proof=PROOFS)
def test_malformed_inclusion_raises_log_error_only(index: Any, size: Any, leaf: Any, root: Any,
                                                   proof: Any) -> None:
    try:
        verify_inclusion(leaf_hash=leaf, index=index, size=size, proof=proof, root=root)
    except LogError:
        pass
    for call in (lambda: inclusion_nodes(index, size), lambda: inclusion_proof(index, size, BIG_STORE)):
        try:
            call()
        except LogError:
            pass


@FAST
@given(old=SIZES, new=SIZES, old_root=HASHES, new_root=HASHES, proof=PROOFS)
def test_malformed_consistency_raises_log_error_only(old: Any, new: Any, old_root: Any,
                                                     new_root: Any, proof: Any) -> None:
    try:
        verify_consistency(old_size=old, new_size=new, old_root=old_root, new_root=new_root,
                           proof=proof)
    except LogError:
        pass
    for call in (lambda: consistency_nodes(old, new), lambda: consistency_proof(old, new, BIG_STORE),
                 lambda: Frontier.from_nodes(old, lambda level, index: BIG_STORE[(level, index)])):
        try:
            call()
        except LogError:
            pass


def test_a_frontiers_copy_grows_on_its_own() -> None:
    leaves = [leaf_hash(bytes([n])) for n in range(7)]
    original = Frontier()
    for leaf in leaves[:5]:
        original.append(leaf)
    twin = original.copy()
    for leaf in leaves[5:]:
        twin.append(leaf)
    assert original.size == 5 and original.root() == root_of(leaves[:5])
    assert twin.size == 7 and twin.root() == root_of(leaves)
