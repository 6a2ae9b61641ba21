"""A run's fingerprint: what a replay must reproduce, independent of ledger position, wall time and bus."""

from __future__ import annotations

import hashlib

from coalition.bus.canonical import canonical_json
from coalition.ledger.base import Ledger
from coalition.ledger.history import run_history


def run_digest(ledger: Ledger, run_id: str) -> str:
    """sha256 over the canonical JSON of each of the run's entries' deterministic fields, in history order
    (sequence order, except that a human decision sits at the decision point that took it: when a person clicked
    is not part of what a replay reproduces, where the run took the decision in is).

    Each entry's JSON is followed by a newline (canonical JSON never contains one), so the digested bytes
    are exactly the run as JSON lines. Same scenario + seed + policy must give the same digest on any bus.
    """
    digest = hashlib.sha256()
    for entry in run_history(ledger, run_id):
        digest.update(canonical_json(entry.deterministic_fields()))
        digest.update(b"\n")
    return digest.hexdigest()
