"""Liquidity's engine (seed H10): an offer to a market's short side, sized to the gap, within the offer budget and
the incentive cap; a market whose sides grow in step gets none."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalition.packs.helios.liquidity import MarketSides, offers

pytestmark = pytest.mark.unit

LIMITS = {"max_offer_usd": 15000, "max_incentive_pct": 15, "cost_per_target_usd": 250, "imbalance_gap_pct": 10}


def sides(*regions: dict[str, Any], **limits: Any) -> MarketSides:
    return MarketSides.model_validate({"regions": list(regions), "limits": {**LIMITS, **limits}})


def region(code: str, producers_growth: float, buyers_growth: float, producers: int = 30, buyers: int = 40) -> dict:
    return {
        "region": code,
        "producers": producers,
        "buyers": buyers,
        "producers_growth_pct": producers_growth,
        "buyers_growth_pct": buyers_growth,
    }


class TestOffers:
    def test_buyers_outgrowing_producers_get_producers_an_offer(self) -> None:
        [offer] = offers(sides(region("TX", 5, 25)))
        assert (offer.side, offer.gap_pct, offer.incentive_pct) == ("producers", Decimal("20.00"), Decimal("10.00"))
        assert (offer.targets, offer.budget_usd) == (6, Decimal("1500.00"))  # 20 % of 30 producers, 250 USD each

    def test_producers_outgrowing_buyers_get_buyers_an_offer(self) -> None:
        [offer] = offers(sides(region("CA", 40, 4)))
        assert (offer.side, offer.incentive_pct, offer.targets) == ("buyers", Decimal("15"), 14)  # 18 % capped

    def test_sides_growing_in_step_get_nothing(self) -> None:
        assert offers(sides(region("NM", 6, 8), region("AZ", 20, 29.99))) == []

    def test_the_offer_budget_caps_the_targets(self) -> None:
        [offer] = offers(sides(region("TX", 0, 90, producers=1000), cost_per_target_usd=1000))
        assert (offer.targets, offer.budget_usd) == (15, Decimal("15000.00"))

    def test_no_offer_when_the_budget_cannot_reach_one_target(self) -> None:
        assert offers(sides(region("TX", 0, 90), max_offer_usd=200)) == []

    def test_regions_in_order(self) -> None:
        assert [o.region for o in offers(sides(region("TX", 0, 30), region("CA", 30, 0)))] == ["CA", "TX"]

    @given(
        pg=st.decimals(-50, 200, places=1),
        bg=st.decimals(-50, 200, places=1),
        producers=st.integers(0, 5000),
        buyers=st.integers(0, 5000),
        cap=st.decimals("0.5", 100, places=1),
        budget=st.integers(1, 100000),
        cost=st.integers(1, 5000),
    )
    def test_every_offer_is_within_the_limits(
        self, pg: Decimal, bg: Decimal, producers: int, buyers: int, cap: Decimal, budget: int, cost: int
    ) -> None:
        market = sides(
            region("TX", float(pg), float(bg), producers, buyers),
            max_incentive_pct=cap,
            max_offer_usd=budget,
            cost_per_target_usd=cost,
        )
        for offer in offers(market):
            assert 0 < offer.incentive_pct <= cap
            assert 0 < offer.budget_usd <= budget
            assert offer.budget_usd == offer.targets * cost
            assert offer.side == ("producers" if bg > pg else "buyers")
