"""Merkle tree hashing as RFC 6962 and RFC 9162 define it: pure, the standard library only.

    leaf  = SHA-256(0x00 || data)
    node  = SHA-256(0x01 || left || right)
    MTH(D[n]) splits at k, the largest power of two below n: node(MTH(D[0:k]), MTH(D[k:n]))

A tree of n leaves is stored as its *complete subtrees*: the subtree at (level, index) covers
leaves [index * 2^level, (index + 1) * 2^level) and exists once all of them do. Every hash
the RFCs ask for (a tree head, an audit path, a consistency proof) is a subtree of the
recursion whose range starts aligned to a power of two at least its size, so it is the
right-nested fold of at most log2(n) complete subtrees (`decompose`). A proof therefore reads
O(log n) stored nodes: `inclusion_nodes` / `consistency_nodes` say which, and the proof
functions take them from a `NodeSource`.

Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) step by step; a
proof of the wrong length is refused with `ProofError`, naming where it went wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

HASH_BYTES = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
LEVELS_MAX = 63  # a tree of up to 2^63 leaves: every size and index fits a signed BIGINT

_sha256 = hashlib.sha256

Coordinate = tuple[int, int]  # (level, index) of a complete subtree
NodeSource = Callable[[int, int], bytes]  # the hash of the complete subtree at (level, index)


class ProofError(ValueError):
    """A proof or a request for one that cannot be right: says where."""


def leaf_hash(data: bytes) -> bytes:
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(NODE_PREFIX + left + right).digest()


EMPTY_ROOT = _sha256(b"").digest()  # MTH({}) = SHA-256() (RFC 6962 §2.1)


def largest_power_below(n: int) -> int:
    """The largest power of two strictly below n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def decompose(start: int, end: int) -> list[Coordinate]:
    """The complete subtrees that make the range [start, end), largest first: for a range
    of the RFC's recursion (start aligned to a power of two at least end - start), its hash
    is the right-nested fold of theirs."""
    width = end - start
    if width > 0 and width & (width - 1) == 0 and start & (width - 1) == 0:
        level = width.bit_length() - 1  # one complete subtree (most of a proof's ranges)
        return [(level, start >> level)]
    out: list[Coordinate] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start & ((1 << level) - 1):
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """node(h0, node(h1, … node(h[-2], h[-1]))): a range's hash from its `decompose`."""
    acc = hashes[-1]
    for value in reversed(hashes[:-1]):
        acc = node_hash(value, acc)
    return acc


def range_hash(start: int, end: int, node: NodeSource) -> bytes:
    if start >= end:
        raise ProofError(f"the range [{start}, {end}) is empty")
    return fold([node(level, index) for level, index in decompose(start, end)])


# --- tree head ----------------------------------------------------------------------------


def root_nodes(size: int) -> list[Coordinate]:
    return decompose(0, size)


def root(size: int, node: NodeSource) -> bytes:
    """MTH of the first `size` leaves."""
    if size < 0:
        raise ProofError(f"a tree size is never negative (got {size})")
    return EMPTY_ROOT if size == 0 else range_hash(0, size, node)


# --- inclusion (RFC 6962 §2.1.1 PATH) -----------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose hashes make the audit path of leaf `index` in a tree of `size`,
    from the leaf's sibling up."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    out: list[tuple[int, int]] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = largest_power_below(end - start)
        if m < k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m = start + k, m - k
    out.reverse()
    return out


def _nodes_of(ranges: Iterable[tuple[int, int]]) -> list[Coordinate]:
    seen: dict[Coordinate, None] = {}
    for start, end in ranges:
        for coordinate in decompose(start, end):
            seen[coordinate] = None
    return list(seen)


Plan = list[list[Coordinate]]  # a proof's ranges, each as its complete subtrees


def plan_nodes(plan: Plan) -> list[Coordinate]:
    """Every complete subtree a plan reads, once each (read them in one go)."""
    return list(dict.fromkeys(coordinate for part in plan for coordinate in part))


def proof_of(plan: Plan, node: NodeSource) -> list[bytes]:
    """The proof's hashes: each range's subtrees folded (`range_hash` without recomputing
    the ranges)."""
    out = []
    for part in plan:
        acc = node(*part[-1])
        for level, index in reversed(part[:-1]):
            acc = node_hash(node(level, index), acc)
        out.append(acc)
    return out


