"""Typed views of Helios's observation data (world → agents) and agent-message data (agent → agent), per
docs/design.md, on the core's bases (coalition.agents.payloads): world data read tolerantly, agent data strict.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import ConfigDict, Field

from coalition.agents.payloads import AgentData, Brief, WorldData

# -- observations ---------------------------------------------------------------------------------------


class PricingBand(WorldData):
    floor: Decimal = Field(ge=0)
    ceiling: Decimal = Field(gt=0)
    surge_cap_pct: Decimal = Field(ge=0)


class PolicyBrief(Brief):
    """`policy.brief`: the rules an agent must know (informative; governance enforces them anyway)."""

    pricing: PricingBand | None = None
    max_discount_pct: Decimal | None = None
    max_credit_usd: Decimal | None = None
    allowed_jurisdictions: list[str] = Field(default_factory=list)
    credit_tiers: dict[str, Decimal] = Field(default_factory=dict)
    incident_severity_bound: int | None = None


class RegionPrice(WorldData):
    price: Decimal = Field(ge=0)
    base_price: Decimal = Field(gt=0)


class SettlementState(WorldData):
    window: str = "T+1"
    reserve_ratio: Decimal = Decimal(0)
    paused: list[str] = Field(default_factory=list)


class AgentBudget(WorldData):
    """One agent's money budget for the period and what the world has seen it spend."""

    budget_usd: Decimal = Field(ge=0)
    spent_usd: Decimal = Field(ge=0)


class MarketSnapshot(WorldData):
    """`market.snapshot`: the state of the business today."""

    day: int = 0
    prices: dict[str, RegionPrice] = Field(default_factory=dict)
    active_markets: list[str] = Field(default_factory=list)
    settlement: SettlementState | None = None
    pricing_policy: PricingBand | None = None
    open_incidents: list[str] = Field(default_factory=list)
    budgets: dict[str, AgentBudget] = Field(default_factory=dict)
    # Running totals since day 0 (None from a world that does not report them): fees earned, costs, margin.
    revenue_usd: Decimal | None = Field(default=None, ge=0)
    costs_usd: Decimal | None = Field(default=None, ge=0)
    margin_pct: Decimal | None = None


class RegionSignal(WorldData):
    regulatory_viability: Decimal = Field(ge=0, le=1)
    demand: Decimal = Field(ge=0, le=1)
    price_sensitivity: Decimal = Field(ge=0, le=1)
    legal_path: bool


class Source(WorldData):
    id: str
    title: str = ""


class MarketSignals(WorldData):
    """`market.signals`: per-region evidence for research's scoring."""

    regions: dict[str, RegionSignal] = Field(min_length=1)
    sources: list[Source] = Field(default_factory=list)


class NewsItem(WorldData):
    """`news`: where an untrusted text came from (the text itself travels in `Observation.text`)."""

    source: str = ""
    url: str = ""


class BudgetPressure(WorldData):
    topic: str = Field(min_length=1)
    cost_usd: Decimal = Field(gt=0)


class SupplyShock(WorldData):
    region: str = Field(min_length=1)
    supply_change_pct: Decimal = Field(ge=-100)  # below -100 % there is nothing left to lose
    demand_change_pct: Decimal = Field(default=Decimal(0), ge=-100)
    cause: str = ""


class SettlementMismatch(WorldData):
    region: str = Field(min_length=1)
    gap_usd: Decimal = Field(ge=0)
    inflow_usd: Decimal = Field(ge=0)
    outflow_usd: Decimal = Field(ge=0)


class CapitalNeed(WorldData):
    amount_usd: Decimal = Field(gt=0)
    purpose: str = Field(min_length=1)


class GrowthGoal(WorldData):
    region: str = Field(min_length=1)
    budget_usd: Decimal = Field(ge=0)
    channel: str = Field(min_length=1)
    discount_pct: Decimal = Field(default=Decimal(0), ge=0, le=100)
    draft_copy: str = Field(min_length=1)
    claims: list[str] = Field(default_factory=list)


class ExperimentPlan(WorldData):
    """`experiment.plan`: a growth micro-experiment to run, with its predicted lift and the rule that stops it."""

    experiment_id: str = Field(min_length=1)
    hypothesis: str = Field(min_length=1)
    budget_usd: Decimal = Field(ge=0)
    metric: str = Field(min_length=1)
    predicted_lift_pct: Decimal
    stop_threshold: Decimal
    # "above": stop once the metric exceeds the threshold (a cost such as CAC); "below": once it falls under it.
    stop_when: Literal["above", "below"] = "above"
    region: str = Field(min_length=1)
    channel: str = Field(min_length=1)


