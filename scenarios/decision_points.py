"""Where a run took human decisions in: the decision points its ledger recorded, for a resume or a replay to
take each decision at the same point (day and superstep) as the run that recorded it (Temporal's history)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from coalition.bus.messages import DecisionsTaken
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.history import DECISION_POINT


@dataclass(frozen=True)
class DecisionHistory:
    """The recorded decision points of one run: (day, superstep) → the decisions taken there, in order."""

    points: dict[tuple[int, int], tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def read(cls, ledger: Ledger, run_id: str) -> DecisionHistory:
        entries = ledger.query(LedgerQuery(run_id=run_id, kind=DECISION_POINT))
        return cls._of((e.message_type, e.superstep, e.payload) for e in entries)

    @classmethod
    def of_bodies(cls, bodies: Iterable[dict[str, Any]]) -> DecisionHistory:
        """`read` from the run's stored entry bodies (all of them, read already), not a second read."""
        points = (b for b in bodies if b.get("kind") == DECISION_POINT)
        return cls._of((b.get("message_type"), b.get("superstep"), b.get("payload")) for b in points)

    @classmethod
    def _of(cls, points: Iterable[tuple[Any, Any, Any]]) -> DecisionHistory:
        """From each decision point's (message type, superstep, payload), in ledger order."""
        taken: dict[tuple[int, int], tuple[str, ...]] = {}
        for message_type, superstep, payload in points:
            if message_type != DecisionsTaken.TYPE or not isinstance(superstep, int) or not isinstance(payload, dict):
                continue
            day = payload.get("day")
            if isinstance(day, int):
                taken[(day, superstep)] = tuple(str(x) for x in payload.get("decisions", []))
        return cls(taken)

    def at(self, day: int, superstep: int) -> tuple[str, ...] | None:
        """The decisions recorded as taken at this point (empty: none, the clock moved on), None if unrecorded."""
        return self.points.get((day, superstep))

    def __len__(self) -> int:
        return len(self.points)
