"""Inclusion proofs as files an auditor can check offline: the entry's stored bytes, where it sits in the tree,
the proof, the signed checkpoint it leads to and the key that signed it (see coalition/ledger/offline_verifier.py)."""

from __future__ import annotations

import base64
from typing import Any

from coalition.ledger.checkpoint import SignedCheckpoint
from coalition.ledger.merkle import leaf_hash
from coalition.ledger.notary import ProvableLedger
from coalition.ledger.tree import StoredTree

FORMAT = "coalition-inclusion-proof/1"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def inclusion_bundle(ledger: ProvableLedger, seq: int, checkpoint: SignedCheckpoint) -> dict[str, Any]:
    """Proof that entry `seq` is leaf seq - 1 of the tree the checkpoint signs."""
    tree = StoredTree(ledger, checkpoint.size)
    body = ledger.leaf_data(seq - 1, seq)[0]
    return {
        "format": FORMAT,
        "seq": seq,
        "leaf_index": seq - 1,
        "tree_size": checkpoint.size,
        "entry": body.decode(),
        "leaf_hash": _b64(leaf_hash(body)),
        "proof": [_b64(node) for node in tree.inclusion_proof(seq - 1)],
        "checkpoint": checkpoint.note,
        "verifier_key": checkpoint.verifier_key,
    }
