"""Decision gates and high-impact tools: what must go to humans, with the roles, quorum and expiry to ask for."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache

from coalition.bus.messages import ActionProposed
from coalition.governance.money import usd
from coalition.governance.policy import Gate, HighImpactTool
from coalition.governance.rules.arguments import number
from coalition.governance.state import GovernanceState
from coalition.governance.tiers import ALWAYS_HUMAN, HUMAN_RULE, Tiers
from coalition.governance.verdict import Finding


def escalation(rule_id: str, gate_name: str, gate: Gate, reason: str, amount: Decimal | None) -> Finding:
    """The escalate Finding of a gate: its roles, the approvals needed for this amount, its expiry."""
    return Finding(  # by position: a frozen dataclass takes keywords at about twice the cost
        "escalate",
        rule_id,
        reason,
        gate_name,
        tuple(gate.approver_roles),
        gate.required_for(amount),
        _expiry(gate.expires_after_hours),
    )


@lru_cache(maxsize=256)
def _expiry(hours: float) -> timedelta:
    """A gate's expiry as a timedelta (immutable, so one per value serves every escalation: building one from a
    float of hours costs more than the rest of the finding)."""
    return timedelta(hours=hours)


class HighImpactToolGate:
    """A high-impact tool (money movement, credential change) always needs explicit human confirmation."""

    def __init__(self, tool: str, spec: HighImpactTool) -> None:
        self.rule_id = f"tool.{tool}"
        self.actions: frozenset[str] | None = frozenset(spec.actions)
        self._tool = tool
        self._spec = spec

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        raw = proposal.args.get("amount_usd")
        amount = number(proposal, "amount_usd") if raw is not None else None
        detail = f" of {usd(amount)} USD" if amount is not None else ""
        reason = f"{proposal.action}{detail} is a high-impact tool ({self._tool}); needs human confirmation"
        return escalation(self.rule_id, self._tool, self._spec, reason, amount)


class ModelBudgetRequest:
    """A request for more model budget always goes to humans (gate budget_overrun): they decide how much more an
    agent may spend on language models; the agent words its decisions with its engine meanwhile."""

    rule_id = "gate.model_budget"

    def __init__(self, gate: Gate) -> None:
        self.actions: frozenset[str] | None = frozenset({"request_model_budget"})
        self._gate = gate

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        tokens = int(proposal.args["tokens"])
        cost = number(proposal, "cost_usd")
        reason = (
            f"model budget: {proposal.agent} asks to raise its model budget by {tokens} tokens and {usd(cost)} USD "
            "per period; a human decides how much more an agent may spend on models"
        )
        return escalation(self.rule_id, "budget_overrun", self._gate, reason, cost)


class HumanTier:
    """An action the policy's tiers put before a human every time (`always-human`, governance/tiers.py): it
    escalates through the tier's gate whatever else governance found; a deny still wins."""

    def __init__(self, tiers: Tiers, gates: Mapping[str, Gate]) -> None:
        self.rule_id = HUMAN_RULE
        self.actions: frozenset[str] | None = tiers.human_actions()
        self._tiers = tiers
        self._gates = dict(gates)

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        tier = self._tiers.of(proposal.agent, proposal.action)
        if tier.tier != ALWAYS_HUMAN or tier.gate is None:
            return None
        reason = f"{proposal.action} by {proposal.agent} is always-human in the policy's tiers; needs human approval"
        return escalation(self.rule_id, tier.gate, self._gates[tier.gate], reason, None)
