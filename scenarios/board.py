"""The scripted board: for a scenario run without a human at the keyboard, which scripted decision answers
which pending escalation. The runner records the answer through the governance approvals service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coalition.scenarios.spec import BoardDecision, BoardMatch, BoardSpec, subset_matches


@dataclass(frozen=True, slots=True)
class PendingEscalation:
    """An escalation waiting for humans, as the approvals inbox shows it."""

    proposal_id: str
    agent: str
    action: str
    gate: str
    args: dict[str, Any] = field(default_factory=dict)
    proposal_hash: str = ""
    approver_roles: tuple[str, ...] = ()
    approvals_required: int = 1


def matches(match: BoardMatch, escalation: PendingEscalation) -> bool:
    """Every field the decision names equals the escalation's; `args` is a subset of the proposal's args."""
    return (
        (match.gate is None or match.gate == escalation.gate)
        and (match.agent is None or match.agent == escalation.agent)
        and (match.action is None or match.action == escalation.action)
        and subset_matches(match.args, escalation.args)
    )


class Board:
    """Answers pending escalations from the scenario's scripted decisions (first match wins; none = expiry)."""

    def __init__(self, spec: BoardSpec) -> None:
        self._decisions = list(spec.decisions)

    def decide(self, escalation: PendingEscalation, day: int) -> BoardDecision | None:
        """The first decision that matches and is due (`on_day` absent or reached); None leaves it to expire."""
        for decision in self._decisions:
            if (decision.on_day is None or day >= decision.on_day) and matches(decision.match, escalation):
                return decision
        return None
