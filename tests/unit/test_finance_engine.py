"""Finance's engine: entry sequencing, guardrails, clearing and in-band prices, settlement, capital."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coalition.packs.helios.agents.finance import engine
from coalition.packs.helios.payloads import (
    CapitalNeed,
    PolicyBrief,
    PricingBand,
    SettlementMismatch,
    Shortlist,
    SupplyShock,
)

pytestmark = pytest.mark.unit

BAND = PricingBand(floor=Decimal(20), ceiling=Decimal(150), surge_cap_pct=Decimal(25))


def _shortlist(*rows: tuple[str, float, float, float]) -> Shortlist:
    return Shortlist.model_validate(
        {
            "ranked": [
                {"region": r, "score": 0.5, "regulatory_viability": v, "demand": d, "price_sensitivity": p}
                for r, v, d, p in rows
            ]
        }
    )


class TestEntrySequencing:
    """Risk-adjusted contribution margin decides which regions to enter, in which order."""

    def test_best_two_regions_in_margin_order(self) -> None:
        """Sequence 1 is the highest margin; at most two entries."""
        plans = engine.plan_entries(
            _shortlist(("TX", 0.8, 0.7, 0.6), ("CA", 0.7, 0.9, 0.5), ("NY", 0.3, 0.3, 0.3)), None, []
        )
        assert [(p.region, p.sequence) for p in plans] == [("CA", 1), ("TX", 2)]
        assert plans[0].risk_adjusted_margin_usd == Decimal("374850.00")
        assert plans[0].args() == {"region": "CA", "sequence": 1, "investment_usd": 345000.0}

    def test_disallowed_and_active_regions_are_skipped(self) -> None:
        """The brief's jurisdictions and the markets already entered filter the candidates."""
        brief = PolicyBrief(allowed_jurisdictions=["TX", "NY"])
        shortlist = _shortlist(("TX", 0.8, 0.7, 0.6), ("CA", 0.7, 0.9, 0.5), ("NY", 0.3, 0.3, 0.3))
        assert [p.region for p in engine.plan_entries(shortlist, brief, ["TX"])] == ["NY"]

    def test_equal_margins_break_ties_by_region(self) -> None:
        """Identical economics rank alphabetically."""
        plans = engine.plan_entries(_shortlist(("ZZ", 0.5, 0.5, 0.5), ("AA", 0.5, 0.5, 0.5)), None, [])
        assert [p.region for p in plans] == ["AA", "ZZ"]

    def test_zero_demand_is_never_entered(self) -> None:
        """No contribution, no entry."""
        assert engine.plan_entries(_shortlist(("TX", 0.9, 0.0, 0.5)), None, []) == []


class TestPricing:
    """Clearing price from a shock; the in-band price after a denial."""

    @pytest.mark.parametrize(
        ("supply", "demand", "base", "expected"),
        [
            ("-18", "0", "60", "76.20"),  # 60 × (1 + 1.5 × 0.18)
            ("-10", "5", "60", "73.50"),  # imbalance 15%
            ("10", "0", "60", "51.00"),  # supply up: price falls
            ("0", "0", "60", "60.00"),
            ("-0.3", "0", "10", "10.04"),  # 10 × 1.0045 = 10.045 exactly: half-even keeps the even cent
        ],
    )
    def test_clearing_price(self, supply: str, demand: str, base: str, expected: str) -> None:
        """base × (1 + 1.5 × (demand change − supply change)), rounded half-even to cents."""
        shock = SupplyShock(region="TX", supply_change_pct=Decimal(supply), demand_change_pct=Decimal(demand))
        decision = engine.clearing_price(shock, Decimal(base))
        assert decision.price == Decimal(expected)
        assert decision.args() == {"region": "TX", "price": float(expected)}

    @pytest.mark.parametrize(
        ("denied", "base", "expected"),
        [
            ("76.20", "60", "75.00"),  # surge cap binds: 60 × 1.25
            ("200", "130", "150.00"),  # ceiling binds below the surge cap (162.50)
            ("10", "60", "20.00"),  # below the floor: the floor
            ("70.333", "56.27", "70.33"),  # cap 70.3375 rounds DOWN so it stays under the cap
        ],
    )
    def test_in_band_price_after_denial(self, denied: str, base: str, expected: str) -> None:
        """The nearest price the band allows, never above the cap after rounding."""
        decision = engine.in_band("TX", Decimal(denied), Decimal(base), BAND)
        assert decision is not None
        assert decision.price == Decimal(expected)

    def test_no_revision_when_the_denied_price_was_inside_the_band(self) -> None:
        """A price denied for another reason is not 'fixed' by repricing."""
        assert engine.in_band("TX", Decimal("70"), Decimal("60"), BAND) is None


