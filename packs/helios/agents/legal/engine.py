"""Legal's decisions: lint marketing claims against the approved and banned lists, and turn a regulatory
change into a jurisdiction pack and obligations for ops and marketing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from coalition.agents.facts import Facts
from coalition.packs.helios.payloads import (
    ClaimsReview,
    ClaimsReviewRequest,
    Finding,
    NoGoRegion,
    ObligationsNotice,
    PolicyBrief,
    RegulatoryChange,
)

_WORD = re.compile(r"[a-z0-9%]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def closest_approved(phrase: str, approved: list[str], *, avoid: str = "") -> str:
    """The approved claim sharing the most words with the phrase, preferring claims not already in `avoid`
    (list order breaks ties; '' when the library is empty)."""
    if not approved:
        return ""
    words, present = _words(phrase), avoid.lower()
    return max(
        approved,
        key=lambda claim: (claim.lower() not in present, len(words & _words(claim)), -approved.index(claim)),
    )


def _replace(pattern: re.Pattern[str], replacement: str, text: str) -> str:
    """Replace every match, keeping a capital initial where the copy had one."""

    def swap(match: re.Match[str]) -> str:
        if replacement and match.group(0)[:1].isupper():
            return replacement[:1].upper() + replacement[1:]
        return replacement

    return " ".join(pattern.sub(swap, text).split())


def lint(request: ClaimsReviewRequest, brief: PolicyBrief) -> tuple[ClaimsReview, Facts]:
    """Find banned phrases (in copy or claims) and claims outside the approved library; propose fixes.

    A banned phrase in the copy is replaced by the closest approved claim not already in the copy; a claim
    outside the library is replaced by its closest approved claim (one finding per phrase).
    """
    approved_normal = {_normal(c): c for c in brief.approved_claims}
    findings: list[Finding] = []
    flagged: set[str] = set()
    substitutes: dict[str, str] = {}
    revised_copy = request.copy_text
    for banned in brief.banned_claims:
        pattern = re.compile(re.escape(banned), re.IGNORECASE)
        if pattern.search(request.copy_text) or any(pattern.search(claim) for claim in request.claims):
            suggestion = closest_approved(banned, brief.approved_claims, avoid=revised_copy)
            findings.append(Finding(phrase=banned, rule="banned_claim", suggestion=suggestion))
            flagged.add(_normal(banned))
            substitutes[_normal(banned)] = suggestion
            revised_copy = _replace(pattern, suggestion, revised_copy)
    revised_claims: list[str] = []
    for claim in request.claims:
        approved = approved_normal.get(_normal(claim))
        replacement = approved or substitutes.get(_normal(claim)) or closest_approved(claim, brief.approved_claims)
        if approved is None and _normal(claim) not in flagged:
            findings.append(Finding(phrase=claim, rule="unapproved_claim", suggestion=replacement))
            flagged.add(_normal(claim))
        if replacement and replacement not in revised_claims:
            revised_claims.append(replacement)
    review = ClaimsReview(
        campaign_id=request.campaign_id,
        approved=not findings,
        findings=findings,
        revised_copy=revised_copy,
        revised_claims=revised_claims,
    )
    facts = Facts(
        intent="review",
        decision=(
            f"approve the claims of campaign {request.campaign_id} as written"
            if review.approved
            else f"require {len(findings)} change(s) to campaign {request.campaign_id}"
        ),
        reasons=[f"'{f.phrase}' is a {f.rule.replace('_', ' ')}; use '{f.suggestion}'" for f in findings],
        figures={"claims": str(len(request.claims)), "findings": str(len(findings))},
        rules=["only claims from the compliance-approved library; banned claims never"],
    )
    return review, facts


@dataclass(frozen=True, slots=True)
class JurisdictionPack:
    change: RegulatoryChange
    facts: Facts
    notice: ObligationsNotice
    notice_facts: Facts

    def args(self) -> dict[str, object]:
        return {
            "region": self.change.region,
            "status": self.change.status,
            "obligations": list(self.change.obligations),
            "effective": self.change.effective.isoformat(),
            "material": self.change.material,
        }


def jurisdiction_pack(
    change: RegulatoryChange, untrusted_flags: list[str], no_go: NoGoRegion | None = None
) -> JurisdictionPack:
    """Publish the region's new status and obligations; materiality comes from the observation, not from prose.

    The regulator's change is the newer evidence, so it is published as it is; where research had marked the
    region no-go, the pack says so: an opening is then material whatever the observation claims (a human
    confirms it), and a closing is confirmed by research's reading."""
    reasons = [
        f"{change.region} is now {change.status} from {change.effective.isoformat()}",
        f"{len(change.obligations)} obligation(s) apply: {', '.join(change.obligations) or 'none'}",
    ]
    if no_go is not None and change.status == "allowed":
        change = change.model_copy(update={"material": True})
        reasons.append(
            f"research had marked {change.region} no-go ({no_go.reason}): opening it is a material change "
            "for humans to confirm"
        )
    elif no_go is not None:
        reasons.append(f"research had also marked {change.region} no-go ({no_go.reason})")
    if untrusted_flags:
        reasons.append(f"the regulator's text was flagged ({', '.join(untrusted_flags)}) and only its data was used")
    facts = Facts(
        intent="propose",
        decision=f"publish the {change.region} jurisdiction pack ({change.status})",
        reasons=reasons,
        figures={"material": str(change.material).lower()},
        rules=["a material compliance change is a decision gate (human approval)"] if change.material else [],
    )
    notice = ObligationsNotice(
        region=change.region,
        status=change.status,
        obligations=list(change.obligations),
        effective=change.effective.isoformat(),
    )
    notice_facts = Facts(
        intent="inform",
        decision=f"apply the new {change.region} obligations from {change.effective.isoformat()}",
        reasons=[f"{change.region} status is {change.status}", *change.obligations],
    )
    return JurisdictionPack(change, facts, notice, notice_facts)
