"""Helios's built-in decision gates (for a policy that writes no `rules:`): market entry, pricing- and
settlement-policy changes, material compliance changes, capital commitments and incidents."""

from __future__ import annotations

from coalition.bus.messages import ActionProposed
from coalition.governance.money import usd
from coalition.governance.policy import Gate
from coalition.governance.rules.arguments import number
from coalition.governance.rules.gates import escalation
from coalition.governance.state import GovernanceState
from coalition.governance.verdict import Finding
from coalition.packs.helios.policy_model import CapitalGate, IncidentGate


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
