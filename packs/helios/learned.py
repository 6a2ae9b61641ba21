"""What Helios governance learns (GovernanceState.learned, under the keys below): prices as observed or set,
the pricing band in force, jurisdictions published and settlement as observed or changed — what its hard limits
and gates read, as rules' expressions do through the state fields declared here."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from coalition.governance.expressions import cel_value
from coalition.governance.rules.expression import StateField
from coalition.governance.state import maybe_decimal


@dataclass(frozen=True, slots=True)
class RegionPrice:
    """The current price of a region and the base price the surge cap is measured from (USD/MWh)."""

    price: Decimal | None = None
    base_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PricingBand:
    """The pricing policy in force (a change_pricing_policy execution replaces the policy file's)."""

    floor: Decimal
    ceiling: Decimal
    surge_cap_pct: Decimal


@dataclass(frozen=True, slots=True)
class SettlementState:
    """Settlement as last observed or changed: window, reserve ratio and paused regions."""

    window: str | None = None
    reserve_ratio: Decimal | None = None
    paused: frozenset[str] = frozenset()


NO_SETTLEMENT = SettlementState()
Learned = Mapping[str, Any]


def prices(learned: Learned) -> Mapping[str, RegionPrice]:
    """Each region's price and base price, as last observed or set."""
    found: Mapping[str, RegionPrice] = learned.get("prices", {})
    return found


def pricing(learned: Learned) -> PricingBand | None:
    """The band an executed pricing policy change put in force; None: the policy's."""
    band: PricingBand | None = learned.get("pricing")
    return band


def jurisdictions(learned: Learned) -> Mapping[str, str]:
    """Region statuses set by executed jurisdiction packs (others: the policy's)."""
    found: Mapping[str, str] = learned.get("jurisdictions", {})
    return found


def settlement(learned: Learned) -> SettlementState:
    found: SettlementState = learned.get("settlement", NO_SETTLEMENT)
    return found


# ----- what executed actions teach (each action's `learns`) -----------------------------------------------------


def set_price(s: Learned, args: Mapping[str, Any]) -> Learned:
    region = str(args.get("region", ""))
    old = prices(s).get(region, RegionPrice())
    return {"prices": {**prices(s), region: RegionPrice(maybe_decimal(args.get("price")), old.base_price)}}


def change_pricing_policy(s: Learned, args: Mapping[str, Any]) -> Learned:
    floor, ceiling, cap = (maybe_decimal(args.get(k)) for k in ("floor", "ceiling", "surge_cap_pct"))
    if floor is None or ceiling is None or cap is None:
        return {}
    return {"pricing": PricingBand(floor, ceiling, cap)}


def publish_jurisdiction_pack(s: Learned, args: Mapping[str, Any]) -> Learned:
    return {"jurisdictions": {**jurisdictions(s), str(args.get("region", "")): str(args.get("status", ""))}}


def set_settlement_policy(s: Learned, args: Mapping[str, Any]) -> Learned:
    window, ratio = args.get("window"), maybe_decimal(args.get("reserve_ratio"))
    old = settlement(s)
    new = dataclasses.replace(
        old,
        window=str(window) if window is not None else old.window,
        reserve_ratio=old.reserve_ratio if ratio is None else ratio,
    )
    return {"settlement": new}


def pause_settlement(s: Learned, args: Mapping[str, Any]) -> Learned:
    old = settlement(s)
    paused = set(old.paused) | {str(args.get("region", ""))}
    return {"settlement": dataclasses.replace(old, paused=frozenset(paused))}


def resume_settlement(s: Learned, args: Mapping[str, Any]) -> Learned:
    old = settlement(s)
    region = str(args.get("region", ""))
    paused = set() if region == "*" else set(old.paused) - {region}
    return {"settlement": dataclasses.replace(old, paused=frozenset(paused))}


# ----- what the daily market snapshot teaches (GovernanceDecl.observes) -----------------------------------------


def market_snapshot(s: Learned, data: Mapping[str, Any]) -> Learned:
    """Each region's quoted price and base price, and settlement's window, reserve ratio and paused regions."""
    quoted = dict(prices(s))
    raw_prices = data.get("prices")
    if isinstance(raw_prices, dict):
        for region, quote in raw_prices.items():
            if isinstance(quote, dict):
                quoted[str(region)] = RegionPrice(
                    maybe_decimal(quote.get("price")), maybe_decimal(quote.get("base_price"))
                )
    now = settlement(s)
    raw = data.get("settlement")
    if isinstance(raw, dict):
        paused = raw.get("paused")
        ratio = maybe_decimal(raw.get("reserve_ratio"))
        now = SettlementState(
            window=str(raw["window"]) if raw.get("window") is not None else now.window,
            reserve_ratio=now.reserve_ratio if ratio is None else ratio,  # a ratio of 0 is a value, not an absence
            paused=frozenset(str(r) for r in paused) if isinstance(paused, list) else now.paused,
        )
    return {"prices": quoted, "settlement": now}


OBSERVES = {"market.snapshot": market_snapshot}


# ----- what rules' expressions read (GovernanceDecl.state_fields) -----------------------------------------------


def _band(learned: Learned) -> Any:
    band = pricing(learned)
    return None if band is None else cel_value({"floor": band.floor, "ceiling": band.ceiling,
                                                 "surge_cap_pct": band.surge_cap_pct})  # fmt: skip


def _price(quote: Any) -> Any:
    return {"price": cel_value(quote.price), "base_price": cel_value(quote.base_price)}


STATE_FIELDS: dict[str, StateField] = {
    # the pricing band in force when an executed change replaced the policy's; else null
    "pricing": StateField(lambda s: _band(s.learned)),
    "prices": StateField(entries=lambda s: prices(s.learned), entry=_price),  # region → {price, base_price}
    "jurisdictions": StateField(entries=lambda s: jurisdictions(s.learned)),  # set by executed jurisdiction packs
    "paused": StateField(lambda s: sorted(settlement(s.learned).paused)),  # regions whose settlement is paused
}
