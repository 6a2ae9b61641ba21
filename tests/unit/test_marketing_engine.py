"""Marketing's engine: campaigns within guardrails, denial reading, revisions, experiments, complaint responses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coalition.agents.memory import ProposalRecord, ProposalStatus
from coalition.agents.testing import Envelopes
from coalition.bus.messages import ActionProposed, VerdictIssued
from coalition.packs.helios.agents.marketing import engine
from coalition.packs.helios.payloads import (
    AgentBudget,
    ClaimsReview,
    CustomerComplaints,
    ExperimentPlan,
    ExperimentResult,
    Finding,
    GrowthGoal,
    PriceGuardrails,
)

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
PLAN = ExperimentPlan(
    experiment_id="exp-1",
    hypothesis="Referral credits bring buyers in below 120 USD each.",
    budget_usd=Decimal(5000),
    metric="cac_usd",
    predicted_lift_pct=Decimal(8),
    stop_threshold=Decimal(120),
    stop_when="above",
    region="TX",
    channel="referral",
)


def _result(value: str, *, spend: str = "1000", experiment_id: str = "exp-1") -> ExperimentResult:
    return ExperimentResult(
        experiment_id=experiment_id,
        day=4,
        value=Decimal(value),
        spend_usd=Decimal(spend),
        conversions=10,
        cac_usd=Decimal(value),
        ltv_usd=Decimal("400"),
        lift_pct=Decimal("5.5"),
    )


def _record(pid: str, action: str, status: ProposalStatus, experiment_id: str = "exp-1") -> ProposalRecord:
    return ProposalRecord(
        proposal_id=pid,
        action=action,
        args={"experiment_id": experiment_id},
        key=f"{action}:{experiment_id}",
        status=status,
    )


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


class TestExperimentStart:
    """The plan becomes one run_experiment proposal with the plan's budget."""

    def test_plan_becomes_run_arguments(self) -> None:
        """Exactly the governance argument shape; money in cents; the key is per experiment id."""
        decision = engine.start_experiment(PLAN, AgentBudget(budget_usd=Decimal(60000), spent_usd=Decimal(30000)))
        assert decision is not None
        assert decision.args == {
            "experiment_id": "exp-1",
            "hypothesis": PLAN.hypothesis,
            "budget_usd": 5000.0,
            "metric": "cac_usd",
            "stop_threshold": 120.0,
        }
        assert decision.key == "run_experiment:exp-1"
        assert decision.facts.figures["budget_left_usd"] == "30000.00"
        assert not any("more budget" in r for r in decision.facts.reasons)

    def test_budget_beyond_what_is_left_is_still_proposed_and_said(self) -> None:
        """The plan's budget is kept (governance escalates the overrun); the facts name the shortfall."""
        decision = engine.start_experiment(PLAN, AgentBudget(budget_usd=Decimal(60000), spent_usd=Decimal(58000)))
        assert decision is not None
        assert decision.args["budget_usd"] == 5000.0
        assert any("2000.00 USD left" in r for r in decision.facts.reasons)

    def test_region_outside_the_briefs_jurisdictions_is_not_run(self) -> None:
        """A known jurisdiction list without the plan's region: no proposal; no list: proposed."""
        assert engine.start_experiment(PLAN, None, ["CA", "AZ"]) is None
        assert engine.start_experiment(PLAN, None, ["CA", "TX"]) is not None
        assert engine.start_experiment(PLAN, None) is not None


class TestExperimentState:
    """Where an experiment stands, read from marketing's own proposals."""

    @pytest.mark.parametrize(
        ("records", "expected"),
        [
            ([], "unplanned"),
            ([_record("p9", "run_experiment", "applied", "exp-2")], "unplanned"),
            ([_record("p1", "run_experiment", "escalated")], "not_running"),
            ([_record("p1", "run_experiment", "rejected")], "not_running"),
            ([_record("p1", "run_experiment", "applied")], "running"),
            ([_record("p1", "run_experiment", "applied"), _record("p2", "stop_experiment", "pending")], "stopped"),
            ([_record("p1", "run_experiment", "applied"), _record("p2", "stop_experiment", "applied")], "stopped"),
            ([_record("p1", "run_experiment", "applied"), _record("p2", "stop_experiment", "failed")], "running"),
        ],
    )
    def test_state(self, records: list[ProposalRecord], expected: str) -> None:
        """Applied run = running; a live stop = stopped; a failed stop leaves it running."""
        assert engine.experiment_state("exp-1", {r.proposal_id: r for r in records}) == expected


class TestExperimentResult:
    """Readings of a running experiment: stop at the threshold, CAC/LTV to finance every time."""

    def test_threshold_not_crossed_keeps_it_running(self) -> None:
        """Below a CAC ceiling: no stop, metrics say running."""
        decision = engine.after_result(PLAN, _result("96"), "running")
        assert decision is not None
        assert decision.stop is None
        assert decision.metrics.model_dump() == {
            "experiment_id": "exp-1",
            "day": 4,
            "cac_usd": 96.0,
            "ltv_usd": 400.0,
            "lift_pct": 5.5,
            "spend_usd": 1000.0,
            "conversions": 10,
            "status": "running",
        }

    @pytest.mark.parametrize("value", ["120", "138.5"])
    def test_threshold_crossed_stops_with_the_reason(self, value: str) -> None:
        """At or above the ceiling: one stop proposal naming the reading and the threshold."""
        decision = engine.after_result(PLAN, _result(value), "running")
        assert decision is not None
        assert decision.stop is not None
        assert decision.stop.key == "stop_experiment:exp-1"
        assert decision.stop.args == {
            "experiment_id": "exp-1",
            "reason": f"cac_usd reached {value} on day 4, at or above the stop threshold of 120",
        }
        assert decision.metrics.status == "stopped"

    def test_below_direction_stops_when_the_metric_falls(self) -> None:
        """A lift floor: 2.5 keeps running, 1.9 stops."""
        floor = PLAN.model_copy(update={"metric": "lift_pct", "stop_threshold": Decimal(2), "stop_when": "below"})
        running = engine.after_result(floor, _result("2.5"), "running")
        stopped = engine.after_result(floor, _result("1.9"), "running")
        assert running is not None
        assert running.stop is None
        assert stopped is not None
        assert stopped.stop is not None

    def test_spent_budget_stops_it_too(self) -> None:
        """A reading under the threshold that has spent the whole budget still stops the experiment."""
        decision = engine.after_result(PLAN, _result("90", spend="5000"), "running")
        assert decision is not None
        assert decision.stop is not None
        assert decision.stop.args["reason"] == "5000.00 USD spent of its 5000.00 USD budget"

    def test_unknown_experiment_calls_for_nothing(self) -> None:
        """No plan for the reading's id: no stop, no metrics."""
        assert engine.after_result(None, _result("500", experiment_id="exp-x"), "unplanned") is None

    @pytest.mark.parametrize("state", ["unplanned", "not_running", "stopped"])
    def test_no_stop_unless_running(self, state: engine.ExperimentState) -> None:
        """A crossing reading of an experiment not running (never ran, or already stopped) is not re-stopped."""
        assert engine.after_result(PLAN, _result("500"), state) is None
