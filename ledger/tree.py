"""The Merkle tree over a ledger's chain, kept incrementally by the backend in the append transaction.

Leaf i is entry seq i + 1; its hash is SHA-256(0x00 ‖ the entry's stored bytes), the canonical JSON that the hash
chain covers. The backend stores the hash of every completed perfect subtree of `BLOCK` leaves or more
(`STORED_LEVEL` and above: about 2 rows per 64 entries); smaller subtrees are hashed from the entries on demand
(at most `BLOCK` rows read). An append adds only the nodes it completes (`nodes_completed`; `OpenBlock` for a
writer that keeps the leaf hashes of the last, incomplete block for its next append), so there is no rebuild; a
tree head or a proof reads O(log n) stored nodes and at most one block of entries.

What a backend provides (`TreeStorage`, in its own transaction or snapshot): the stored bytes of a range of
leaves and stored nodes by (level, index). SQLite: `coalition.ledger.sqlite`; other backends implement the same two
methods and call `nodes_completed` inside their append transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from coalition.ledger import merkle

STORED_LEVEL = 6
BLOCK = 1 << STORED_LEVEL

NodeKey = tuple[int, int]  # (level, index)


class TreeStorage(Protocol):
    def leaf_data(self, lo: int, hi: int) -> list[bytes]:
        """The stored bytes of leaves lo … hi - 1 (entries seq lo + 1 … hi), in order."""
        ...

    def tree_node(self, level: int, index: int) -> bytes | None:
        """A stored node (level ≥ STORED_LEVEL), or None."""
        ...


def perfect_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree from its leaf hashes (a power-of-two count)."""
    sha256 = hashlib.sha256
    level = list(leaf_hashes)
    while len(level) > 1:
        level = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def nodes_completed(
    storage: TreeStorage, size_before: int, new_leaves: Sequence[bytes]
) -> list[tuple[int, int, bytes]]:
    """The stored-level nodes that appending `new_leaves` (entry bytes) after `size_before` leaves completes."""
    size_after = size_before + len(new_leaves)
    added: dict[NodeKey, bytes] = {}
    first_end = (size_before // BLOCK + 1) * BLOCK
    for end in range(first_end, size_after + 1, BLOCK):
        start = end - BLOCK
        data: list[bytes] = storage.leaf_data(start, size_before) if start < size_before else []
        data.extend(new_leaves[max(start, size_before) - size_before : end - size_before])
        _add_block(storage, added, start, perfect_hash([merkle.leaf_hash(item) for item in data]))
    return [(level, index, node) for (level, index), node in added.items()]


def _add_block(storage: TreeStorage, added: dict[NodeKey, bytes], start: int, node: bytes) -> None:
    """The block of leaves from `start` hashes to `node`: add it, and each node above it that it completes."""
    level, index = STORED_LEVEL, start >> STORED_LEVEL
    added[(level, index)] = node
    while index & 1:
        left = added.get((level, index - 1)) or storage.tree_node(level, index - 1)
        if left is None:
            raise LookupError(f"the tree node ({level}, {index - 1}) is missing")
        node = merkle.node_hash(left, node)
        level, index = level + 1, index >> 1
        added[(level, index)] = node


class OpenBlock:
    """The leaf hashes of a tree's last, incomplete block, kept by the writer that appended them for its next append
    (which then reads and hashes none of those entries again). `size` and `head` (the hash of entry `size`) say after
    which entry it holds: an append by anyone else moves the head, and the block is then read from storage."""

    __slots__ = ("head", "leaves", "size")

    def __init__(self, size: int, head: str, leaves: list[bytes]) -> None:
        self.size = size
        self.head = head
        self.leaves = leaves

    def extend(
        self, storage: TreeStorage, size_before: int, head_before: str, new_leaves: Sequence[bytes], head_after: str
    ) -> list[tuple[int, int, bytes]]:
        """The stored-level nodes that appending `new_leaves` (entry bytes) after entry `size_before`, whose hash is
        `head_before`, completes; the block then holds the leaves after the last completed block, up to the entry
        whose hash is `head_after`."""
        start = size_before - size_before % BLOCK
        kept = self.leaves
        if (self.size, self.head) != (size_before, head_before):  # someone else appended, or this append rolled back
            kept = [merkle.leaf_hash(item) for item in storage.leaf_data(start, size_before)]
        leaves = kept + [merkle.leaf_hash(item) for item in new_leaves]
        added: dict[NodeKey, bytes] = {}
        complete = len(leaves) - len(leaves) % BLOCK
        for offset in range(0, complete, BLOCK):
            _add_block(storage, added, start + offset, perfect_hash(leaves[offset : offset + BLOCK]))
        self.size, self.head, self.leaves = size_before + len(new_leaves), head_after, leaves[complete:]
        return [(level, index, node) for (level, index), node in added.items()]


class StoredTree:
    """A NodeSource for a tree of `size` leaves over a backend's stored nodes and entries (one snapshot)."""

    def __init__(self, storage: TreeStorage, size: int) -> None:
        self._storage = storage
        self.size = size
        self._blocks: dict[int, list[bytes]] = {}

    def _block_leaves(self, block: int) -> list[bytes]:
        leaves = self._blocks.get(block)
        if leaves is None:
            lo = block * BLOCK
            leaves = [merkle.leaf_hash(item) for item in self._storage.leaf_data(lo, min(lo + BLOCK, self.size))]
            self._blocks[block] = leaves
        return leaves

    def perfect(self, level: int, index: int) -> bytes:
        if (index + 1) << level > self.size:
            raise merkle.ProofError(f"the subtree ({level}, {index}) is beyond the tree size {self.size}")
        if level >= STORED_LEVEL:
            stored = self._storage.tree_node(level, index)
            if stored is not None:
                return stored
            # not stored (a ledger opened read-only before its nodes were built): hash it from below
            return merkle.node_hash(self.perfect(level - 1, 2 * index), self.perfect(level - 1, 2 * index + 1))
        lo = index << level
        leaves = self._block_leaves(lo >> STORED_LEVEL)
        offset = lo % BLOCK
        return perfect_hash(leaves[offset : offset + (1 << level)])

    def root(self, size: int | None = None) -> bytes:
        return merkle.root(self, self.size if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return merkle.inclusion_proof(self, index, self.size if size is None else size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return merkle.consistency_proof(self, size1, self.size if size2 is None else size2)


class TreeBuilder:
    """The tree computed from scratch, leaf by leaf (verify, backfill): the compact range, the root at any point,
    and each stored-level node as it completes (`completed`, drained by the caller)."""

    __slots__ = ("_stack", "completed", "size")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []  # the compact range: one hash per set bit of size, largest subtree first
        self.completed: list[tuple[int, int, bytes]] = []

    def add(self, data: bytes) -> None:
        """Append one leaf (its stored bytes)."""
        self.extend((data,))

    def extend(self, items: Iterable[bytes]) -> None:
        """Append leaves in one tight loop (the full verify hashes a million of them through it)."""
        sha256 = hashlib.sha256
        stack = self._stack
        completed = self.completed
        size = self.size
        for data in items:
            digest = sha256(b"\x00")
            digest.update(data)
            node = digest.digest()
            bits = size
            level = 0
            while bits & 1:
                node = sha256(b"\x01" + stack.pop() + node).digest()
                bits >>= 1
                level += 1
                if level >= STORED_LEVEL:
                    completed.append((level, ((size + 1) >> level) - 1, node))
            stack.append(node)
            size += 1
        self.size = size

    def root(self) -> bytes:
        if not self._stack:
            return merkle.EMPTY_ROOT
        node = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            node = merkle.node_hash(left, node)
        return node
