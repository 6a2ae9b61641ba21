"""Finance's decisions: entry sequencing, price guardrails, market-clearing and in-band prices, settlement
policy and capital commitments — deterministic Decimal arithmetic, rounded half-even to cents."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_UP, Decimal

from coalition.agents.facts import Facts
from coalition.agents.money import cents, cents_down, cents_up, dec, fmt, number
from coalition.packs.helios.payloads import (
    CapitalNeed,
    PolicyBrief,
    PriceGuardrails,
    PricingBand,
    SettlementMismatch,
    Shortlist,
    SupplyShock,
)

# Assumptions of the simple entry model (labelled as such in every rationale that uses them).
FEE_USD_PER_MWH = Decimal("3.50")  # platform take per traded MWh
VOLUME_AT_FULL_DEMAND_MWH = Decimal(200_000)  # yearly traded volume when demand = 1
FEE_PRESSURE = Decimal("0.30")  # price-sensitive markets compress the take by up to 30%
BASE_INVESTMENT_USD = Decimal(150_000)
REGULATORY_INVESTMENT_USD = Decimal(350_000)  # extra compliance build-out when viability is low
DEMAND_INVESTMENT_USD = Decimal(100_000)  # extra liquidity incentives when demand is high
MAX_ENTRIES = 2
ELASTICITY = Decimal("1.5")  # price response per unit of supply/demand imbalance
MIN_RESERVE_RATIO = Decimal("0.05")
MAX_RESERVE_RATIO = Decimal("0.50")


@dataclass(frozen=True, slots=True)
class EntryPlan:
    region: str
    sequence: int
    investment_usd: Decimal
    risk_adjusted_margin_usd: Decimal
    facts: Facts

    def args(self) -> dict[str, object]:
        return {"region": self.region, "sequence": self.sequence, "investment_usd": number(self.investment_usd)}


def plan_entries(
    shortlist: Shortlist, brief: PolicyBrief | None, active: list[str], *, max_entries: int = MAX_ENTRIES
) -> list[EntryPlan]:
    """Rank shortlisted regions by risk-adjusted contribution margin; enter the best ones in that order.

    Regions outside the allowed jurisdictions (when the brief names them) and markets already active are
    skipped. Ties are broken by region name.
    """
    allowed = set(brief.allowed_jurisdictions) if brief and brief.allowed_jurisdictions else None
    candidates: list[tuple[Decimal, str, Decimal, Decimal]] = []
    for entry in shortlist.ranked:
        if entry.region in active or (allowed is not None and entry.region not in allowed):
            continue
        viability, demand, sensitivity = (
            dec(entry.regulatory_viability),
            dec(entry.demand),
            dec(entry.price_sensitivity),
        )
        fee = FEE_USD_PER_MWH * (1 - FEE_PRESSURE * sensitivity)
        contribution = fee * VOLUME_AT_FULL_DEMAND_MWH * demand
        margin = cents(contribution * viability)
        investment = cents(
            BASE_INVESTMENT_USD + REGULATORY_INVESTMENT_USD * (1 - viability) + DEMAND_INVESTMENT_USD * demand
        ).quantize(Decimal(1000), rounding=ROUND_UP)
        if margin > 0:
            candidates.append((margin, entry.region, investment, contribution))
    candidates.sort(key=lambda c: (-c[0], c[1]))
    plans: list[EntryPlan] = []
    for sequence, (margin, region, investment, contribution) in enumerate(candidates[:max_entries], start=1):
        following = [c[1] for c in candidates[sequence:max_entries]]
        reasons = [
            f"{region} has the {'highest' if sequence == 1 else 'next'} risk-adjusted contribution margin "
            f"({fmt(margin)} USD/yr)",
            f"contribution {fmt(cents(contribution))} USD/yr weighted by regulatory viability",
        ]
        if following:
            reasons.append(f"{', '.join(following)} follow(s) in sequence")
        plans.append(
            EntryPlan(
                region=region,
                sequence=sequence,
                investment_usd=investment,
                risk_adjusted_margin_usd=margin,
                facts=Facts(
                    intent="propose",
                    decision=f"enter {region} as market #{sequence} with {fmt(investment)} USD of investment",
                    reasons=reasons,
                    figures={"margin_usd": fmt(margin), "investment_usd": fmt(investment)},
                    rules=[
                        "market entry is a decision gate (human approval)",
                        f"model assumptions: fee {FEE_USD_PER_MWH} USD/MWh, {VOLUME_AT_FULL_DEMAND_MWH} MWh/yr at "
                        "full demand",
                    ],
                ),
            )
        )
    return plans


def guardrails(brief: PolicyBrief) -> tuple[PriceGuardrails, Facts] | None:
    """The pricing band and discount cap marketing must respect, from the policy brief (None if unknown)."""
    if brief.pricing is None:
        return None
    band = brief.pricing
    rails = PriceGuardrails(
        floor=number(cents(band.floor)),
        ceiling=number(cents(band.ceiling)),
        surge_cap_pct=float(band.surge_cap_pct),
        max_discount_pct=float(brief.max_discount_pct) if brief.max_discount_pct is not None else None,
    )
    discount = f"discounts up to {brief.max_discount_pct}%" if brief.max_discount_pct is not None else "no discount cap"
    facts = Facts(
        intent="inform",
        decision=f"set price guardrails of {fmt(band.floor)}–{fmt(band.ceiling)} USD/MWh with {discount}",
        reasons=[f"no surge pricing above {band.surge_cap_pct}% over the base price"],
        rules=["pricing band and discount cap from the policy brief"],
    )
    return rails, facts


@dataclass(frozen=True, slots=True)
class PriceDecision:
    region: str
    price: Decimal
    facts: Facts

    def args(self) -> dict[str, object]:
        return {"region": self.region, "price": number(self.price)}


def clearing_price(shock: SupplyShock, base: Decimal, *, elasticity: Decimal = ELASTICITY) -> PriceDecision:
    """base × (1 + elasticity × imbalance), imbalance = demand change − supply change (in %), to cents."""
    imbalance = shock.demand_change_pct - shock.supply_change_pct
    price = max(cents(base * (1 + elasticity * imbalance / 100)), Decimal("0.01"))
    supply = "fell" if shock.supply_change_pct < 0 else "rose"
    return PriceDecision(
        region=shock.region,
        price=price,
        facts=Facts(
            intent="propose",
            decision=f"set the {shock.region} price to {fmt(price)} USD/MWh",
            reasons=[
                f"supply {supply} {abs(shock.supply_change_pct)}% while demand changed {shock.demand_change_pct:+}%"
                + (f" ({shock.cause})" if shock.cause else ""),
                f"the market-clearing model applies elasticity {elasticity} to a {imbalance:+}% imbalance on "
                f"the base of {fmt(base)} USD/MWh",
            ],
            figures={"base_price": fmt(base), "imbalance_pct": f"{imbalance}", "price": fmt(price)},
        ),
    )


def band_limits(base: Decimal, band: PricingBand) -> tuple[Decimal, Decimal]:
    """The lowest and highest price the band allows at this base (surge cap and ceiling, whichever binds)."""
    high = min(cents_down(band.ceiling), cents_down(base * (1 + band.surge_cap_pct / 100)))
    return cents_up(band.floor), high


def in_band(region: str, denied: Decimal, base: Decimal, band: PricingBand) -> PriceDecision | None:
    """After a denial: the nearest price inside the band (None when the denied price was already inside)."""
    low, high = band_limits(base, band)
    price = min(max(denied, low), high)
    if price == denied:
        return None
    side = "surge cap / ceiling" if denied > high else "floor"
    return PriceDecision(
        region=region,
        price=price,
        facts=Facts(
            intent="propose",
            decision=f"set the {region} price to {fmt(price)} USD/MWh instead",
            reasons=[
                f"governance denied {fmt(denied)} USD/MWh as outside the pricing band",
                f"{fmt(price)} USD/MWh is the {'maximum' if denied > high else 'minimum'} the band allows at the "
                f"base of {fmt(base)} USD/MWh",
            ],
            figures={"denied_price": fmt(denied), "band_low": fmt(low), "band_high": fmt(high)},
            rules=[f"{side}: floor {fmt(band.floor)}, ceiling {fmt(band.ceiling)}, surge cap {band.surge_cap_pct}%"],
        ),
    )


@dataclass(frozen=True, slots=True)
class SettlementDecision:
    window: str
    reserve_ratio: Decimal
    facts: Facts

    def args(self) -> dict[str, object]:
        return {"window": self.window, "reserve_ratio": float(self.reserve_ratio)}


def settlement_policy(mismatch: SettlementMismatch, current_window: str) -> SettlementDecision | None:
    """Move T+1 → T+3 and hold a reserve of gap / outflow (clamped to 5–50%, rounded up to whole %)."""
    if current_window == "T+3":
        return None
    outflow = mismatch.outflow_usd if mismatch.outflow_usd > 0 else mismatch.gap_usd
    raw = mismatch.gap_usd / outflow if outflow > 0 else MIN_RESERVE_RATIO
    ratio = min(max(raw, MIN_RESERVE_RATIO), MAX_RESERVE_RATIO).quantize(Decimal("0.01"), rounding=ROUND_UP)
    return SettlementDecision(
        window="T+3",
        reserve_ratio=ratio,
        facts=Facts(
            intent="propose",
            decision=f"move settlement from {current_window} to T+3 with a {ratio * 100:.0f}% reserve",
            reasons=[
                f"{mismatch.region} settlement is short {fmt(mismatch.gap_usd)} USD "
                f"(inflow {fmt(mismatch.inflow_usd)}, outflow {fmt(mismatch.outflow_usd)})",
                "a longer window and a reserve sized to the gap absorb the mismatch",
            ],
            figures={"gap_usd": fmt(mismatch.gap_usd), "reserve_ratio": f"{ratio}"},
            rules=["settlement policy change is a decision gate (human approval)"],
        ),
    )


@dataclass(frozen=True, slots=True)
class CapitalDecision:
    amount_usd: Decimal
    purpose: str
    facts: Facts

    def args(self) -> dict[str, object]:
        return {"amount_usd": number(self.amount_usd), "purpose": self.purpose}


def capital(need: CapitalNeed) -> CapitalDecision:
    amount = cents(need.amount_usd)
    return CapitalDecision(
        amount_usd=amount,
        purpose=need.purpose,
        facts=Facts(
            intent="propose",
            decision=f"commit {fmt(amount)} USD of capital to {need.purpose}",
            reasons=[f"the business asked for {fmt(amount)} USD for {need.purpose}"],
            figures={"amount_usd": fmt(amount)},
            rules=["large capital commitments are a decision gate (human approval above the threshold)"],
        ),
    )


# ASSUMPTION: one surge denial is a spike; the second in the same region within a run shows the surge cap no
# longer fits the market, so finance asks (it never decides) for a cap that would have covered the spike.
SURGE_DENIALS_BEFORE_POLICY_CHANGE = 2
SURGE_CAP_STEP_PCT = Decimal(5)


@dataclass(frozen=True, slots=True)
class PricingPolicyChange:
    floor: Decimal
    ceiling: Decimal
    surge_cap_pct: Decimal
    facts: Facts

    def args(self) -> dict[str, object]:
        return {
            "floor": number(self.floor),
            "ceiling": number(self.ceiling),
            "surge_cap_pct": number(self.surge_cap_pct),
        }


def pricing_policy_change(
    region: str, denials: int, denied: Decimal, base: Decimal, band: PricingBand
) -> PricingPolicyChange | None:
    """At the Nth surge denial in a region: propose the surge cap (in 5% steps) that would have covered it."""
    if denials != SURGE_DENIALS_BEFORE_POLICY_CHANGE or denied > band.ceiling or base <= 0:
        return None
    needed = (denied / base - 1) * 100
    cap = (needed / SURGE_CAP_STEP_PCT).to_integral_value(rounding=ROUND_CEILING) * SURGE_CAP_STEP_PCT
    if cap <= band.surge_cap_pct:
        return None
    return PricingPolicyChange(
        floor=band.floor,
        ceiling=band.ceiling,
        surge_cap_pct=cap,
        facts=Facts(
            intent="propose",
            decision=f"raise the surge cap from {band.surge_cap_pct}% to {cap}% over the base price",
            reasons=[
                f"{denials} clearing prices in {region} were denied as above the surge cap",
                f"{fmt(denied)} USD/MWh on a base of {fmt(base)} USD/MWh needs a cap of {cap}%",
            ],
            figures={"denials": str(denials), "denied_price": fmt(denied), "surge_cap_pct": str(cap)},
            rules=["a change to the pricing policy is a major pricing policy change: humans decide"],
        ),
    )
