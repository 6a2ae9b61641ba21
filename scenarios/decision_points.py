"""Where a run took human decisions in: the decision points its ledger recorded, for a resume or a replay to
take each decision at the same point (day and superstep) as the run that recorded it (Temporal's history)."""

from __future__ import annotations

from dataclasses import dataclass, field

from coalition.bus.messages import DecisionsTaken
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.history import DECISION_POINT


@dataclass(frozen=True)
class DecisionHistory:
    """The recorded decision points of one run: (day, superstep) → the decisions taken there, in order."""

    points: dict[tuple[int, int], tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def read(cls, ledger: Ledger, run_id: str) -> DecisionHistory:
        points: dict[tuple[int, int], tuple[str, ...]] = {}
        for entry in ledger.query(LedgerQuery(run_id=run_id, kind=DECISION_POINT)):
            if entry.message_type != DecisionsTaken.TYPE or entry.superstep is None:
                continue
            day = entry.payload.get("day")
            if isinstance(day, int):
                points[(day, entry.superstep)] = tuple(str(x) for x in entry.payload.get("decisions", []))
        return cls(points)

    def at(self, day: int, superstep: int) -> tuple[str, ...] | None:
        """The decisions recorded as taken at this point (empty: none, the clock moved on), None if unrecorded."""
        return self.points.get((day, superstep))

    def __len__(self) -> int:
        return len(self.points)
