"""A run's fingerprint: what a replay must reproduce, independent of ledger position, wall time and bus."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from coalition.bus.canonical import canonical_json
from coalition.ledger.base import Ledger
from coalition.ledger.entry import POSITION_FIELDS, without_run_binding
from coalition.ledger.history import history_order_of_bodies, run_history, taken_decisions_of_bodies


def run_digest(ledger: Ledger, run_id: str) -> str:
    """sha256 over the canonical JSON of each of the run's entries' deterministic fields, in history order
    (sequence order, except that a human decision sits at the decision point that took it: when a person clicked
    is not part of what a replay reproduces, where the run took the decision in is).

    Each entry's JSON is followed by a newline (canonical JSON never contains one), so the digested bytes
    are exactly the run as JSON lines. Same scenario + seed + policy must give the same digest on any bus.
    """
    return digest_of(history_fields(ledger, run_id))  # from the stored bodies where the backend hands them out


def history_fields(ledger: Ledger, run_id: str) -> list[dict[str, Any]]:
    """The run's entries' deterministic fields in history order: what `run_digest` digests and a replay compares
    (read once when both are wanted)."""
    return [content_fields(body) for body in history_bodies(ledger, run_id)]


def history_bodies(ledger: Ledger, run_id: str) -> list[dict[str, Any]]:
    """The run's entries as stored (every field but `hash`, as JSON) in history order. A backend that hands out its
    stored bodies (SQLite) is read without building an entry model per row: the stored JSON is the entry's fields
    exactly."""
    read = getattr(ledger, "run_bodies", None)
    if read is None:
        return [entry.model_dump(mode="json", exclude={"hash"}) for entry in run_history(ledger, run_id)]
    bodies = read(run_id)  # the decision points are among them: no second read for the decisions they took
    return list(history_order_of_bodies(bodies, taken_decisions_of_bodies(bodies)))


def content_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What LedgerEntry.deterministic_fields() keeps of a stored body (which holds every field but `hash`)."""
    return without_run_binding({k: v for k, v in body.items() if k not in POSITION_FIELDS})


def digest_of(fields: Iterable[dict[str, Any]]) -> str:
    """`run_digest` of a run's deterministic fields in history order."""
    digest = hashlib.sha256()
    for item in fields:
        digest.update(canonical_json(item))
        digest.update(b"\n")
    return digest.hexdigest()
