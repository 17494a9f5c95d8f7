"""RFC 9162 §2.1 Merkle tree hashes, proofs and proof verification. Pure: no I/O, no clock.

Theory of operation:
- Leaf hash ``SHA-256(0x00 || leaf)``, node hash ``SHA-256(0x01 || left || right)``, the empty
  tree's root ``SHA-256("")`` (RFC 9162 §2.1.1), so any RFC 6962/9162 verifier checks our proofs.
- The store keeps the hash of every *complete* subtree: node ``(level, index)`` is the root of
  leaves ``[index * 2^level, (index + 1) * 2^level)``. A complete node never changes, so the store
  is append-only, and an append writes one node per level it completes (``Frontier.append``).
- Every subtree the RFC algorithms name (``MTH(D[a:b])`` in PATH, §2.1.3.1, and SUBPROOF, §2.1.4.1)
  starts at a multiple of the smallest power of two >= its width ``b - a``. Such a range splits,
  left to right, into complete nodes of strictly decreasing size (the set bits of ``b - a``), and
  its hash is the right fold ``H(n1, H(n2, ... nk))`` of theirs, because MTH splits at the largest
  power of two. Only a range that ends at the tree size can be incomplete, so a proof needs
  O(log n) complete nodes, which ``inclusion_nodes`` and ``consistency_nodes`` name up front for
  one store query.
- The ``Frontier`` is that split of ``[0, size)``: one node per set bit of ``size``, O(log n).
- Verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2, after checking the proof length the sizes
  imply, so a proof that does not fit its sizes fails before any hashing. Per docs/ARCHITECTURE.md
  "Transparency log", a
  consistency proof from size 0 is refused (RFC 9162 would accept any empty proof for it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hotline.errorcodes import Code
from hotline.errors import LogError

HASH_SIZE = 32
MAX_SIZE = 2**64 - 1  # tree sizes and indexes are uint64 (RFC 9162 §2.1.1)
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]
"""A complete subtree ``(level, index)``: leaves ``[index * 2^level, (index + 1) * 2^level)``."""


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)`` (RFC 9162 §2.1.1).

    Raises:
        LogError: ``log.bad_proof`` if ``leaf`` is not bytes.
    """
    if not isinstance(leaf, bytes):
        raise LogError("a leaf is bytes", code=Code.LOG_BAD_PROOF)
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class Frontier:
    """The right border of the tree (a compact range): the complete nodes covering ``[0, size)``.

    Holds one hash per set bit of ``size``, so O(log n) memory; enough to append and to give the
    root at the current size.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._nodes: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing

    @property
    def size(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"

    @classmethod
    def from_nodes(cls, size: int, get: Callable[[int, int], bytes]) -> Frontier:
        """Rebuild the frontier of a stored tree, e.g. at startup.

        Args:
            size: the stored tree size.
            get: returns the stored hash of complete node ``(level, index)``, or raises
                ``KeyError``; it is called for ``frontier_nodes(size)`` only.

        Raises:
            LogError: ``log.bad_range`` for an impossible size, ``log.bad_node`` if a node is
                missing or is not a 32-byte hash.
        """
        frontier = cls()
        for level, index in frontier_nodes(size):
            try:
                value = get(level, index)
            except KeyError as exc:
                raise LogError(f"stored tree has no node {(level, index)}", code=Code.LOG_BAD_NODE) from exc
            frontier._nodes.append((level, _stored(value, (level, index))))
        frontier._size = size
        return frontier

    def copy(self) -> Frontier:
        twin = Frontier()
        twin._size, twin._nodes = self._size, list(self._nodes)
        return twin

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash.

        Returns:
            The complete nodes this append creates, as ``(level, index, hash)``, the leaf itself
            (level 0) first: exactly the rows the store must add.

        Raises:
            LogError: ``log.bad_proof`` if ``leaf_hash`` is not 32 bytes, ``log.bad_range`` if the
                tree is full.
        """
        _check_hash(leaf_hash, "leaf hash")
        if self._size == MAX_SIZE:
            raise LogError("the tree is full", code=Code.LOG_BAD_RANGE)
        self._size += 1
        level, value = 0, leaf_hash
        created = [(0, self._size - 1, value)]
        while self._nodes and self._nodes[-1][0] == level:
            value = node_hash(self._nodes.pop()[1], value)
            level += 1
            created.append((level, (self._size >> level) - 1, value))
        self._nodes.append((level, value))
        return created

    def root(self) -> bytes:
        """MTH of the leaves so far (``EMPTY_ROOT`` for none)."""
        if not self._nodes:
            return EMPTY_ROOT
        return _fold([value for _, value in self._nodes])


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes (RFC 9162 §2.1.1), for small trees and verifiers.

    Raises:
        LogError: ``log.bad_proof`` if an item is not a 32-byte hash.
    """
    frontier = Frontier()
    for value in leaf_hashes:
        frontier.append(value)
    return frontier.root()


def frontier_nodes(size: int) -> list[Node]:
    """The complete nodes whose right fold is the root at ``size``, largest first.

    Raises:
        LogError: ``log.bad_range`` for a negative or too large size.
    """
    _check_size(size, "size", allow_zero=True)
    return _range_nodes(0, size)


def inclusion_nodes(index: int, size: int) -> list[Node]:
    """Which stored nodes ``inclusion_proof(index, size, ...)`` reads.

    Raises:
        LogError: ``log.bad_range`` unless ``0 <= index < size``.
    """
    _check_index(index, size)
    return [node for lo, hi in _inclusion_ranges(index, size) for node in _range_nodes(lo, hi)]


def consistency_nodes(old_size: int, new_size: int) -> list[Node]:
    """Which stored nodes ``consistency_proof(old_size, new_size, ...)`` reads.

    Raises:
        LogError: ``log.bad_range`` unless ``0 < old_size <= new_size``.
    """
    _check_sizes(old_size, new_size)
    return [node for lo, hi in _consistency_ranges(old_size, new_size)
            for node in _range_nodes(lo, hi)]


def inclusion_proof(index: int, size: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """The RFC 9162 §2.1.3.1 inclusion proof (``PATH``) of leaf ``index`` in the tree of ``size``.

    Args:
        index: the leaf.
        size: the tree size the proof is for (at most the stored size).
        nodes: stored complete nodes, holding at least ``inclusion_nodes(index, size)``.

    Returns:
        The hashes from the leaf's sibling up to a child of the root.

    Raises:
        LogError: ``log.bad_range`` unless ``0 <= index < size``; ``log.bad_node`` if a needed
            node is missing or malformed.
    """
    _check_index(index, size)
    return [_range_hash(lo, hi, nodes) for lo, hi in _inclusion_ranges(index, size)]


def consistency_proof(old_size: int, new_size: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """The RFC 9162 §2.1.4.1 consistency proof (``PROOF``) from ``old_size`` to ``new_size``.

    Args:
        old_size: the earlier tree size, at least 1 (docs/ARCHITECTURE.md "Transparency log").
        new_size: the later tree size (at most the stored size).
        nodes: stored complete nodes, holding at least ``consistency_nodes(old_size, new_size)``.

    Returns:
        The proof hashes; empty when the sizes are equal.

    Raises:
        LogError: ``log.bad_range`` unless ``0 < old_size <= new_size``; ``log.bad_node`` if a
            needed node is missing or malformed.
    """
    _check_sizes(old_size, new_size)
    return [_range_hash(lo, hi, nodes) for lo, hi in _consistency_ranges(old_size, new_size)]


def verify_inclusion(*, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2, after checking the proof has the length ``index`` and ``size`` imply.
    Take ``size`` and ``root`` only from a checkpoint whose signature you verified (docs/ARCHITECTURE.md
    "Transparency log").

    Raises:
        LogError: ``log.bad_range`` unless ``0 <= index < size``; ``log.bad_proof`` for a hash that
            is not 32 bytes, a proof of the wrong length, or one that does not lead to ``root``.
    """
    _check_index(index, size)
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root")
    path = _check_proof(proof, _inclusion_length(index, size))
    fn, sn, value = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:  # unreachable once the length matched; kept from the RFC as a guard
            raise LogError("inclusion proof is too long", code=Code.LOG_BAD_PROOF)
        if fn & 1 or fn == sn:
            value = node_hash(p, value)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            value = node_hash(value, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or value != root:
        raise LogError(f"inclusion proof for leaf {index} does not lead to the root of tree "
                       f"size {size}", code=Code.LOG_BAD_PROOF)


def verify_consistency(*, old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends that of ``old_size``.

    RFC 9162 §2.1.4.2, after checking the proof has the length the sizes imply. Equal sizes need
    an empty proof and equal roots. Take sizes and roots only from checkpoints whose signatures
    you verified (docs/ARCHITECTURE.md "Transparency log").

    Raises:
        LogError: ``log.bad_range`` unless ``0 < old_size <= new_size`` (a proof from size 0 is
            refused, docs/ARCHITECTURE.md "Transparency log"); ``log.bad_proof`` for a hash that is not 32
            bytes or a proof
            of the wrong length; ``log.inconsistent`` if the proof does not yield both roots.
    """
    _check_sizes(old_size, new_size)
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    if old_size == new_size:
        _check_proof(proof, 0)
        if old_root != new_root:
            raise LogError(f"two different roots for tree size {old_size}", code=Code.LOG_INCONSISTENT)
        return
    path = _check_proof(proof, _consistency_length(old_size, new_size))
    if old_size & (old_size - 1) == 0:  # old tree is a complete subtree: the RFC's step 2
        path = [old_root, *path]
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable once the length matched; kept from the RFC as a guard
            raise LogError("consistency proof is too long", code=Code.LOG_BAD_PROOF)
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise LogError(f"consistency proof from size {old_size} to {new_size} does not match "
                       "the roots", code=Code.LOG_INCONSISTENT)


# --- ranges -------------------------------------------------------------------------------------

def _split(width: int) -> int:
    """The largest power of two strictly below ``width`` (>= 2): where MTH splits."""
    return 1 << ((width - 1).bit_length() - 1)


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees ``[lo, hi)`` whose MTHs form PATH(index, D[0:size]), leaf sibling first."""
    ranges = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            ranges.append((lo + k, hi))
            hi = lo + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()  # built from the root down; the proof lists the deepest sibling first
    return ranges


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The subtrees whose MTHs form PROOF(old, D[0:new]) = SUBPROOF(old, D[0:new], true)."""
    ranges = []
    lo, hi, whole = 0, new, True
    while old != hi:
        k = _split(hi - lo)
        if old <= lo + k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            ranges.append((lo + k, hi))
            hi = lo + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            ranges.append((lo, lo + k))
            lo += k
            whole = False
    if not whole:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _range_nodes(lo: int, hi: int) -> list[Node]:
    """Split ``[lo, hi)`` into complete nodes, largest first (see the theory of operation)."""
    nodes = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def _range_hash(lo: int, hi: int, nodes: Mapping[Node, bytes]) -> bytes:
    hashes = []
    for node in _range_nodes(lo, hi):
        try:
            value = nodes[node]
        except KeyError as exc:
            raise LogError(f"stored tree has no node {node}", code=Code.LOG_BAD_NODE) from exc
        hashes.append(_stored(value, node))
    return _fold(hashes)


def _fold(hashes: list[bytes]) -> bytes:
    value = hashes[-1]
    for left in reversed(hashes[:-1]):
        value = node_hash(left, value)
    return value


# --- expected proof lengths (the count of ranges above, in closed form) -------------------------

def _inclusion_length(index: int, size: int) -> int:
    # Levels where the paths to ``index`` and to the last leaf differ each contribute a sibling;
    # above them, each left subtree on the right border contributes one.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_length(old: int, new: int) -> int:
    # The old tree's last leaf's inclusion path in the new tree, minus the levels inside the
    # old tree's rightmost complete subtree, plus that subtree's own hash unless it is the
    # whole old tree (then the verifier seeds with old_root instead).
    inner = ((old - 1) ^ (new - 1)).bit_length()
    border = ((old - 1) >> inner).bit_count()
    shift = (old & -old).bit_length() - 1
    return inner - shift + border + (0 if old == 1 << shift else 1)


# --- argument checks ----------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_size(value: Any, what: str, *, allow_zero: bool) -> None:
    if not _is_int(value) or not (0 if allow_zero else 1) <= value <= MAX_SIZE:
        low = "0" if allow_zero else "1"
        raise LogError(f"{what} must be an integer from {low} to 2^64-1, not {value!r}",
                       code=Code.LOG_BAD_RANGE)


def _check_index(index: Any, size: Any) -> None:
    _check_size(size, "tree size", allow_zero=False)
    if not _is_int(index) or not 0 <= index < size:
        raise LogError(f"leaf index {index!r} is not in a tree of size {size}", code=Code.LOG_BAD_RANGE)


def _check_sizes(old_size: Any, new_size: Any) -> None:
    # docs/ARCHITECTURE.md "Transparency log": no proofs from size 0
    _check_size(old_size, "old size", allow_zero=False)
    _check_size(new_size, "new size", allow_zero=False)
    if old_size > new_size:
        raise LogError(f"old size {old_size} is larger than new size {new_size}", code=Code.LOG_BAD_RANGE)


def _check_hash(value: Any, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise LogError(f"{what} must be a {HASH_SIZE}-byte hash", code=Code.LOG_BAD_PROOF)


def _check_proof(proof: Any, length: int) -> list[bytes]:
    if not isinstance(proof, Sequence) or isinstance(proof, (str, bytes, bytearray)):
        raise LogError("a proof is a list of hashes", code=Code.LOG_BAD_PROOF)
    if len(proof) != length:
        raise LogError(f"proof has {len(proof)} hashes, the sizes need {length}", code=Code.LOG_BAD_PROOF)
    for value in proof:
        _check_hash(value, "proof hash")
    return list(proof)


def _stored(value: Any, node: Node) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise LogError(f"stored node {node} is not a {HASH_SIZE}-byte hash", code=Code.LOG_BAD_NODE)
    return value
