"""A run's history: its entries in the order a replay reproduces them.

The ledger's sequence is arrival order: a human decision is appended whenever a person makes it (mid-day, while
the run waits, while it is down), which no re-execution can repeat. What the run did with it is recorded too: a
`decision_point` entry lists the decisions governance took in at that point, in order. The history is the
sequence order with each listed decision moved to just before the point that took it; everything else (a
decision no point took included) keeps its place. A decision's message id recorded again (an altered ledger: a
run takes a decision in once) keeps its place too, so that neither copy is lost. The digest and replay's
comparison read runs this way.

A reviewer's mark on a sampled proposal (`review_mark`) is left out: it is a judgement on what the run did, made
after the fact, never read by the run. It stays chained (and signed) in the ledger; a resume or a replay, which
re-derive the run, neither repeat it nor are changed by it. So is the reviewer's key recorded with a first mark
(`review_key`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.entry import LedgerEntry

DECISION_POINT = "decision_point"
HUMAN_DECISIONS = ("approval", "rejection")
OUTSIDE_HISTORY = ("review_mark", "review_key")
T = TypeVar("T")


def taken_decisions(ledger: Ledger, run_id: str) -> set[str]:
    """Message ids of the run's human decisions that a decision point took in."""
    taken: set[str] = set()
    for point in ledger.query(LedgerQuery(run_id=run_id, kind=DECISION_POINT)):
        taken.update(str(x) for x in point.payload.get("decisions", []))
    return taken


def taken_decisions_of_bodies(bodies: Iterable[dict[str, Any]]) -> set[str]:
    """`taken_decisions` from a run's stored entry bodies (all of them, read already), not a second read."""
    taken: set[str] = set()
    for body in bodies:
        payload = body.get("payload") if body.get("kind") == DECISION_POINT else None
        decisions = payload.get("decisions") if isinstance(payload, dict) else None
        if isinstance(decisions, list):
            taken.update(str(x) for x in decisions)
    return taken


def history_order(entries: Iterable[LedgerEntry], taken: set[str]) -> Iterator[LedgerEntry]:
    """`entries` (one run, sequence order) with each decision in `taken` moved to the point that took it."""
    return _reordered(entries, taken, lambda e: (e.kind, e.message_id, e.payload))


def history_order_of_bodies(bodies: Iterable[dict[str, Any]], taken: set[str]) -> Iterator[dict[str, Any]]:
    """`history_order` over stored entry bodies (JSON objects) instead of entries."""
    return _reordered(bodies, taken, lambda b: (b.get("kind"), b.get("message_id"), b.get("payload") or {}))


def _reordered(items: Iterable[T], taken: set[str], facts: Callable[[T], tuple[Any, Any, Any]]) -> Iterator[T]:
    held: dict[str, T] = {}
    for item in items:
        kind, message_id, payload = facts(item)
        if kind in OUTSIDE_HISTORY:
            continue
        if kind in HUMAN_DECISIONS and message_id in taken and message_id not in held:
            held[message_id] = item
            continue
        if kind == DECISION_POINT:
            for listed in payload.get("decisions", []):
                decision = held.pop(str(listed), None)
                if decision is not None:
                    yield decision
        yield item
    yield from held.values()  # listed by a point that came before them: an altered ledger; keep them visible


def run_history(ledger: Ledger, run_id: str) -> Iterator[LedgerEntry]:
    """The run's entries in history order (see the module docstring)."""
    return history_order(ledger.iter_entries(run_id=run_id), taken_decisions(ledger, run_id))
