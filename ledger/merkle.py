"""RFC 6962 / RFC 9162 Merkle tree hashing: tree heads, inclusion and consistency proofs, and their verification.

Pure functions over a `NodeSource`, which answers the hash of any perfect, aligned subtree (level, index): a
subtree of 2**level leaves starting at leaf index * 2**level. Where those hashes come from (stored nodes, leaves
hashed on the fly) is the storage's business (`coalition.ledger.tree`).

leaf hash = SHA-256(0x00 ‖ leaf bytes); node hash = SHA-256(0x01 ‖ left ‖ right); the empty tree's root is
SHA-256 of nothing. Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 to the letter and is tested against the
published transparency-dev test vectors (`../shared/testvectors/rfc6962-merkle`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not prove what it claims (or cannot be asked for)."""


class NodeSource(Protocol):
    def perfect(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree of 2**level leaves starting at leaf index * 2**level."""
        ...


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below n (n ≥ 2): where RFC 6962 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(source: NodeSource, lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for a range the RFC's recursion produces (lo aligned to the largest power of two ≤ hi - lo)."""
    n = hi - lo
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and lo % n == 0:
        level = n.bit_length() - 1
        return source.perfect(level, lo >> level)
    k = split_point(n)
    return node_hash(subtree_root(source, lo, lo + k), subtree_root(source, lo + k, hi))


def root(source: NodeSource, size: int) -> bytes:
    return subtree_root(source, 0, size)


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf-side first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            path.append(subtree_root(source, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_root(source, lo, lo + k))
            lo = lo + k
    path.reverse()
    return path


def consistency_proof(source: NodeSource, size1: int, size2: int) -> list[bytes]:
    """PROOF(size1, D[0:size2]) of RFC 9162 §2.1.4.1 (0 < size1 ≤ size2), leaf-side first."""
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    path: list[bytes] = []
    lo, hi, m, complete = 0, size2, size1, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                path.append(subtree_root(source, lo, hi))
            break
        k = split_point(n)
        if m <= k:
            path.append(subtree_root(source, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_root(source, lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    path.reverse()
    return path


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for position, value in enumerate(hashes):
        if len(value) != HASH_SIZE:
            raise ProofError(f"{what}[{position}] is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root a valid proof leads to; a malformed proof is a ProofError."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below the tree size {size}")
    _check_hashes("leaf hash", [leaf])
    _check_hashes("proof", proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path to the root")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> None:
    """Raise ProofError unless `proof` shows leaf hash `leaf` at `index` in the tree of `size` with `root_hash`."""
    if root_from_inclusion_proof(index, size, leaf, proof) != root_hash:
        raise ProofError(f"leaf {index} is not in the tree of size {size} with that root")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """RFC 9162 §2.1.4.2: raise ProofError unless the tree (size2, root2) extends the tree (size1, root1)."""
    _check_hashes("proof", proof)
    if size1 <= 0:
        raise ProofError("a consistency proof needs a first tree of at least one leaf")
    if size2 < size1:
        raise ProofError(f"the second tree ({size2}) is smaller than the first ({size1})")
    if size1 == size2:
        if proof:
            raise ProofError("trees of equal size need an empty proof")
        if root1 != root2:
            raise ProofError(f"two different roots for the same size {size1}")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than needed")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than needed")
    if fr != root1:
        raise ProofError(f"the proof does not lead to the first root (size {size1})")
    if sr != root2:
        raise ProofError(f"the proof does not lead to the second root (size {size2})")


class LeafList:
    """A NodeSource over leaf hashes in memory (tests, the offline verifier, small trees)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._leaves = leaves

    def perfect(self, level: int, index: int) -> bytes:
        lo = index << level
        if level == 0:
            return self._leaves[lo]
        half = 1 << (level - 1)
        return node_hash(self.perfect(level - 1, lo // half), self.perfect(level - 1, lo // half + 1))
