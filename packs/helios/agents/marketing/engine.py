"""Marketing's decisions: campaigns within finance's guardrails, the claims-review loop with legal, growth
micro-experiments that stop at their threshold (with CAC/LTV reported to finance), and the response to customer
complaints (comms; a settlement pause it may ask for but is not permitted to do)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from coalition.agents.facts import Facts
from coalition.agents.memory import CLOSED_WITHOUT_EFFECT, ProposalRecord
from coalition.agents.money import cents, dec, fmt, number, pct
from coalition.bus.canonical import content_hash
from coalition.bus.messages import VerdictIssued
from coalition.packs.helios.payloads import (
    AgentBudget,
    ClaimsReview,
    ClaimsReviewRequest,
    CustomerComplaints,
    ExperimentPlan,
    ExperimentResult,
    GrowthGoal,
    GrowthMetrics,
    PriceGuardrails,
)

Denial = Literal["claims", "discount", "other"]
# Where an experiment stands, as marketing's own proposals tell it.
ExperimentState = Literal["unplanned", "not_running", "running", "stopped"]


def campaign_key(args: dict[str, Any]) -> str:
    """Same campaign with the same copy, claims and discount ⇒ same key (never proposed twice)."""
    content = content_hash([args["copy"], args["claims"], args["discount_pct"]])[:16]
    return f"launch_campaign:{args['campaign_id']}:{content}"


def why_denied(verdict: VerdictIssued) -> Denial:
    """Read a denial's rule ids and reasons: a claims problem goes to legal, a discount problem is capped."""
    text = " ".join([*verdict.rule_ids, *verdict.reasons]).lower()
    if "claim" in text:
        return "claims"
    if "discount" in text:
        return "discount"
    return "other"


@dataclass(frozen=True, slots=True)
class CampaignDecision:
    args: dict[str, Any]
    facts: Facts


def max_discount(guardrails: PriceGuardrails | None, brief_cap: Decimal | None) -> Decimal | None:
    """The discount cap in force: finance's guardrail when received, else the policy brief's."""
    if guardrails is not None and guardrails.max_discount_pct is not None:
        return dec(guardrails.max_discount_pct)
    return brief_cap


def campaign(goal: GrowthGoal, evidence_id: str, cap: Decimal | None) -> CampaignDecision:
    """Launch the goal's campaign with its draft copy and claims; the discount is capped by the guardrail."""
    discount = goal.discount_pct
    rules: list[str] = ["claims must come from the approved library; banned claims are denied"]
    reasons = [f"growth goal for {goal.region} on {goal.channel} with a {fmt(goal.budget_usd)} USD budget"]
    if cap is not None:
        rules.append(f"finance guardrail: discount at most {pct(cap)}%")
        if discount > cap:
            reasons.append(f"the requested {pct(discount)}% discount is capped at {pct(cap)}%")
            discount = cap
    campaign_id = f"cmp-{goal.region.lower()}-{evidence_id[:8]}"
    budget = cents(goal.budget_usd)
    args: dict[str, Any] = {
        "campaign_id": campaign_id,
        "region": goal.region,
        "channel": goal.channel,
        "copy": goal.draft_copy,
        "claims": list(goal.claims),
        "budget_usd": number(budget),
        "discount_pct": float(discount),
    }
    facts = Facts(
        intent="propose",
        decision=f"launch campaign {campaign_id} in {goal.region} with a {pct(discount)}% discount",
        reasons=reasons,
        figures={"budget_usd": fmt(budget), "discount_pct": pct(discount), "claims": str(len(goal.claims))},
        rules=rules,
    )
    return CampaignDecision(args, facts)


def review_request(args: dict[str, Any], verdict: VerdictIssued) -> tuple[ClaimsReviewRequest, Facts]:
    """Ask legal to fix the claims governance refused, instead of arguing with the verdict."""
    request = ClaimsReviewRequest(campaign_id=args["campaign_id"], copy_text=args["copy"], claims=list(args["claims"]))
    facts = Facts(
        intent="request",
        decision=f"review the claims of campaign {request.campaign_id} and suggest approved wording",
        reasons=[f"governance denied the launch: {'; '.join(verdict.reasons)}"],
    )
    return request, facts