class TestGuardrailsSettlementCapital:
    """Guardrails from the brief, the T+1 → T+3 move, capital commitments."""

    def test_guardrails_from_the_brief(self) -> None:
        """Band and discount cap are passed on as numbers."""
        result = engine.guardrails(PolicyBrief(pricing=BAND, max_discount_pct=Decimal(15)))
        assert result is not None
        assert result[0].model_dump() == {
            "floor": 20.0,
            "ceiling": 150.0,
            "surge_cap_pct": 25.0,
            "max_discount_pct": 15.0,
        }

    def test_no_guardrails_without_a_band(self) -> None:
        """An empty brief gives marketing nothing to enforce."""
        assert engine.guardrails(PolicyBrief()) is None

    @pytest.mark.parametrize(
        ("gap", "outflow", "ratio"),
        [
            ("12000", "100000", "0.12"),
            ("100", "100000", "0.05"),
            ("90000", "100000", "0.50"),
            ("12001", "100000", "0.13"),
        ],
    )
    def test_settlement_reserve_from_the_gap(self, gap: str, outflow: str, ratio: str) -> None:
        """Reserve = gap / outflow, clamped to 5–50% and rounded up."""
        mismatch = SettlementMismatch(
            region="TX", gap_usd=Decimal(gap), inflow_usd=Decimal(outflow) - Decimal(gap), outflow_usd=Decimal(outflow)
        )
        decision = engine.settlement_policy(mismatch, "T+1")
        assert decision is not None
        assert (decision.window, decision.reserve_ratio) == ("T+3", Decimal(ratio))

    def test_already_t_plus_3_needs_no_change(self) -> None:
        """No proposal when the window is already T+3."""
        mismatch = SettlementMismatch(region="TX", gap_usd=Decimal(1), inflow_usd=Decimal(1), outflow_usd=Decimal(2))
        assert engine.settlement_policy(mismatch, "T+3") is None

    def test_capital_commitment(self) -> None:
        """Amount and purpose as asked, in cents."""
        decision = engine.capital(CapitalNeed(amount_usd=Decimal("2500000.004"), purpose="grid batteries"))
        assert decision.args() == {"amount_usd": 2500000.0, "purpose": "grid batteries"}


class TestPricingPolicyChange:
    """The second surge denial in a region asks for the surge cap that would have covered it."""

    BAND = PricingBand(floor=Decimal(20), ceiling=Decimal(250), surge_cap_pct=Decimal(25))

    def test_first_denial_asks_nothing(self) -> None:
        """One spike is not a reason to change the policy."""
        assert engine.pricing_policy_change("TX", 1, Decimal("114.55"), Decimal(58), self.BAND) is None

    def test_second_denial_proposes_cap_in_five_percent_steps(self) -> None:
        """101.50 on a base of 58 needs 75% (74.99… rounded up to a 5% step); floor and ceiling unchanged."""
        change = engine.pricing_policy_change("TX", 2, Decimal("101.50"), Decimal(58), self.BAND)
        assert change is not None
        assert change.args() == {"floor": 20.0, "ceiling": 250.0, "surge_cap_pct": 75.0}

    def test_above_ceiling_is_not_a_cap_question(self) -> None:
        """A price above the ceiling would still be denied: no change is proposed."""
        assert engine.pricing_policy_change("TX", 2, Decimal(300), Decimal(58), self.BAND) is None
