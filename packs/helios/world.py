"""The simulated Helios Renewables Exchange: the business the agents run, changed only by the executor and by
scheduled outside events, with a deterministic daily economics step."""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from coalition.agents import money
from coalition.packs.helios.policy_model import PricingLimits
from coalition.scenarios.errors import Problem, WorldError

RegulatoryStatus = Literal["allowed", "restricted", "prohibited"]
SettlementWindow = Literal["T+1", "T+3"]
WINDOW_DAYS: dict[str, int] = {"T+1": 1, "T+3": 3}
PRODUCER_SEGMENTS = ("residential_solar", "community_wind", "microgrid")
BUYER_SEGMENTS = ("household", "small_business", "commercial")
# Average load (kW) a customer of each segment puts through its meter: what an outage hour loses.
SEGMENT_KW: dict[str, Decimal] = {
    "residential_solar": Decimal("5"),
    "community_wind": Decimal("40"),
    "microgrid": Decimal("25"),
    "household": Decimal("1.5"),
    "small_business": Decimal("6"),
    "commercial": Decimal("30"),
}


def cents(value: Decimal | int | str | float) -> Decimal:
    """Round money half-even to cents, from any JSON number or decimal string (the agents' rounding exactly:
    money.cents(money.dec(value)), spelled out because a run rounds the world's every figure, ~1,700 a day)."""
    return (value if isinstance(value, Decimal) else Decimal(str(value))).quantize(money.CENT, ROUND_HALF_EVEN)


def money_json(value: Decimal) -> float:
    """Money at the edge of a message: a JSON number with at most two decimals."""
    return float(cents(value))


Money = Annotated[Decimal, AfterValidator(cents)]
MAX_SPEC_USD = Decimal("1e12")  # a scenario's amounts: a trillion dollars is beyond any Helios story
MAX_SPEC_MW = Decimal("1e6")
# An amount a scenario file gives: never negative, never absurd (1e300 once ended a run in a traceback).
SpecMoney = Annotated[Decimal, Field(ge=0, le=MAX_SPEC_USD), AfterValidator(cents)]
Share = Annotated[float, Field(ge=0, le=1)]