def revised_campaign(args: dict[str, Any], review: ClaimsReview) -> CampaignDecision:
    """The same campaign with legal's revised copy and claims."""
    revised = {**args, "copy": review.revised_copy, "claims": list(review.revised_claims)}
    facts = Facts(
        intent="propose",
        decision=f"relaunch campaign {args['campaign_id']} with legal's revised copy and claims",
        reasons=[f"legal flagged '{f.phrase}' ({f.rule.replace('_', ' ')})" for f in review.findings]
        or ["legal approved the claims as written"],
        figures={"claims": str(len(review.revised_claims))},
        rules=["claims from the approved library only"],
    )
    return CampaignDecision(revised, facts)


def capped_discount(args: dict[str, Any], cap: Decimal | None) -> CampaignDecision | None:
    """After a discount denial: the same campaign at the maximum discount allowed (None if unknown)."""
    if cap is None:
        return None
    if dec(args["discount_pct"]) <= cap:
        return None
    facts = Facts(
        intent="propose",
        decision=f"relaunch campaign {args['campaign_id']} with the discount capped at {pct(cap)}%",
        reasons=[f"governance denied a {args['discount_pct']}% discount"],
        rules=[f"finance guardrail: discount at most {pct(cap)}%"],
    )
    return CampaignDecision({**args, "discount_pct": float(cap)}, facts)


@dataclass(frozen=True, slots=True)
class ComplaintResponse:
    incident_id: str
    pause_args: dict[str, Any]
    pause_facts: Facts
    notify_args: dict[str, Any]
    notify_facts: Facts
    copy_facts: Facts
    audience: str


def complaints_response(complaints: CustomerComplaints, evidence_id: str) -> ComplaintResponse | None:
    """Settlement-error complaints: ask for a settlement pause (ops' call — governance decides) and tell customers."""
    if "settlement" not in complaints.topic:
        return None
    region = complaints.region
    incident_id = f"cmpl-{region.lower()}-{evidence_id[:8]}"
    audience = f"customers in {region}"
    reason = f"{complaints.count} customer complaints about {complaints.topic.replace('_', ' ')}"
    return ComplaintResponse(
        incident_id=incident_id,
        pause_args={"region": region, "incident_id": incident_id, "reason": reason},
        pause_facts=Facts(
            intent="propose",
            decision=f"pause settlement in {region} until the errors are explained",
            reasons=[reason, "continuing to settle may compound customer harm"],
            figures={"complaints": str(complaints.count)},
        ),
        notify_args={"incident_id": incident_id, "audience": audience},
        notify_facts=Facts(
            intent="propose",
            decision=f"tell {audience} that their settlement reports are being investigated",
            reasons=[reason],
        ),
        copy_facts=Facts(
            intent="notify",
            decision=f"are investigating reports of settlement errors in {region}",
            reasons=["no action is needed from you and any confirmed error will be corrected"],
        ),
        audience=audience,
    )


# -- growth experiments -------------------------------------------------------------------------------------


def run_key(experiment_id: str) -> str:
    """One run per experiment id: a second plan with the same id is never proposed again."""
    return f"run_experiment:{experiment_id}"


def stop_key(experiment_id: str) -> str:
    """One live stop per experiment: later readings never stop it twice."""
    return f"stop_experiment:{experiment_id}"


@dataclass(frozen=True, slots=True)
class ExperimentDecision:
    """A run or stop proposal for one experiment, with the facts the narrator words."""

    args: dict[str, Any]
    facts: Facts
    key: str


def start_experiment(
    plan: ExperimentPlan, budget: AgentBudget | None, allowed_regions: Sequence[str] = ()
) -> ExperimentDecision | None:
    """Run the planned experiment with the plan's budget; None if the brief's jurisdictions leave its region out.

    A budget beyond what is left this period is still proposed (the plan says so): governance escalates it as a
    request for more budget, and the facts say that plainly."""
    if allowed_regions and plan.region not in allowed_regions:
        return None
    budget_usd = cents(plan.budget_usd)
    threshold = plan.stop_threshold
    reasons = [
        f"hypothesis: {plan.hypothesis.rstrip('.')}",
        f"predicted lift of {pct(plan.predicted_lift_pct)}% on {plan.channel} in {plan.region}",
    ]
    figures = {
        "budget_usd": fmt(budget_usd),
        "predicted_lift_pct": pct(plan.predicted_lift_pct),
        "stop_threshold": pct(threshold),
    }
    if budget is not None:
        left = cents(max(dec(budget.budget_usd) - dec(budget.spent_usd), Decimal(0)))
        figures["budget_left_usd"] = fmt(left)
        if budget_usd > left:
            reasons.append(f"the budget is above the {fmt(left)} USD left this period: it needs more budget")
    args: dict[str, Any] = {
        "experiment_id": plan.experiment_id,
        "hypothesis": plan.hypothesis,
        "budget_usd": number(budget_usd),
        "metric": plan.metric,
        "stop_threshold": float(threshold),
    }
    facts = Facts(
        intent="propose",
        decision=f"run experiment {plan.experiment_id} with a {fmt(budget_usd)} USD budget",
        reasons=reasons,
        figures=figures,
        rules=[stop_rule(plan), "stop once the budget is spent"],
    )
    return ExperimentDecision(args, facts, run_key(plan.experiment_id))


