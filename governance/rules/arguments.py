"""Proposal arguments are untrusted JSON: check them against the action's own argument model (the pack's one
schema, the same the executor validates with) before any limit reads them (fail closed)."""

from __future__ import annotations

from decimal import Decimal

from coalition.bus.messages import ActionProposed
from coalition.domain import Action, ArgumentProblem, catalog
from coalition.governance.money import to_decimal
from coalition.governance.state import GovernanceState
from coalition.governance.verdict import Finding


class ArgumentShapes:
    """Deny a proposal whose arguments do not fit its action's model (finding `args.invalid`, one line naming the
    action, the argument and the problem)."""

    rule_id = "args.shape"

    def __init__(self) -> None:
        self._actions: dict[str, Action] = dict(catalog().actions)
        self.actions: frozenset[str] | None = frozenset(self._actions)

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        action = self._actions.get(proposal.action)
        if action is None:
            return None
        try:
            action.parse(proposal.args)
        except ArgumentProblem as problem:
            return Finding("deny", "args.invalid", str(problem))
        return None


def number(proposal: ActionProposed, name: str) -> Decimal:
    """An argument already checked by ArgumentShapes, as a Decimal."""
    return to_decimal(proposal.args[name])