class _Spec(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid", allow_inf_nan=False)


class RegionSpec(_Spec):
    """A region as the scenario file describes it on day 0."""

    code: str = Field(pattern=r"^[A-Z]{2,3}$")
    name: str = Field(min_length=1)
    status: RegulatoryStatus = "allowed"
    active: bool = False
    base_price: SpecMoney = Field(gt=0)
    price: SpecMoney | None = Field(default=None, gt=0)
    supply_mw: Decimal = Field(ge=0, le=MAX_SPEC_MW)
    demand_mw: Decimal = Field(ge=0, le=MAX_SPEC_MW)
    demand: Share = 0.5
    price_sensitivity: Share = 0.5
    regulatory_viability: Share = 0.5
    producers: int | None = Field(default=None, ge=0, le=10_000)
    buyers: int | None = Field(default=None, ge=0, le=10_000)


class SettlementSpec(_Spec):
    """How long producers wait for their money, and the share of that backlog held in reserve."""

    window: SettlementWindow = "T+1"
    reserve_ratio: Decimal = Field(default=Decimal("0.1"), ge=0, le=1)


class WorldSpec(_Spec):
    """The world section of a scenario file: Helios on day 0."""

    cash_usd: SpecMoney
    reserves_usd: SpecMoney = Decimal("0.00")  # as validated, so scenario_hash survives a round trip
    fee_pct: Decimal = Field(default=Decimal("2.5"), ge=0, le=100)
    capacity_factor: Decimal = Field(default=Decimal("0.25"), gt=0, le=1)
    daily_opex_usd: SpecMoney = Field(default=Decimal("0"), ge=0)
    cost_per_reach_usd: SpecMoney = Field(default=Decimal("2.50"), gt=0)
    producers_per_region: int = Field(default=20, ge=0, le=10_000)
    buyers_per_region: int = Field(default=30, ge=0, le=10_000)
    settlement: SettlementSpec = SettlementSpec()
    regions: list[RegionSpec] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_price_band(cls, world: Any) -> Any:
        if isinstance(world, Mapping) and "pricing_policy" in world:
            reason = (
                "the price band is the policy's limits.pricing (one band for governance, agents and KPIs): "
                "remove this key, or point `policy:` at a policy file with another band"
            )
            raise Problem(reason, ("pricing_policy",))
        return world

    @model_validator(mode="after")
    def _unique_regions(self) -> WorldSpec:
        seen: set[str] = set()
        for region in self.regions:
            if region.code in seen:
                raise ValueError(f"region {region.code} is listed twice")
            seen.add(region.code)
        return self


class _State(BaseModel):
    model_config = ConfigDict(
        defer_build=True, extra="forbid", allow_inf_nan=False, validate_default=True, validate_assignment=True
    )


class Region(_State):
    """One regional market: its rules, its prices, its physical supply and demand."""

    code: str
    name: str
    status: RegulatoryStatus
    active: bool
    entry_sequence: int | None = None
    investment_usd: Money = Decimal("0")
    price: Money
    base_price: Money
    supply_mw: Decimal
    demand_mw: Decimal
    demand: float
    price_sensitivity: float
    regulatory_viability: float
    settlement_paused: bool = False
    meters_down: int = 0


class Customer(_State):
    """A synthetic producer or buyer; credits are what Helios has paid it back for incidents."""

    id: str
    region: str
    role: Literal["producer", "buyer"]
    segment: str
    credits_usd: Money = Decimal("0")


class PricingPolicy(_State):
    """The price band in force: the policy's `limits.pricing` on day 0, then whatever an executed
    change_pricing_policy set (the one band the KPIs judge prices against)."""

    floor: Money
    ceiling: Money
    surge_cap_pct: Decimal


class Payout(_State):
    """Money owed to a region's producers for one day of trading, due after the settlement window."""

    region: str
    due_day: int
    amount_usd: Money


class Settlement(_State):
    window: SettlementWindow
    reserve_ratio: Decimal
    payouts: list[Payout] = Field(default_factory=list)
    mismatch_usd: Money = Decimal("0")

    @property
    def backlog_usd(self) -> Decimal:
        return cents(sum((p.amount_usd for p in self.payouts), Decimal("0")))


class Incident(_State):
    id: str
    kind: str
    severity: int
    regions: list[str]
    affected_customers: int
    summary: str
    status: Literal["open", "resolved"] = "open"
    opened_day: int
    resolved_day: int | None = None


class Credit(_State):
    customer_id: str
    incident_id: str
    tier: str
    amount_usd: Money
    day: int


class Campaign(_State):
    id: str
    region: str
    channel: str
    copy_text: str
    claims: list[str]
    budget_usd: Money
    discount_pct: Decimal
    reach: int
    day: int


class Experiment(_State):
    id: str
    hypothesis: str
    budget_usd: Money
    metric: str
    stop_threshold: Decimal
    reach: int
    status: Literal["running", "stopped"] = "running"
    stop_reason: str | None = None
    day: int


class JurisdictionPack(_State):
    region: str
    status: RegulatoryStatus
    obligations: list[str]
    effective: date
    material: bool
    day: int


class Record(_State):
    """Something the business did that leaves a trace but no further state (notice, commitment, transfer…)."""

    kind: str
    day: int
    amount_usd: Money | None = None
    fields: dict[str, str] = Field(default_factory=dict)


class ModelBudgetGrant(_State):
    """More model budget a human granted an agent (an executed request_model_budget); it moves no cash."""

    agent: str
    proposal_id: str
    tokens: int
    cost_usd: Money
    reason: str
    day: int


class Totals(_State):
    """Running sums since day 0, the basis of the KPIs."""

    volume_mwh: Decimal = Decimal("0")
    gross_usd: Money = Decimal("0")
    revenue_usd: Money = Decimal("0")
    payouts_usd: Money = Decimal("0")
    opex_usd: Money = Decimal("0")
    spend_usd: Money = Decimal("0")
    credits_usd: Money = Decimal("0")


class WorldState(_State):
    """Everything the world knows; `World.snapshot()` is exactly this, as JSON."""

    seed: int
    day: int = 0
    opened_through: int = -1
    cash_usd: Money
    reserves_usd: Money
    fee_pct: Decimal
    capacity_factor: Decimal
    daily_opex_usd: Money
    cost_per_reach_usd: Money
    pricing_policy: PricingPolicy
    settlement: Settlement
    regions: dict[str, Region]
    customers: dict[str, Customer]
    incidents: dict[str, Incident] = Field(default_factory=dict)
    credits: list[Credit] = Field(default_factory=list)
    campaigns: dict[str, Campaign] = Field(default_factory=dict)
    experiments: dict[str, Experiment] = Field(default_factory=dict)
    frozen_accounts: dict[str, Record] = Field(default_factory=dict)
    jurisdiction_packs: dict[str, JurisdictionPack] = Field(default_factory=dict)
    capital_commitments: list[Record] = Field(default_factory=list)
    notifications: list[Record] = Field(default_factory=list)
    research: list[Record] = Field(default_factory=list)
    transfers: list[Record] = Field(default_factory=list)
    credential_rotations: list[Record] = Field(default_factory=list)
    model_budget_grants: list[ModelBudgetGrant] = Field(default_factory=list)
    spent_by_agent: dict[str, Money] = Field(default_factory=dict)
    totals: Totals = Field(default_factory=Totals)
    applied_keys: dict[str, str] = Field(default_factory=dict)  # idempotency key → proposal id
    # Sales' signed partnerships and liquidity's offers, by partner / offer id (absent from a snapshot while
    # empty, so the worlds of runs without those agents are what they were before them).
    partnerships: dict[str, Record] = Field(default_factory=dict)
    liquidity_offers: dict[str, Record] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _without_empty_newcomers(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {k: v for k, v in dumped.items() if not (k in _NEWCOMERS and not v)}


_NEWCOMERS = frozenset({"partnerships", "liquidity_offers"})


def _customers(seed: int, spec: WorldSpec) -> dict[str, Customer]:
    """Synthetic customers per region: ids from the region and a counter, segments from the scenario seed."""
    customers: dict[str, Customer] = {}
    for region in spec.regions:
        rng = random.Random(f"{seed}:{region.code}:customers")  # noqa: S311 - a simulation, not cryptography
        plan: tuple[tuple[Literal["producer", "buyer"], str, int], ...] = (
            ("producer", "P", region.producers if region.producers is not None else spec.producers_per_region),
            ("buyer", "B", region.buyers if region.buyers is not None else spec.buyers_per_region),
        )
        for role, letter, count in plan:
            segments = PRODUCER_SEGMENTS if role == "producer" else BUYER_SEGMENTS
            for n in range(1, count + 1):
                cid = f"{region.code}-{letter}{n:04d}"
                customers[cid] = Customer(id=cid, region=region.code, role=role, segment=rng.choice(segments))
    return customers


def _assign(model: BaseModel, **values: Any) -> None:
    """Set fields of the world's state to values a day's trading computed from the state itself (money rounded with
    `cents`, as a Money field rounds it; a list of the state's own payouts), without validating them again: an
    assignment's validation (validate_assignment) was a fifth of a day's trading and changed none of these. What
    the executor's handlers and outside events assign stays validated."""
    model.__dict__.update(values)
    model.__pydantic_fields_set__.update(values)


class World:
    """The Helios business as state plus the rules of its daily economics; deterministic for a given seed."""

    def __init__(self, state: WorldState) -> None:
        self._state = state

    @classmethod
    def from_spec(cls, spec: WorldSpec, seed: int, pricing: PricingLimits) -> World:
        """Helios on day 0 as the scenario describes it, priced within the governing policy's band."""
        regions = {
            r.code: Region(
                code=r.code,
                name=r.name,
                status=r.status,
                active=r.active,
                price=r.price if r.price is not None else r.base_price,
                base_price=r.base_price,
                supply_mw=r.supply_mw,
                demand_mw=r.demand_mw,
                demand=r.demand,
                price_sensitivity=r.price_sensitivity,
                regulatory_viability=r.regulatory_viability,
            )
            for r in spec.regions
        }
        state = WorldState(
            seed=seed,
            cash_usd=spec.cash_usd,
            reserves_usd=spec.reserves_usd,
            fee_pct=spec.fee_pct,
            capacity_factor=spec.capacity_factor,
            daily_opex_usd=spec.daily_opex_usd,
            cost_per_reach_usd=spec.cost_per_reach_usd,
            pricing_policy=PricingPolicy(
                floor=pricing.floor, ceiling=pricing.ceiling, surge_cap_pct=pricing.surge_cap_pct
            ),
            settlement=Settlement(window=spec.settlement.window, reserve_ratio=spec.settlement.reserve_ratio),
            regions=regions,
            customers=_customers(seed, spec),
        )
        return cls(state)

    @property
    def state(self) -> WorldState:
        """The live state (the executor's handlers change it; everyone else should only read it)."""
        return self._state

    @property
    def day(self) -> int:
        return self._state.day

    def region(self, code: str) -> Region:
        try:
            return self._state.regions[code]
        except KeyError:
            known = ", ".join(sorted(self._state.regions))
            raise WorldError(f"unknown region {code!r} (known: {known})") from None

    def customers_in(self, region: str) -> list[Customer]:
        return [c for c in self._state.customers.values() if c.region == region]

    # --- time ------------------------------------------------------------------------------------------

    def advance_day(self, day: int) -> dict[str, int | float]:
        """Move to `day`, simulating the trading and settlement of every day left behind; returns their sums."""
        if day < self._state.day:
            raise WorldError(f"the world is on day {self._state.day}; it cannot go back to day {day}")
        start = self._state.day
        before = self._state.totals.model_copy()
        for d in range(start, day):
            self._trade_day(d)
        self._state.day = day
        after = self._state.totals
        return {
            "days": day - start,
            "gross_usd": money_json(after.gross_usd - before.gross_usd),
            "revenue_usd": money_json(after.revenue_usd - before.revenue_usd),
            "payouts_usd": money_json(after.payouts_usd - before.payouts_usd),
        }

    def _trade_day(self, d: int) -> None:
        # The day's sums are kept in locals and each field is assigned once, unvalidated (_assign): the same
        # roundings in the same order give the same figures.
        s = self._state
        t = s.totals
        self._pay_due(d)
        window_days = WINDOW_DAYS[s.settlement.window]
        cash, volume, gross_total, revenue = s.cash_usd, t.volume_mwh, t.gross_usd, t.revenue_usd
        for region in sorted((r for r in s.regions.values() if r.active), key=lambda r: r.code):
            gross, mwh = self._trading(region)
            if gross <= 0:
                continue
            fee = cents(gross * s.fee_pct / 100)
            cash = cents(cash + gross)
            s.settlement.payouts.append(Payout(region=region.code, due_day=d + window_days, amount_usd=gross - fee))
            volume += mwh
            gross_total = cents(gross_total + gross)
            revenue = cents(revenue + fee)
        _assign(s, cash_usd=cents(cash - s.daily_opex_usd))
        _assign(
            t,
            volume_mwh=volume,
            gross_usd=gross_total,
            revenue_usd=revenue,
            opex_usd=cents(t.opex_usd + s.daily_opex_usd),
        )
        self._rebalance_reserves()

    def _trading(self, region: Region) -> tuple[Decimal, Decimal]:
        """One day of a region's trading: energy matched (MWh) at its price, less what dark meters cannot see."""
        s = self._state
        premium = (region.price - region.base_price) / region.base_price
        factor = Decimal("1") - Decimal(str(region.price_sensitivity)) * premium
        factor = min(max(factor, Decimal("0.2")), Decimal("1.5"))
        megawatts = min(region.supply_mw, region.demand_mw * factor)
        if region.meters_down:
            metered = max(1, len(self.customers_in(region.code)))
            megawatts *= max(Decimal("0"), 1 - Decimal(region.meters_down) / metered)
        mwh = (megawatts * 24 * s.capacity_factor).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
        return cents(mwh * region.price), mwh

    def _pay_due(self, d: int) -> None:
        s = self._state
        keep: list[Payout] = []
        cash, paid = s.cash_usd, s.totals.payouts_usd
        for payout in s.settlement.payouts:
            if payout.due_day <= d and not s.regions[payout.region].settlement_paused:
                cash = cents(cash - payout.amount_usd)
                paid = cents(paid + payout.amount_usd)
            else:
                keep.append(payout)
        _assign(s, cash_usd=cash)
        _assign(s.totals, payouts_usd=paid)
        _assign(s.settlement, payouts=keep)

    def _rebalance_reserves(self) -> None:
        """Hold reserve_ratio of the settlement backlog in reserves, moving the difference from or to cash."""
        s = self._state
        target = cents(s.settlement.backlog_usd * s.settlement.reserve_ratio)
        _assign(s, cash_usd=cents(s.cash_usd - (target - s.reserves_usd)), reserves_usd=target)

    def rebalance_reserves(self) -> None:
        """Re-apply the reserve rule now (after a settlement policy change)."""
        self._rebalance_reserves()

    # --- outside events --------------------------------------------------------------------------------

    def apply_event(self, kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The physical effect of a scheduled outside event (a shock, an outage); returns what changed."""
        s = self._state
        if kind == "supply.shock":
            region = self.region(str(data["region"]))
            old = (region.supply_mw, region.demand_mw)
            region.supply_mw = _scaled(region.supply_mw, data.get("supply_change_pct", 0))
            region.demand_mw = _scaled(region.demand_mw, data.get("demand_change_pct", 0))
            return {
                "supply_mw": {"region": region.code, "old": float(old[0]), "new": float(region.supply_mw)},
                "demand_mw": {"region": region.code, "old": float(old[1]), "new": float(region.demand_mw)},
            }
        if kind == "meter.outage":
            region = self.region(str(data["region"]))
            region.meters_down = int(data.get("meters_down", 0))
            return {"meters_down": {"region": region.code, "new": region.meters_down}}
        if kind == "meter.restored":
            region = self.region(str(data["region"]))
            region.meters_down = 0
            return {"meters_down": {"region": region.code, "new": 0}}
        if kind == "settlement.mismatch":
            s.settlement.mismatch_usd = cents(s.settlement.mismatch_usd + cents(data.get("gap_usd", 0)))
            return {"mismatch_usd": money_json(s.settlement.mismatch_usd)}
        return {}

    def outage_customers(self, region: str, count: int, hours: Decimal | int | float) -> list[dict[str, Any]]:
        """The customers behind `count` dark meters in a region, with the energy each lost (deterministic)."""
        pool = sorted(self.customers_in(self.region(region).code), key=lambda c: c.id)
        rng = random.Random(f"{self._state.seed}:{region}:outage:{self._state.day}")  # noqa: S311 - simulation
        chosen = sorted(rng.sample(pool, min(count, len(pool))), key=lambda c: c.id)
        return [
            {
                "id": c.id,
                "segment": c.segment,
                "lost_kwh": float((SEGMENT_KW[c.segment] * Decimal(str(hours))).quantize(Decimal("0.1"))),
            }
            for c in chosen
        ]

    # --- views -----------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-safe data (money as decimal strings); `World.restore` reads it back."""
        return self._state.model_dump(mode="json")

    def snapshot_of(self, fields: Collection[str]) -> dict[str, Any]:
        """The state's fields of these names as `snapshot` has them (names of no field: left out)."""
        return self._state.model_dump(mode="json", include=set(fields))

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> World:
        return cls(WorldState.model_validate(dict(data)))

    def market_snapshot_data(self, budget_limits: Mapping[str, Decimal | int | str] | None = None) -> dict[str, Any]:
        """The data of today's `market.snapshot` observation (docs/design.md); budgets are per agent limits
        from governance, with the spend the world has seen executed."""
        s = self._state
        policy = s.pricing_policy
        return {
            "day": s.day,
            # a region's prices are Money fields, in cents already (validated on every assignment): money_json would
            # round them to what they are (a float depends on a decimal's value alone)
            "prices": {
                code: {"price": float(r.price), "base_price": float(r.base_price)}
                for code, r in sorted(s.regions.items())
            },
            "active_markets": sorted(code for code, r in s.regions.items() if r.active),
            "cash_usd": money_json(s.cash_usd),
            "reserves_usd": money_json(s.reserves_usd),
            **self._earnings(),
            "settlement": {
                "window": s.settlement.window,
                "reserve_ratio": float(s.settlement.reserve_ratio),
                "paused": sorted(code for code, r in s.regions.items() if r.settlement_paused),
                "backlog_usd": money_json(s.settlement.backlog_usd),
            },
            "pricing_policy": {
                "floor": money_json(policy.floor),
                "ceiling": money_json(policy.ceiling),
                "surge_cap_pct": float(policy.surge_cap_pct),
            },
            "open_incidents": sorted(i.id for i in s.incidents.values() if i.status == "open"),
            "budgets": {
                agent: {
                    "budget_usd": money_json(cents(limit)),
                    "spent_usd": money_json(s.spent_by_agent.get(agent, Decimal("0"))),
                }
                for agent, limit in sorted((budget_limits or {}).items())
            },
        }

    def _earnings(self) -> dict[str, float]:
        """Running revenue (fees), costs (opex, agent spend, credits) and margin since day 0: one formula for the
        daily snapshot and the run's KPIs, so the report's series ends where its summary does."""
        t = self._state.totals
        costs = t.opex_usd + t.spend_usd + t.credits_usd
        margin = (t.revenue_usd - costs) / t.revenue_usd * 100 if t.revenue_usd else Decimal("0")
        return {
            "revenue_usd": money_json(t.revenue_usd),
            "costs_usd": money_json(costs),
            "margin_pct": float(margin.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)),
        }

    def kpis(self) -> dict[str, Any]:
        """The numbers a run summary reports: revenue, margin, cash, reserves, backlog, incidents, prices vs band."""
        s = self._state
        t = s.totals
        policy = s.pricing_policy
        prices = {}
        for code, r in sorted(s.regions.items()):
            if not r.active:
                continue
            cap = cents(r.base_price * (1 + policy.surge_cap_pct / 100))
            in_band = policy.floor <= r.price <= policy.ceiling and r.price <= cap
            prices[code] = {"price": money_json(r.price), "base_price": money_json(r.base_price), "in_band": in_band}
        earnings = self._earnings()
        return {
            "day": s.day,
            "revenue_usd": earnings["revenue_usd"],
            "gross_volume_usd": money_json(t.gross_usd),
            "volume_mwh": float(t.volume_mwh),
            "costs_usd": earnings["costs_usd"],
            "margin_pct": earnings["margin_pct"],
            "cash_usd": money_json(s.cash_usd),
            "reserves_usd": money_json(s.reserves_usd),
            "backlog_usd": money_json(s.settlement.backlog_usd),
            "settlement_window": s.settlement.window,
            "active_markets": sorted(prices),
            "incidents": {
                "open": sum(1 for i in s.incidents.values() if i.status == "open"),
                "resolved": sum(1 for i in s.incidents.values() if i.status == "resolved"),
            },
            "credits_usd": money_json(t.credits_usd),
            "campaigns": len(s.campaigns),
            "prices": prices,
            "prices_in_band": all(p["in_band"] for p in prices.values()),
        }


def _scaled(value: Decimal, pct: Any) -> Decimal:
    factor = 1 + Decimal(str(pct)) / 100
    return max(Decimal("0"), (value * factor).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN))
