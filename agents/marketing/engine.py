"""Marketing's decisions: campaigns within finance's guardrails, the claims-review loop with legal, and the
response to customer complaints (comms; a settlement pause it may ask for but is not permitted to do)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from coalition.agents.facts import Facts
from coalition.agents.money import cents, dec, fmt, number, pct
from coalition.agents.payloads import (
    ClaimsReview,
    ClaimsReviewRequest,
    CustomerComplaints,
    GrowthGoal,
    PriceGuardrails,
)
from coalition.bus.canonical import content_hash
from coalition.bus.messages import VerdictIssued

Denial = Literal["claims", "discount", "other"]


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
