"""Liquidity's decisions (seed H10): when one side of a regional market outgrows the other, a targeted offer to the
short side — a bonus to producers when buyers outgrow supply, a discount to buyers when supply outgrows demand — so
both sides scale in tandem, sized to the gap within the offer budget and the pricing limit. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Side = Literal["producers", "buyers"]


class RegionSides(BaseModel):
    """One region's two sides: how many active producers and buyers, and their growth since the last count."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str = Field(min_length=1)
    producers: int = Field(ge=0)
    buyers: int = Field(ge=0)
    producers_growth_pct: Decimal = Field(allow_inf_nan=False)
    buyers_growth_pct: Decimal = Field(allow_inf_nan=False)


class OfferLimits(BaseModel):
    """What an offer may cost and give: the budget of one offer, the incentive cap, the cost of reaching one
    member of the short side, and the growth gap (percentage points) that counts as an imbalance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_offer_usd: Decimal = Field(gt=0, allow_inf_nan=False)
    max_incentive_pct: Decimal = Field(gt=0, le=100, allow_inf_nan=False)
    cost_per_target_usd: Decimal = Field(gt=0, allow_inf_nan=False)
    imbalance_gap_pct: Decimal = Field(default=Decimal(10), gt=0, allow_inf_nan=False)


class MarketSides(BaseModel):
    """The `market.sides` observation: each region's two sides and the limits of an offer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    regions: list[RegionSides] = Field(min_length=1)
    limits: OfferLimits


@dataclass(frozen=True, slots=True)
class Offer:
    region: str
    side: Side
    gap_pct: Decimal  # how many points the long side's growth is ahead
    incentive_pct: Decimal
    targets: int
    budget_usd: Decimal


def _cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def offers(sides: MarketSides) -> list[Offer]:
    """One offer per imbalanced region (region order), to its short side.

    The incentive is half the growth gap, capped by the limit; the short side needs as many newcomers as the long
    side's extra growth brought (at least one); the budget is that many targets at the cost of reaching one,
    capped by the offer budget (then fewer targets; none when it cannot reach one)."""
    limits = sides.limits
    out: list[Offer] = []
    for r in sorted(sides.regions, key=lambda r: r.region):
        gap = r.buyers_growth_pct - r.producers_growth_pct
        if abs(gap) < limits.imbalance_gap_pct:
            continue
        side: Side = "producers" if gap > 0 else "buyers"
        short = r.producers if side == "producers" else r.buyers
        incentive = min(limits.max_incentive_pct, _cents(abs(gap) / 2))
        wanted = max(1, int((Decimal(short) * abs(gap) / 100).to_integral_value(rounding=ROUND_HALF_EVEN)))
        affordable = int(limits.max_offer_usd / limits.cost_per_target_usd)
        targets = min(wanted, affordable)
        budget = _cents(targets * limits.cost_per_target_usd)
        if targets < 1 or budget <= 0:  # the offer budget cannot reach one member of the short side
            continue
        out.append(Offer(r.region, side, _cents(abs(gap)), incentive, targets, budget))
    return out