def experiment_state(experiment_id: str, proposals: Mapping[str, ProposalRecord]) -> ExperimentState:
    """From marketing's proposals: not proposed, proposed but not (yet) applied, running, or stopped/stopping."""
    runs = [r for r in proposals.values() if r.action == "run_experiment" and r.args["experiment_id"] == experiment_id]
    if not runs:
        return "unplanned"
    stops = [
        r for r in proposals.values() if r.action == "stop_experiment" and r.args["experiment_id"] == experiment_id
    ]
    if any(r.status not in CLOSED_WITHOUT_EFFECT for r in stops):
        return "stopped"
    return "running" if any(r.status == "applied" for r in runs) else "not_running"


def stop_rule(plan: ExperimentPlan) -> str:
    """The plan's stop rule in words, for the narrator."""
    return f"stop once {plan.metric} is at or {plan.stop_when} {pct(plan.stop_threshold)}"


def crossed(plan: ExperimentPlan, value: Decimal) -> bool:
    """Whether a reading is at or past the stop threshold, in the plan's direction."""
    return value >= plan.stop_threshold if plan.stop_when == "above" else value <= plan.stop_threshold


@dataclass(frozen=True, slots=True)
class ResultDecision:
    """What one experiment reading calls for: metrics for finance, and a stop when a limit is reached."""

    metrics: GrowthMetrics
    metrics_facts: Facts
    stop: ExperimentDecision | None


def after_result(
    plan: ExperimentPlan | None, result: ExperimentResult, state: ExperimentState
) -> ResultDecision | None:
    """A reading of a running experiment: stop it at its threshold or when its budget is spent; report CAC/LTV.

    Readings of an experiment marketing never planned, did not get running, or already stopped call for nothing."""
    if plan is None or state != "running":
        return None
    eid = plan.experiment_id
    reasons: list[str] = []
    if crossed(plan, result.value):
        reasons.append(
            f"{plan.metric} reached {pct(result.value)} on day {result.day}, at or {plan.stop_when} the "
            f"stop threshold of {pct(plan.stop_threshold)}"
        )
    if result.spend_usd >= plan.budget_usd:
        reasons.append(f"{fmt(result.spend_usd)} USD spent of its {fmt(cents(plan.budget_usd))} USD budget")
    figures = {
        plan.metric: pct(result.value),
        "cac_usd": fmt(result.cac_usd),
        "ltv_usd": fmt(result.ltv_usd),
        "lift_pct": pct(result.lift_pct),
        "spend_usd": fmt(result.spend_usd),
    }
    stop = None
    if reasons:
        stop = ExperimentDecision(
            {"experiment_id": eid, "reason": "; ".join(reasons)},
            Facts(
                intent="propose",
                decision=f"stop experiment {eid}",
                reasons=reasons,
                figures=figures,
                rules=[stop_rule(plan)],
            ),
            stop_key(eid),
        )
    metrics = GrowthMetrics(
        experiment_id=eid,
        day=result.day,
        cac_usd=number(cents(result.cac_usd)),
        ltv_usd=number(cents(result.ltv_usd)),
        lift_pct=float(result.lift_pct),
        spend_usd=number(cents(result.spend_usd)),
        conversions=result.conversions,
        status="stopped" if stop is not None else "running",
    )
    ratio = f"{fmt(result.ltv_usd / result.cac_usd)}x" if result.cac_usd else "n/a"
    metrics_facts = Facts(
        intent="inform",
        decision=f"report experiment {eid}'s acquisition cost and customer value on day {result.day}",
        reasons=[f"LTV/CAC is {ratio} against a predicted lift of {pct(plan.predicted_lift_pct)}%"],
        figures={**figures, "conversions": str(result.conversions)},
    )
    return ResultDecision(metrics, metrics_facts, stop)
