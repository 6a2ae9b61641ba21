"""The approvals inbox: pending escalations ranked by risk, and approve / reject through record_decision.

The console adds no rule of its own: the logged-in user decides as themselves (their console name is their
name in the policy's approver directory) and `coalition.governance.approvals.record_decision` checks
separation of duties, roles, four-eyes, the proposal hash and expiry, exactly as for the CLI (method "web").
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from coalition.governance.approvals import DecisionResult, record_decision
from coalition.web.auth import DECIDERS, READERS, Principal, allow
from coalition.web.csrf import CSRF_FIELD, check_fetch_site, check_token, submitted_token
from coalition.web.errors import Refused
from coalition.web.pages import render, state_of
from coalition.web.views import find_escalation, inbox

router = APIRouter()

_STATE_REFUSALS = ("already", "expired", "hash", "no escalation", "no simulated time")


def refusal_status(result: DecisionResult) -> int:
    """409 when the escalation's state forbids it (decided, expired, stale hash), else 403 (who you are)."""
    text = result.reason.lower()
    if "already approved" in text:
        return 409  # the same approver twice counts once
    return 409 if any(marker in text for marker in _STATE_REFUSALS) else 403


@router.get("/approvals", include_in_schema=False)
def approvals_page(
    request: Request,
    principal: Annotated[Principal, Depends(allow(READERS))],
    run: str | None = None,
    done: str | None = None,
) -> Response:
    """Pending escalations (highest risk first) with everything needed to decide; decided ones below."""
    box = inbox(state_of(request).ledger, run_id=run or None)
    return render(
        request,
        "approvals.html",
        principal,
        inbox=box,
        run=run or "",
        done=done,
        error=None,
        can_decide=principal.can(DECIDERS),
    )


@router.post("/approvals/decide", include_in_schema=False)
def decide(
    request: Request,
    *,
    principal: Annotated[Principal, Depends(allow(READERS))],
    run_id: Annotated[str, Form(min_length=1, max_length=200)],
    proposal_id: Annotated[str, Form(min_length=1, max_length=200)],
    decision: Annotated[Literal["approve", "reject"], Form()],
    reason: Annotated[str, Form(max_length=2000)] = "",
    proposal_hash: Annotated[str | None, Form(max_length=128)] = None,
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Response:
    """Record one decision as the logged-in user; a refusal re-renders the inbox with the reason."""
    check_fetch_site(request)
    check_token(principal.session.csrf_token, submitted_token(request, csrf_token))
    if not principal.can(DECIDERS):
        raise Refused(403, f"{principal.name} ({', '.join(principal.roles)}) may read approvals but not decide them")
    if not reason.strip():
        raise Refused(400, "a decision needs a reason (it is recorded in the ledger)")
    ledger = state_of(request).ledger
    escalation, policy, why = find_escalation(ledger, run_id, proposal_id)
    if escalation is None or policy is None:
        raise Refused(404 if policy is not None else 409, why)
    result = record_decision(
        ledger,
        run_id=run_id,
        proposal_id=proposal_id,
        approver=principal.name,
        decision=decision,
        reason=reason,
        proposal_hash=proposal_hash or None,
        method="web",
        policy=policy,
    )
    if result.accepted:
        seq = result.entry.seq if result.entry else 0
        return RedirectResponse(f"/approvals?done={seq}", status_code=303)
    box = inbox(ledger)
    return render(
        request,
        "approvals.html",
        principal,
        refusal_status(result),
        inbox=box,
        run="",
        done=None,
        error=f"refused: {result.reason}",
        can_decide=True,
    )
