"""Helios's part of the policy model: the typed sections of its policies' `limits:` (the price band, the claims
library, jurisdictions, credit limits and tiers, the discount guardrail), the models of the gates its built-in
rules read with parameters of their own, and what a Helios policy that writes no `rules:` must declare."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from coalition.domain import SectionProblem
from coalition.governance.policy import Gate, HardLimits, Money, Policy, section_problem

# The gates Helios's default policy declares (and its built-in rules read).
GATES: tuple[str, ...] = (
    "market_entry",
    "pricing_policy_change",
    "compliance_change",
    "capital_commitment",
    "incident_severity",
    "settlement_policy_change",
    "budget_overrun",
)

# The limit sections the built-in rules enforce: a Helios policy that writes its own rules must read each it declares.
ENFORCED_LIMITS: tuple[str, ...] = ("pricing", "claims", "jurisdictions", "max_credit_usd", "max_discount_pct")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PricingLimits(_Frozen):
    """The price band (USD/MWh) and how far above the region's base price a price may surge."""

    floor: Money = Field(gt=0)
    ceiling: Money = Field(gt=0)
    surge_cap_pct: Money = Field(ge=0)

    @model_validator(mode="after")
    def _band(self) -> PricingLimits:
        if self.floor >= self.ceiling:
            raise ValueError(f"floor {self.floor} must be below ceiling {self.ceiling}")
        return self


class ClaimsLimits(_Frozen):
    """The compliance-approved claims library and the phrases no copy may contain."""

    approved: list[str] = Field(default_factory=list)
    banned: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> ClaimsLimits:
        for claim in self.approved:
            for phrase in self.banned:
                if phrase.casefold() in claim.casefold():
                    raise ValueError(f"approved claim {claim!r} contains the banned phrase {phrase!r}")
        return self


class Jurisdictions(_Frozen):
    """Where the business may operate before any jurisdiction pack is published."""

    allowed: list[str] = Field(default_factory=list)
    restricted: list[str] = Field(default_factory=list)
    prohibited: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _each_once(self) -> Jurisdictions:
        seen: dict[str, str] = {}
        for status in ("allowed", "restricted", "prohibited"):
            for region in getattr(self, status):
                if region in seen:
                    raise ValueError(f"region {region!r} is both {seen[region]} and {status}")
                seen[region] = status
        return self

    def statuses(self) -> dict[str, str]:
        return {r: s for s in ("allowed", "restricted", "prohibited") for r in getattr(self, s)}


class HeliosLimits(HardLimits):
    """A Helios policy's hard limits: the sections below (what the built-in rules read: a policy that writes no
    `rules:` needs them) and, as in any policy, other named limits its rules read as `limits.<name>`."""

    pricing: PricingLimits | None = None
    claims: ClaimsLimits | None = None
    jurisdictions: Jurisdictions | None = None
    max_credit_usd: Money | None = Field(default=None, ge=0)
    credit_tiers: dict[str, Money] = Field(default_factory=dict)
    max_discount_pct: Money | None = Field(default=None, ge=0, le=100)

    @model_serializer(mode="wrap")
    def _without_absent_sections(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Sections the document does not have are not dumped (as null): a policy rebuilt from its dump, and
        expressions reading `limits`, see what was written."""
        dumped: dict[str, Any] = handler(self)
        return {k: v for k, v in dumped.items() if not (v is None and k in ENFORCED_LIMITS)}

    @model_validator(mode="after")
    def _tiers_within_max(self) -> HeliosLimits:
        for tier, amount in self.credit_tiers.items():
            if self.max_credit_usd is not None and amount > self.max_credit_usd:
                raise ValueError(f"credit tier {tier!r} ({amount}) exceeds max_credit_usd {self.max_credit_usd}")
        return self


def limits_of(policy: Policy) -> HeliosLimits:
    """A Helios policy's limits, as their model (a policy of the pack is validated with it)."""
    limits = policy.limits
    assert isinstance(limits, HeliosLimits), f"policy {policy.name} is not a Helios policy"
    return limits


class CapitalGate(Gate):
    """Large capital commitments (the built-in rules): escalate when the amount reaches the threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold_usd: Money = Field(ge=0)


class IncidentGate(Gate):
    """Incidents (the built-in rules): escalate when the severity (1..5) is above the bound."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    severity_bound: int = Field(ge=1, le=5)


# The gates the built-in rules read with parameters of their own (validated with these models).
GATE_MODELS: dict[str, type[Gate]] = {"capital_commitment": CapitalGate, "incident_severity": IncidentGate}


def check_built_in(policy: Policy) -> HeliosLimits:
    """A Helios policy that writes no `rules:` declares every gate and limit section the built-in rules read:
    SectionProblem names the first it lacks. Its limits, checked."""
    for name in GATES:
        if name not in policy.gates:
            raise SectionProblem("gates", f"{name!r} is required (the rules built into the code use it)")
    for name, model in GATE_MODELS.items():
        try:
            model.model_validate(policy.gates[name].model_dump())
        except ValidationError as exc:
            raise section_problem(f"gates.{name}", exc) from None
    limits = limits_of(policy)
    for name in ENFORCED_LIMITS:
        if getattr(limits, name) is None:
            raise SectionProblem(f"limits.{name}", "required key is missing (the rules built into the code use it)")
    return limits
