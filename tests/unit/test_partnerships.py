"""Sales' partnership engine (seed H9): the partner score and what sales does with each candidate — within
finance's limits and legal's templates, and never a "yes" beyond ops' integration capacity."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalition.packs.helios.partnerships import PartnerCandidate, PartnerPipeline, assess, score

pytestmark = pytest.mark.unit

TEMPLATES = ["utility-ppa-v3", "installer-referral-v2", "community-solar-v1"]


def candidate(partner_id: str = "p", **over: Any) -> PartnerCandidate:
    fields: dict[str, Any] = {
        "partner_id": partner_id,
        "kind": "utility",
        "region": "TX",
        "time_to_close_days": 90,
        "integration_cost_usd": 60000,
        "regulatory_drag": "0.2",
        "volume_mwh": 5000,
        "commitment_usd": 100000,
        "template": "utility-ppa-v3",
        "integration_hours": 100,
    }
    return PartnerCandidate.model_validate({**fields, **over})


def pipeline(*candidates: PartnerCandidate, **terms: Any) -> PartnerPipeline:
    t: dict[str, Any] = {"max_commitment_usd": 500000, "total_commitment_usd": 1000000, "templates": TEMPLATES}
    return PartnerPipeline.model_validate({"candidates": [c.model_dump() for c in candidates], "terms": {**t, **terms}})


class TestScore:
    def test_the_four_criteria_weigh_a_quarter_each(self) -> None:
        """90 of 180 days (12.5) + 60k of 200k (17.5) + drag 0.2 (20) + full volume (25)."""
        assert score(candidate()) == Decimal("75.00")

    def test_the_best_and_the_worst_partner(self) -> None:
        best = candidate(time_to_close_days=0, integration_cost_usd=0, regulatory_drag=0, volume_mwh=9000)
        worst = candidate(time_to_close_days=400, integration_cost_usd=900000, regulatory_drag=1, volume_mwh=0)
        assert (score(best), score(worst)) == (Decimal("100.00"), Decimal("0.00"))

    @given(
        days=st.integers(0, 400),
        cost=st.integers(0, 400000),
        drag=st.decimals(0, 1, places=2),
        volume=st.integers(0, 10000),
        better=st.sampled_from(["time_to_close_days", "integration_cost_usd", "regulatory_drag", "volume_mwh"]),
    )
    def test_better_on_one_criterion_never_scores_lower(
        self, days: int, cost: int, drag: Decimal, volume: int, better: str
    ) -> None:
        base = candidate(time_to_close_days=days, integration_cost_usd=cost, regulatory_drag=drag, volume_mwh=volume)
        improved = {
            "time_to_close_days": max(0, days - 30),
            "integration_cost_usd": max(0, cost - 20000),
            "regulatory_drag": max(Decimal(0), drag - Decimal("0.1")),
            "volume_mwh": volume + 500,
        }[better]
        assert score(base.model_copy(update={better: improved})) >= score(base)
        assert Decimal(0) <= score(base) <= Decimal(100)


class TestAssess:
    def verdicts(self, p: PartnerPipeline, hours: int) -> dict[str, str]:
        return {a.candidate.partner_id: a.verdict for a in assess(p, hours)}

    def test_no_yes_beyond_ops_capacity_best_first(self) -> None:
        """The better partner takes the hours; the next one that does not fit is not proposed, a smaller one is."""
        p = pipeline(
            candidate("a", integration_hours=150),
            candidate("b", integration_hours=120, volume_mwh=4000),
            candidate("c", integration_hours=20, volume_mwh=3000),
        )
        assert self.verdicts(p, 200) == {"a": "propose", "b": "no_capacity", "c": "propose"}

    def test_without_capacity_from_ops_nothing_is_a_yes(self) -> None:
        assert self.verdicts(pipeline(candidate("a", integration_hours=1)), 0) == {"a": "no_capacity"}
        assert self.verdicts(pipeline(candidate("a", integration_hours=0)), 0) == {"a": "propose"}

    def test_off_template_and_over_finance_limits_are_not_proposed(self) -> None:
        p = pipeline(
            candidate("custom", template="bespoke-msa"),
            candidate("huge", commitment_usd=600000),
            candidate("fits", commitment_usd=450000, volume_mwh=4000),
            candidate("over-total", commitment_usd=450000, volume_mwh=3000),
            candidate("weak", time_to_close_days=400, integration_cost_usd=400000, regulatory_drag=1, volume_mwh=10),
            total_commitment_usd=800000,
        )
        assert self.verdicts(p, 10000) == {
            "custom": "off_template",
            "huge": "over_deal_limit",
            "fits": "propose",
            "over-total": "over_total",
            "weak": "below_score",
        }

    def test_a_commitment_equal_to_the_limit_fits(self) -> None:
        assert self.verdicts(pipeline(candidate("a", commitment_usd=500000)), 100) == {"a": "propose"}

    def test_ties_are_broken_by_partner_id_whatever_the_order(self) -> None:
        first = assess(pipeline(candidate("b"), candidate("a")), 100)
        second = assess(pipeline(candidate("a"), candidate("b")), 100)
        assert [a.candidate.partner_id for a in first] == [a.candidate.partner_id for a in second] == ["a", "b"]
        assert [a.verdict for a in first] == ["propose", "no_capacity"]

    def test_earlier_deals_count_against_the_total(self) -> None:
        p = pipeline(candidate("a", commitment_usd=300000), total_commitment_usd=1000000)
        assert self.verdicts(p, 1000) == {"a": "propose"}
        assert [a.verdict for a in assess(p, 1000, Decimal(700001))] == ["over_total"]
