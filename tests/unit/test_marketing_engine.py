"""Marketing's engine: campaigns within guardrails, denial reading, revisions, complaint responses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coalition.agents.marketing import engine
from coalition.agents.payloads import ClaimsReview, CustomerComplaints, Finding, GrowthGoal, PriceGuardrails
from coalition.agents.testing import Envelopes
from coalition.bus.messages import ActionProposed, VerdictIssued

pytestmark = pytest.mark.unit

GOAL = GrowthGoal(
    region="TX",
    budget_usd=Decimal(5000),
    channel="social",
    discount_pct=Decimal(20),
    draft_copy="Guaranteed savings with 100% renewable energy!",
    claims=["guaranteed savings", "100% renewable energy"],
)
RAILS = PriceGuardrails(floor=20, ceiling=150, surge_cap_pct=25, max_discount_pct=15)


def _verdict(reasons: list[str], rule_ids: list[str]) -> VerdictIssued:
    proposal = ActionProposed(proposal_id="p1", agent="marketing", action="launch_campaign", rationale="r")
    payload = Envelopes().verdict(proposal, "deny", reasons=reasons, rule_ids=rule_ids).payload
    assert isinstance(payload, VerdictIssued)
    return payload


class TestCampaign:
    """The goal's copy and claims, the discount capped by finance's guardrail."""

    @pytest.mark.parametrize(
        ("rails", "brief_cap", "discount"),
        [
            (RAILS, None, 15.0),
            (None, None, 20.0),
            (None, Decimal(12), 12.0),
            (RAILS, Decimal(12), 15.0),
            (PriceGuardrails(floor=1, ceiling=2, surge_cap_pct=3, max_discount_pct=30), None, 20.0),
        ],
    )
    def test_discount_is_capped_by_the_guardrail(
        self, rails: PriceGuardrails | None, brief_cap: Decimal | None, discount: float
    ) -> None:
        """min(goal discount, cap); finance's guardrail first, else the brief's cap, else no cap."""
        decision = engine.campaign(GOAL, "abcdef0123", engine.max_discount(rails, brief_cap))
        assert decision.args["discount_pct"] == discount
        assert decision.args["copy"] == GOAL.draft_copy
        assert decision.args["claims"] == GOAL.claims
        assert decision.args["campaign_id"] == "cmp-tx-abcdef01"

    def test_campaign_key_changes_with_the_copy(self) -> None:
        """A revised copy is a different proposal; the same copy is the same one."""
        args = engine.campaign(GOAL, "abcdef0123", Decimal(15)).args
        assert engine.campaign_key(args) == engine.campaign_key(dict(args))
        assert engine.campaign_key(args) != engine.campaign_key({**args, "copy": "other"})


class TestDenials:
    """Reading why governance denied a launch, and what follows."""

    @pytest.mark.parametrize(
        ("reasons", "rule_ids", "expected"),
        [
            (["banned claim 'guaranteed savings' in copy"], ["hard_limit.claims"], "claims"),
            (["not in the approved library"], ["claims.unapproved"], "claims"),
            (["discount 20% above max 15%"], ["hard_limit.discount"], "discount"),
            (["agent marketing may not use this tool"], ["permission"], "other"),
        ],
    )
    def test_why_denied(self, reasons: list[str], rule_ids: list[str], expected: str) -> None:
        """Rule ids and reasons decide: claims → legal review, discount → cap."""
        assert engine.why_denied(_verdict(reasons, rule_ids)) == expected

    def test_revised_campaign_takes_legal_wording(self) -> None:
        """Copy and claims come from the review; budget and discount stay."""
        args = engine.campaign(GOAL, "abcdef0123", Decimal(15)).args
        review = ClaimsReview(
            campaign_id=args["campaign_id"],
            approved=False,
            findings=[Finding(phrase="guaranteed savings", rule="banned_claim", suggestion="transparent fees")],
            revised_copy="Transparent fees with 100% renewable energy!",
            revised_claims=["transparent fees", "100% renewable energy"],
        )
        revised = engine.revised_campaign(args, review).args
        assert revised == {**args, "copy": review.revised_copy, "claims": review.revised_claims}

    def test_capped_discount_only_when_above_the_cap(self) -> None:
        """Capping needs a known cap and a discount above it."""
        args = {**engine.campaign(GOAL, "abcdef0123", None).args}
        capped = engine.capped_discount(args, Decimal(15))
        assert capped is not None
        assert capped.args["discount_pct"] == 15.0
        assert engine.capped_discount({**args, "discount_pct": 10.0}, Decimal(15)) is None
        assert engine.capped_discount(args, None) is None


class TestComplaints:
    """Settlement-error complaints: ask for a pause and notify; other topics: nothing."""

    def test_settlement_errors_ask_for_a_pause_and_comms(self) -> None:
        """The pause names the region; both proposals share one incident id."""
        response = engine.complaints_response(
            CustomerComplaints(region="TX", count=12, topic="settlement_errors"), "feedbeef99"
        )
        assert response is not None
        assert response.pause_args == {
            "region": "TX",
            "incident_id": "cmpl-tx-feedbeef",
            "reason": "12 customer complaints about settlement errors",
        }
        assert response.notify_args == {"incident_id": "cmpl-tx-feedbeef", "audience": "customers in TX"}

    def test_other_topics_need_no_action(self) -> None:
        """Complaints about, say, the app design do not touch settlement."""
        assert engine.complaints_response(CustomerComplaints(region="TX", count=3, topic="app_design"), "x") is None
