"""What Helios governance learns when an action applies: prices, the pricing band, jurisdictions in force and
settlement (its hard limits and gates read them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from coalition.governance.state import GovernanceState, PricingBand, RegionPrice, maybe_decimal


def set_price(s: GovernanceState, args: Mapping[str, Any]) -> Mapping[str, Any]:
    region = str(args.get("region", ""))
    old = s.prices.get(region, RegionPrice())
    return {"prices": {**s.prices, region: RegionPrice(maybe_decimal(args.get("price")), old.base_price)}}


def change_pricing_policy(s: GovernanceState, args: Mapping[str, Any]) -> Mapping[str, Any]:
    floor, ceiling, cap = (maybe_decimal(args.get(k)) for k in ("floor", "ceiling", "surge_cap_pct"))
    if floor is None or ceiling is None or cap is None:
        return {}
    return {"pricing": PricingBand(floor, ceiling, cap)}


def publish_jurisdiction_pack(s: GovernanceState, args: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"jurisdictions": {**s.jurisdictions, str(args.get("region", "")): str(args.get("status", ""))}}


def set_settlement_policy(s: GovernanceState, args: Mapping[str, Any]) -> Mapping[str, Any]:
    window, ratio = args.get("window"), maybe_decimal(args.get("reserve_ratio"))
    settlement = dataclasses.replace(
        s.settlement,
        window=str(window) if window is not None else s.settlement.window,
        reserve_ratio=s.settlement.reserve_ratio if ratio is None else ratio,
    )
    return {"settlement": settlement}


def pause_settlement(s: GovernanceState, args: Mapping[str, Any]) -> Mapping[str, Any]:
    paused = set(s.settlement.paused) | {str(args.get("region", ""))}
    return {"settlement": dataclasses.replace(s.settlement, paused=frozenset(paused))}


def resume_settlement(s: GovernanceState, args: Mapping[str, Any]) -> Mapping[str, Any]:
    region = str(args.get("region", ""))
    paused = set() if region == "*" else set(s.settlement.paused) - {region}
    return {"settlement": dataclasses.replace(s.settlement, paused=frozenset(paused))}
