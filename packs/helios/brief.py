"""What Helios's agents are told of the governing policy on day 0 (the `policy.brief` observation's data): the
claims library, the price band, the credit and discount limits, where the business may operate and the incident
bound. Informative: governance enforces the policy whatever the agents believe."""

from __future__ import annotations

from typing import Any

from coalition.governance.policy import Policy
from coalition.packs.helios.policy_model import IncidentGate, limits_of


def brief(policy: Policy) -> dict[str, Any]:
    """The brief's data (the policy has the sections: Helios's policies are checked for them at load)."""
    limits = limits_of(policy)
    assert limits.claims is not None
    assert limits.pricing is not None
    assert limits.jurisdictions is not None
    incident = IncidentGate.model_validate(policy.gate("incident_severity").model_dump())
    return {
        "approved_claims": list(limits.claims.approved),
        "banned_claims": list(limits.claims.banned),
        "pricing": {
            "floor": str(limits.pricing.floor),
            "ceiling": str(limits.pricing.ceiling),
            "surge_cap_pct": str(limits.pricing.surge_cap_pct),
        },
        "max_discount_pct": str(limits.max_discount_pct),
        "max_credit_usd": str(limits.max_credit_usd),
        "allowed_jurisdictions": list(limits.jurisdictions.allowed),
        "credit_tiers": {tier: str(amount) for tier, amount in limits.credit_tiers.items()},
        "incident_severity_bound": incident.severity_bound,
    }
