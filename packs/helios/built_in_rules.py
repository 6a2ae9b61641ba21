"""The rules built into Helios for a policy that writes no `rules:` (every Helios run recorded before its rules
became policy expressions replays through them; tests/unit/test_rules_equivalence.py proves the written rules in
the shipped policy decide alike). Governance runs them after permissions and argument shapes (the pack's
GovernanceDecl.built_in_rules)."""

from __future__ import annotations

from collections.abc import Sequence

from coalition.governance.policy import Policy
from coalition.governance.rules.base import Rule
from coalition.packs.helios.gates import AlwaysGate, CapitalCommitment, IncidentSeverity, MaterialCompliance
from coalition.packs.helios.limits import Claims, CreditLimit, Discount, Jurisdiction, PriceBand
from coalition.packs.helios.policy_model import CapitalGate, IncidentGate, check_built_in


def built_in_rules(policy: Policy) -> Sequence[Rule]:
    """Hard limits, then gates, in order (SectionProblem when the policy lacks a gate or limit they read)."""
    limits, gates = check_built_in(policy), policy.gates
    assert limits.pricing is not None
    assert limits.claims is not None
    assert limits.jurisdictions is not None
    assert limits.max_discount_pct is not None
    assert limits.max_credit_usd is not None
    return [
        PriceBand(limits.pricing),
        Claims(limits.claims),
        Discount(limits.max_discount_pct),
        Jurisdiction(limits.jurisdictions),
        CreditLimit(limits.max_credit_usd),
        AlwaysGate("market_entry", gates["market_entry"], "enter_market", "market entry", "investment_usd"),
        AlwaysGate(
            "pricing_policy_change", gates["pricing_policy_change"], "change_pricing_policy", "a pricing policy change"
        ),
        AlwaysGate(
            "settlement_policy_change",
            gates["settlement_policy_change"],
            "set_settlement_policy",
            "a settlement policy change",
        ),
        MaterialCompliance(gates["compliance_change"]),
        CapitalCommitment(CapitalGate.model_validate(gates["capital_commitment"].model_dump())),
        IncidentSeverity(IncidentGate.model_validate(gates["incident_severity"].model_dump())),
    ]
