"""Inclusion proofs as files an auditor can check offline: the entry's stored bytes, where it sits in the tree,
the proof, the signed checkpoint it leads to and the key that signed it (see coalition/ledger/offline_verifier.py)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from coalition.ledger import offline_verifier
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


@dataclass(frozen=True)
class Attestation:
    """What makes an audit package checkable offline: the ledger to prove from, the signed checkpoint the proofs
    lead to, and the sizes of earlier checkpoints to prove it extends (an auditor may have seen one of them)."""

    ledger: ProvableLedger
    checkpoint: SignedCheckpoint
    earlier_sizes: tuple[int, ...] = ()

    def package_files(self, seqs: Sequence[int], *, run_chain: str | None = None) -> dict[str, bytes]:
        """proofs.jsonl (each entry's stored bytes, hash and inclusion proof), checkpoint.txt, ledger-key.txt,
        consistency.json (earlier size → proof) and verify.py (the standalone verifier).

        `run_chain`: the seqs are every entry of that run, on a ledger that chains each run (PostgreSQL): run-chain.json
        names the run and its length, and verify.py checks the entries as one chain from GENESIS."""
        tree = StoredTree(self.ledger, self.checkpoint.size)
        lines: list[bytes] = []
        for seq in seqs:
            if seq > self.checkpoint.size:
                raise ValueError(f"entry {seq} is not covered by the checkpoint of {self.checkpoint.size} entries")
            body = self.ledger.leaf_data(seq - 1, seq)[0]
            prev_hash = orjson.loads(body)["prev_hash"]
            item = {
                "seq": seq,
                "leaf_index": seq - 1,
                "tree_size": self.checkpoint.size,
                "entry": body.decode(),
                "hash": hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest(),
                "proof": [_b64(node) for node in tree.inclusion_proof(seq - 1)],
            }
            lines.append(orjson.dumps(item) + b"\n")
        consistency = {
            str(size): [_b64(node) for node in tree.consistency_proof(size)]
            for size in sorted(set(self.earlier_sizes))
            if 0 < size <= self.checkpoint.size
        }
        chain = {"run-chain.json": orjson.dumps({"run_id": run_chain, "entries": len(seqs)})} if run_chain else {}
        return {
            **chain,
            "proofs.jsonl": b"".join(lines),
            "checkpoint.txt": self.checkpoint.note.encode(),
            "ledger-key.txt": (self.checkpoint.verifier_key + "\n").encode(),
            "consistency.json": orjson.dumps(consistency, option=orjson.OPT_INDENT_2),
            "verify.py": verifier_script(),
        }


def verifier_script() -> bytes:
    """The standalone verifier's source (coalition/ledger/offline_verifier.py), shipped in every audit package."""
    return Path(offline_verifier.__file__).read_bytes()
