"""The Merkle tree against a naive RFC 6962 reference: tree heads, audit paths and consistency
proofs made from stored complete subtrees, and verified per RFC 9162."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundpool.audit import merkle
from fundpool.audit.merkle import ProofError


def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH over leaf hashes, as written."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, leaves[:k], whole), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def stored_tree(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every complete subtree, as the store keeps them (built by appending in pieces)."""
    nodes = {(0, i): leaf for i, leaf in enumerate(leaves)}
    frontier: dict[tuple[int, int], bytes] = {}
    size = 0
    for start in range(0, len(leaves), 3):
        grown = merkle.append(size, frontier, leaves[start:start + 3])
        nodes.update({(lv, ix): h for lv, ix, h in grown.nodes})
        frontier, size = grown.frontier, size + len(leaves[start:start + 3])
    return nodes


def leaves_of(n: int) -> list[bytes]:
    return [ref_leaf(f"entry {i}".encode()) for i in range(n)]


N_SMALL = 33


def test_every_root_inclusion_and_consistency_for_small_trees() -> None:
    for n in range(1, N_SMALL + 1):
        leaves = leaves_of(n)
        nodes = stored_tree(leaves)
        node = lambda lv, ix, nodes=nodes: nodes[(lv, ix)]  # noqa: E731
        root = merkle.root(n, node)
        assert root == ref_mth(leaves)
        for m in range(n):
            proof = merkle.inclusion_proof(m, n, node)
            assert proof == ref_path(m, leaves)
            assert merkle.verify_inclusion(m, n, leaves[m], proof, root)
            assert not merkle.verify_inclusion(m, n, ref_leaf(b"other"), proof, root)
            if proof:  # one element short or long is refused, not believed
                with pytest.raises(ProofError, match="too short"):
                    merkle.verify_inclusion(m, n, leaves[m], proof[:-1], root)
            with pytest.raises(ProofError, match="too long"):
                merkle.verify_inclusion(m, n, leaves[m], [*proof, root], root)
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, n, node)
            assert proof == ref_subproof(m, leaves, True)
            first = ref_mth(leaves[:m])
            assert merkle.verify_consistency(m, n, first, root, proof)
            if m < n:
                assert not merkle.verify_consistency(m, n, ref_leaf(b"x"), root, proof)
                assert not merkle.verify_consistency(m, n, first, ref_leaf(b"x"), proof)
                with pytest.raises(ProofError, match="too long"):
                    merkle.verify_consistency(m, n, first, root, [*proof, root])
                with pytest.raises(ProofError):
                    merkle.verify_consistency(m, n, first, root, proof[:-1])


def test_proofs_read_few_stored_nodes() -> None:
    size = 10_000_000
    for index in (0, 1, 4_999_999, size - 1):
        assert len(merkle.inclusion_nodes(index, size)) <= 2 * size.bit_length()
    for first in (1, 7, 4_194_304, size - 1):
        assert len(merkle.consistency_nodes(first, size)) <= 2 * size.bit_length()


def test_wrong_requests_name_the_place() -> None:
    with pytest.raises(ProofError, match="leaf index 5 is outside a tree of size 5"):
        merkle.inclusion_ranges(5, 5)
    with pytest.raises(ProofError, match="0 < first <= second"):
        merkle.consistency_ranges(6, 5)
    with pytest.raises(ProofError, match="element 1 is 31 bytes"):
        merkle.root_from_inclusion(0, 4, ref_leaf(b"a"), [ref_leaf(b"b"), b"\x00" * 31])
    with pytest.raises(ProofError, match="between equal sizes"):
        merkle.roots_from_consistency(4, 4, ref_leaf(b"a"), [ref_leaf(b"b")])
    with pytest.raises(ProofError, match="is empty"):
        merkle.roots_from_consistency(3, 4, ref_leaf(b"a"), [])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=300), st.data())
def test_random_trees_match_the_reference(datas: list[bytes], data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(d) for d in datas]
    n = len(leaves)
    nodes = stored_tree(leaves)
    node = lambda lv, ix, nodes=nodes: nodes[(lv, ix)]  # noqa: E731
    root = merkle.root(n, node)
    assert root == ref_mth(leaves)
    m = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(m, n, node)
    assert proof == ref_path(m, leaves)
    assert merkle.verify_inclusion(m, n, leaves[m], proof, root)
    first = data.draw(st.integers(1, n))
    cproof = merkle.consistency_proof(first, n, node)
    assert cproof == ref_subproof(first, leaves, True)
    assert merkle.verify_consistency(first, n, ref_mth(leaves[:first]), root, cproof)
    if cproof:  # any one element changed breaks it
        at = data.draw(st.integers(0, len(cproof) - 1))
        bad = [*cproof]
        bad[at] = ref_leaf(bad[at])
        assert not merkle.verify_consistency(first, n, ref_mth(leaves[:first]), root, bad)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12))
def test_appending_in_any_batches_gives_the_same_nodes(batches: list[int]) -> None:
    leaves = leaves_of(sum(batches))
    whole = merkle.append(0, {}, leaves)
    size, frontier, made = 0, {}, []
    for count in batches:
        grown = merkle.append(size, frontier, leaves[size:size + count])
        made.extend(grown.nodes)
        frontier, size = grown.frontier, size + count
    assert sorted(made) == sorted(whole.nodes)
    assert frontier == whole.frontier