class ExperimentResult(WorldData):
    """`experiment.result`: one day's reading of a running experiment (`value` is the plan's metric)."""

    experiment_id: str = Field(min_length=1)
    day: int = Field(ge=0)
    value: Decimal
    spend_usd: Decimal = Field(ge=0)
    conversions: int = Field(ge=0)
    cac_usd: Decimal = Field(ge=0)
    ltv_usd: Decimal = Field(ge=0)
    lift_pct: Decimal


class CustomerComplaints(WorldData):
    region: str = Field(min_length=1)
    count: int = Field(ge=0)
    topic: str = Field(min_length=1)


class RegulatoryChange(WorldData):
    region: str = Field(min_length=1)
    status: Literal["allowed", "restricted", "prohibited"]
    obligations: list[str] = Field(default_factory=list)
    effective: date
    material: bool = False


class AffectedCustomer(WorldData):
    id: str = Field(min_length=1)
    segment: str = ""
    lost_kwh: Decimal = Field(ge=0)


class MeterOutage(WorldData):
    region: str = Field(min_length=1)
    incident_hint: str = ""
    meters_down: int = Field(default=0, ge=0)
    hours: Decimal = Field(ge=0)
    customers: list[AffectedCustomer] = Field(default_factory=list)


class MeterRestored(WorldData):
    region: str = Field(min_length=1)


class SuspiciousTrades(WorldData):
    accounts: list[str] = Field(min_length=1)
    pattern: str = Field(min_length=1)
    value_usd: Decimal = Field(ge=0)
    severity_hint: int = Field(default=3, ge=1, le=5)


class DisputeFacts(WorldData):
    """The verification facts the dispute rules read, typed (a case may carry other facts; nobody reads them)."""

    days_late: int | None = Field(default=None, ge=0)
    waivers_last_12_months: int | None = Field(default=None, ge=0)
    settlement_error: bool | None = None
    lost_kwh: Decimal | None = Field(default=None, ge=0)


DISPUTE_KINDS = ("late_fee", "settlement_fee", "outage_credit")  # the kinds the dispute rules cover


class DisputeCase(WorldData):
    """`dispute`: a customer's billing dispute, whatever channel it came through.

    `facts` stays raw: ops reads each fact it needs through DisputeFacts, and an unreadable one counts as a
    verification step not done (the case is still answered), never as an unusable case."""

    case_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    amount_usd: Decimal = Field(ge=0)
    facts: dict[str, Any] = Field(default_factory=dict)


# -- agent messages -------------------------------------------------------------------------------------


class RankedRegion(AgentData):
    region: str
    score: float
    regulatory_viability: float
    demand: float
    price_sensitivity: float


class ScreeningFlag(AgentData):
    """An untrusted text research screened: where it came from and which patterns it matched."""

    evidence_id: str
    source: str
    flags: list[str]


class Shortlist(AgentData):
    """`market.shortlist` (research → finance, legal, marketing)."""

    ranked: list[RankedRegion]
    screening: list[ScreeningFlag] = Field(default_factory=list)


class NoGoRegion(AgentData):
    region: str
    reason: str


class NoGoRegions(AgentData):
    """`no_go.regions` (research → legal)."""

    regions: list[NoGoRegion] = Field(min_length=1)


class PriceGuardrails(AgentData):
    """`price.guardrails` (finance → marketing)."""

    floor: float
    ceiling: float
    surge_cap_pct: float
    max_discount_pct: float | None = None


class ClaimsReviewRequest(AgentData):
    """`claims.review_request` (marketing → legal)."""

    campaign_id: str
    copy_text: str = Field(alias="copy")
    claims: list[str]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True)


class Finding(AgentData):
    phrase: str
    rule: Literal["banned_claim", "unapproved_claim"]
    suggestion: str


class ClaimsReview(AgentData):
    """`claims.review` (legal → marketing)."""

    campaign_id: str
    approved: bool
    findings: list[Finding]
    revised_copy: str
    revised_claims: list[str]


class ObligationsNotice(AgentData):
    """`obligations` (legal → ops, marketing)."""

    region: str
    status: str
    obligations: list[str]
    effective: str


class IncidentNotice(AgentData):
    """`incident.notice` (ops → finance, marketing, legal)."""

    incident_id: str
    severity: int = Field(ge=1, le=5)
    regions: list[str]
    affected_customers: int = Field(ge=0)


class GrowthMetrics(AgentData):
    """`growth.metrics` (marketing → finance): what acquiring a customer really costs and returns."""

    experiment_id: str
    day: int
    cac_usd: float
    ltv_usd: float
    lift_pct: float
    spend_usd: float
    conversions: int
    status: Literal["running", "stopped"]
