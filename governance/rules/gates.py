"""Decision gates and high-impact tools: what must go to humans, with the roles, quorum and expiry to ask for."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

from coalition.bus.messages import ActionProposed
from coalition.governance.money import usd
from coalition.governance.policy import CapitalGate, Gate, HighImpactTool, IncidentGate
from coalition.governance.rules.arguments import number
from coalition.governance.state import GovernanceState
from coalition.governance.tiers import ALWAYS_HUMAN, HUMAN_RULE, Tiers
from coalition.governance.verdict import Finding


def escalation(rule_id: str, gate_name: str, gate: Gate, reason: str, amount: Decimal | None) -> Finding:
    """The escalate Finding of a gate: its roles, the approvals needed for this amount, its expiry."""
    return Finding(
        "escalate",
        rule_id,
        reason,
        gate=gate_name,
        approver_roles=tuple(gate.approver_roles),
        approvals_required=gate.required_for(amount),
        expires_after=timedelta(hours=gate.expires_after_hours),
    )


class AlwaysGate:
    """An action that always needs humans (market entry, pricing-policy change, settlement-policy change)."""

    def __init__(self, gate_name: str, gate: Gate, action: str, what: str, amount_arg: str | None = None) -> None:
        self.rule_id = f"gate.{gate_name}"
        self.actions: frozenset[str] | None = frozenset({action})
        self._gate_name = gate_name
        self._gate = gate
        self._what = what
        self._amount_arg = amount_arg

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        amount = number(proposal, self._amount_arg) if self._amount_arg else None
        detail = f" ({usd(amount)} USD)" if amount is not None else ""
        return escalation(
            self.rule_id, self._gate_name, self._gate, f"{self._what}{detail} needs human approval", amount
        )


class MaterialCompliance:
    """A material jurisdiction pack (a compliance change) needs humans; an immaterial one does not."""

    def __init__(self, gate: Gate) -> None:
        self.rule_id = "gate.compliance_change"
        self.actions: frozenset[str] | None = frozenset({"publish_jurisdiction_pack"})
        self._gate = gate

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        if not proposal.args["material"]:
            return None
        region, status = proposal.args["region"], proposal.args["status"]
        reason = f"material compliance change: {region} becomes {status}; needs human approval"
        return escalation(self.rule_id, "compliance_change", self._gate, reason, None)


class CapitalCommitment:
    """A capital commitment at or above the threshold needs humans."""

    def __init__(self, gate: CapitalGate) -> None:
        self.rule_id = "gate.capital_commitment"
        self.actions: frozenset[str] | None = frozenset({"commit_capital"})
        self._gate = gate

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        amount = number(proposal, "amount_usd")
        threshold = self._gate.threshold_usd
        if amount < threshold:
            return None
        reason = f"capital commitment {usd(amount)} reaches the {usd(threshold)} threshold; needs human approval"
        return escalation(self.rule_id, "capital_commitment", self._gate, reason, amount)


class IncidentSeverity:
    """An incident above the severity bound needs humans."""

    def __init__(self, gate: IncidentGate) -> None:
        self.rule_id = "gate.incident_severity"
        self.actions: frozenset[str] | None = frozenset({"open_incident"})
        self._gate = gate

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        severity = int(proposal.args["severity"])
        bound = self._gate.severity_bound
        if severity <= bound:
            return None
        reason = f"incident severity {severity} is above the bound {bound}; needs human approval"
        return escalation(self.rule_id, "incident_severity", self._gate, reason, None)


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
