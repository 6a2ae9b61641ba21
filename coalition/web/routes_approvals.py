"""The approvals inbox: pending escalations ranked by risk, and approve / reject through record_decision.

The console adds no rule of its own: the logged-in user decides as themselves (their console name is their
name in the policy's approver directory), signing with their approver key unlocked at login, and
`coalition.governance.approvals.record_decision` checks the signature, separation of duties, roles, four-eyes,
the proposal hash and expiry, exactly as for the CLI (method "web").
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from coalition.governance.approvals import DecisionResult, policy_for_run, record_decision
from coalition.governance.errors import PolicyError
from coalition.governance.escalation import RefusalCode
from coalition.governance.reviews import ReviewRefusal, record_review
from coalition.web.auth import DECIDERS, READERS, Principal, allow
from coalition.web.csrf import CSRF_FIELD, check_fetch_site, check_token, submitted_token
from coalition.web.errors import Refused
from coalition.web.pages import render, state_of
from coalition.web.views import WARN_BEFORE, find_escalation, review_items

router = APIRouter()

# 403: who you are may not decide this; 409: the escalation's state forbids it now; 400/404: the request itself.
REFUSAL_STATUS: dict[RefusalCode, int] = {
    "not_an_approver": 403,
    "wrong_role": 403,
    "self_approval": 403,
    "already_decided": 409,
    "same_approver": 409,
    "expired": 409,
    "stale_hash": 409,
    "run_finished": 409,
    "no_sim_time": 409,
    "unknown_escalation": 404,
    "missing_approver": 400,
    "missing_reason": 400,
    "unsigned": 403,
    "bad_signature": 403,
    "bad_amendment": 400,
}


# A review mark refused: who you are (403), the item's state (409), the request itself (400/404).
REVIEW_REFUSAL_STATUS: dict[ReviewRefusal, int] = {
    "missing_reviewer": 400,
    "missing_reason": 400,
    "not_a_reviewer": 403,
    "self_review": 403,
    "unsigned": 403,
    "bad_signature": 403,
    "unknown_proposal": 404,
    "not_sampled": 409,
    "already_reviewed": 409,
}


def refusal_status(result: DecisionResult) -> int:
    """The HTTP status of a refused decision, from its code (403 if a future code is not mapped yet)."""
    return REFUSAL_STATUS.get(result.code, 403) if result.code is not None else 403


@router.get("/approvals", include_in_schema=False)
def approvals_page(
    request: Request,
    principal: Annotated[Principal, Depends(allow(READERS))],
    run: Annotated[str | None, Query(max_length=200)] = None,
    done: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    marked: Annotated[bool, Query()] = False,
) -> Response:
    """Pending escalations (highest risk first) with everything needed to decide; decided ones below; then the
    review queue of the sampled approval tier. `done`: the entry just recorded (`marked`: a review mark)."""
    return _page(request, principal, run=run or "", done=done, marked=marked)


def _page(
    request: Request,
    principal: Principal,
    status: int = 200,
    *,
    run: str,
    done: int | None = None,
    marked: bool = False,
    error: str | None = None,
    typed_reasons: dict[str, str] | None = None,
) -> Response:
    state = state_of(request)
    return render(
        request,
        "approvals.html",
        principal,
        status,
        inbox=state.inbox(run or None),
        reviews=review_items(state.ledger, state.signing.directory(), run_id=run or None),
        run=run,
        done=done,
        marked=marked,
        error=error,
        can_decide=principal.can(DECIDERS),
        now=state.clock.now(),
        warn_seconds=WARN_BEFORE.total_seconds(),
        typed_reasons=typed_reasons or {},
    )


def amendment(text: str) -> dict[str, Any] | None:
    """The form's amendment: None when empty, else a JSON object of the arguments to change (400 otherwise)."""
    if not text.strip():
        return None
    try:
        changes = json.loads(text)
    except ValueError as exc:
        raise Refused(400, f'amend: not JSON ({str(exc).splitlines()[0]}); e.g. {{"price": 70}}') from None
    if not isinstance(changes, dict) or not changes:
        raise Refused(400, 'amend: give a JSON object of the arguments to change, e.g. {"price": 70}')
    return changes


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
    inbox_run: Annotated[str, Form(max_length=200)] = "",
    amend: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Record one decision as the logged-in user; a refusal re-renders the inbox (same run filter) with the reason.
    `amend` (an assistive draft): a JSON object of the arguments to change, adopted with the approval."""
    check_fetch_site(request)
    check_token(principal.session.csrf_token, submitted_token(request, csrf_token))
    if not principal.can(DECIDERS):
        raise Refused(403, f"{principal.name} ({', '.join(principal.roles)}) may read approvals but not decide them")
    if not reason.strip():
        raise Refused(400, "a decision needs a reason (it is recorded in the ledger)")
    changes = amendment(amend)
    ledger = state_of(request).ledger
    escalation, policy, why = find_escalation(ledger, run_id, proposal_id)
    if escalation is None or policy is None:
        raise Refused(404 if policy is not None else 409, why)
    key = state_of(request).signing.key(principal.token)
    if key is None:
        raise Refused(403, f"{principal.name} has no signing key unlocked: sign out and in again to sign decisions")
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
        key=key,  # the same identity as the CLI's: the approver's key, opened by their password at login
        amend=changes,
    )
    if result.accepted:
        seq = result.entry.seq if result.entry else 0
        query = urlencode({"done": seq, **({"run": inbox_run} if inbox_run else {})})
        return RedirectResponse(f"/approvals?{query}", status_code=303)
    return _page(
        request,
        principal,
        refusal_status(result),
        run=inbox_run,
        error=f"refused: {result.reason}",
        typed_reasons={f"{run_id}/{proposal_id}": reason},  # what the user typed stays in the form
    )


@router.post("/approvals/review", include_in_schema=False)
def review(
    request: Request,
    *,
    principal: Annotated[Principal, Depends(allow(READERS))],
    run_id: Annotated[str, Form(min_length=1, max_length=200)],
    proposal_id: Annotated[str, Form(min_length=1, max_length=200)],
    mark: Annotated[Literal["right", "wrong"], Form()],
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
    inbox_run: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Mark one sampled item right or wrong as the logged-in user (signed with their approver key, as a decision);
    a refusal re-renders the inbox with the reason."""
    check_fetch_site(request)
    check_token(principal.session.csrf_token, submitted_token(request, csrf_token))
    if not principal.can(DECIDERS):
        raise Refused(403, f"{principal.name} ({', '.join(principal.roles)}) may read the review queue but not mark it")
    state = state_of(request)
    try:
        policy = policy_for_run(state.ledger, run_id)
    except PolicyError as exc:
        raise Refused(409, str(exc)) from None
    key = state.signing.key(principal.token)
    if key is None:
        raise Refused(403, f"{principal.name} has no signing key unlocked: sign out and in again to sign review marks")
    result = record_review(
        state.ledger,
        run_id=run_id,
        proposal_id=proposal_id,
        reviewer=principal.name,
        mark=mark,
        reason=reason,
        policy=policy,
        key=key,
        trusted=state.signing.directory(),
        method="web",
    )
    if result.accepted:
        seq = result.entry.seq if result.entry else 0
        query = urlencode({"done": seq, "marked": "true", **({"run": inbox_run} if inbox_run else {})})
        return RedirectResponse(f"/approvals?{query}#review", status_code=303)
    status = REVIEW_REFUSAL_STATUS.get(result.code, 403) if result.code is not None else 403
    return _page(
        request,
        principal,
        status,
        run=inbox_run,
        error=f"refused: {result.reason}",
        typed_reasons={f"review/{run_id}/{proposal_id}": reason},
    )