def inclusion_plan(index: int, size: int) -> Plan:
    return [decompose(start, end) for start, end in inclusion_ranges(index, size)]


def inclusion_nodes(index: int, size: int) -> list[Coordinate]:
    """The complete subtrees an audit path is made of (read them in one go)."""
    return plan_nodes(inclusion_plan(index, size))


def inclusion_proof(index: int, size: int, node: NodeSource) -> list[bytes]:
    return proof_of(inclusion_plan(index, size), node)


# --- consistency (RFC 6962 §2.1.2 PROOF / SUBPROOF) ---------------------------------------


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    if not 0 < first <= second:
        raise ProofError(f"a consistency proof needs 0 < first <= second (got {first}, "
                         f"{second})")
    out: list[tuple[int, int]] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = largest_power_below(end - start)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        out.append((start, end))
    out.reverse()
    return out


def consistency_nodes(first: int, second: int) -> list[Coordinate]:
    return _nodes_of(consistency_ranges(first, second)) if first < second else []


def consistency_proof(first: int, second: int, node: NodeSource) -> list[bytes]:
    if first == second:
        consistency_ranges(first, second)  # checks the sizes
        return []
    return [range_hash(start, end, node) for start, end in consistency_ranges(first, second)]


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ----------------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_BYTES:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_BYTES}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or ProofError."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash(leaf, "the leaf hash")
    fn, sn = index, size - 1
    r = leaf
    for position, p in enumerate(proof):
        _check_hash(p, f"inclusion proof element {position}")
        if sn == 0:
            raise ProofError(f"the inclusion proof is too long: element {position} is past "
                             f"the root (a tree of size {size} needs {position} elements "
                             f"for leaf {index})")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the inclusion proof is too short: {len(proof)} elements end "
                         f"below the root of a tree of size {size} (leaf {index})")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     expected_root: bytes) -> bool:
    """Whether `proof` shows leaf `index` with hash `leaf` in the tree of `size` whose root is
    `expected_root`. A malformed proof raises ProofError; a well-formed wrong one is False."""
    return root_from_inclusion(index, size, leaf, proof) == expected_root


def roots_from_consistency(first: int, second: int, first_root: bytes,
                           proof: Sequence[bytes]) -> tuple[bytes, bytes]:
    """(first root, second root) a consistency proof leads to (RFC 9162 §2.1.4.2)."""
    if not 0 < first <= second:
        raise ProofError(f"a consistency proof needs 0 < first <= second (got {first}, "
                         f"{second})")
    _check_hash(first_root, "the first root")
    if first == second:
        if proof:
            raise ProofError(f"the consistency proof between equal sizes ({first}) must be "
                             f"empty, not {len(proof)} elements")
        return first_root, first_root
    if not proof:
        raise ProofError(f"the consistency proof from {first} to {second} is empty")
    for position, p in enumerate(proof):
        _check_hash(p, f"consistency proof element {position}")
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first root is the proof's seed
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for position, c in enumerate(path[1:], start=1):
        if sn == 0:
            raise ProofError(f"the consistency proof from {first} to {second} is too long: "
                             f"element {position} is past the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"the consistency proof from {first} to {second} is too short: "
                         f"{len(proof)} elements end below the root")
    return fr, sr


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    fr, sr = roots_from_consistency(first, second, first_root, proof)
    return fr == first_root and sr == second_root


# --- appending ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Appended:
    """What appending leaves made: every subtree they completed, and the new right edge."""

    nodes: list[tuple[int, int, bytes]]  # (level, index, hash), level >= 1
    frontier: dict[Coordinate, bytes]


def append(size: int, frontier: Mapping[Coordinate, bytes], leaves: Sequence[bytes]
           ) -> Appended:
    """Append `leaves` (leaf hashes) to a tree of `size` whose right edge is `frontier`
    (the hashes of `root_nodes(size)`): the subtrees of level >= 1 that they complete."""
    stack: list[tuple[int, int, bytes]] = [
        (level, index, frontier[(level, index)]) for level, index in root_nodes(size)]
    made: list[tuple[int, int, bytes]] = []
    push = stack.append
    for position, leaf in enumerate(leaves, start=size):
        level, index, value = 0, position, leaf
        while stack and stack[-1][0] == level:
            _, left_index, left = stack.pop()
            level, index, value = level + 1, left_index >> 1, node_hash(left, value)
            made.append((level, index, value))
        push((level, index, value))
    return Appended(made, {(level, index): value for level, index, value in stack})
