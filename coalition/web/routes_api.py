"""JSON endpoints under /api (the same reads as the pages), described by the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from coalition.governance.decision_signatures import decision_check
from coalition.ledger.explain import explain
from coalition.web.auth import READERS, Principal, allow
from coalition.web.errors import Refused
from coalition.web.ledger_filter import LedgerFilter, ledger_filter, page
from coalition.web.pages import state_of
from coalition.web.sse import progress_of
from coalition.web.views import InboxItem, inbox, run_row

router = APIRouter(prefix="/api", tags=["api"])
Reader = Annotated[Principal, Depends(allow(READERS))]
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no live session"},
    403: {"description": "role not allowed"},
    404: {"description": "not found"},
}


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunOut(_Out):
    """One run: span in the ledger, status, expectations and headline KPIs."""

    run_id: str
    scenario: str | None
    status: str
    entries: int
    first_seq: int
    last_seq: int
    expectations_passed: int
    expectations_total: int
    kpis: dict[str, Any]


class LedgerPageOut(_Out):
    """One keyset page of entries (newest first); pass `older` as before= or `newer` as after=."""

    entries: list[dict[str, Any]]
    older: int | None
    newer: int | None


class EscalationOut(_Out):
    """One escalation with its risk and decisions."""

    run_id: str
    proposal_id: str
    proposal_hash: str
    agent: str
    action: str
    args: dict[str, Any]
    rationale: str
    evidence: list[str]
    gate: str
    rule_ids: list[str]
    reasons: list[str]
    risk: int
    risk_label: str
    status: str
    approvals_required: int
    decisions: list[dict[str, str]]
    expires_at: str | None
    if_approved: str


def _escalation(item: InboxItem) -> EscalationOut:
    e = item.escalation
    return EscalationOut(
        run_id=item.run_id,
        proposal_id=e.proposal_id,
        proposal_hash=e.proposal_hash,
        agent=e.agent,
        action=e.proposal.action,
        args=e.proposal.args,
        rationale=e.proposal.rationale,
        evidence=list(e.proposal.evidence),
        gate=e.gate,
        rule_ids=list(e.rule_ids),
        reasons=list(e.reasons),
        risk=item.risk,
        risk_label=item.risk_label,
        status=e.status,
        approvals_required=e.approvals_required,
        decisions=[
            {"approver": d.approver, "role": d.role, "decision": d.decision, "reason": d.reason, "method": d.method}
            for d in (*e.approvals, *e.rejections)
        ],
        expires_at=e.expires_at.isoformat() if e.expires_at else None,
        if_approved=e.if_approved(),
    )


@router.get("/runs", response_model=list[RunOut], responses=_ERRORS)
def api_runs(request: Request, principal: Reader) -> list[RunOut]:
    """Every run in the ledger, newest first."""
    state = state_of(request)
    live, now = {r.run_id for r in state.live.running()}, state.clock.now()
    out = []
    for info in reversed(state.runs()):
        row = run_row(state.ledger, info, live=info.run_id in live, now=now)
        out.append(
            RunOut(
                run_id=info.run_id,
                scenario=info.scenario,
                status=row.status,
                entries=info.entries,
                first_seq=info.first_seq,
                last_seq=info.last_seq,
                expectations_passed=row.expectations_passed,
                expectations_total=row.expectations_total,
                kpis=row.kpis,
            )
        )
    return out


@router.get("/runs/{run_id}/progress", responses=_ERRORS)
def api_progress(request: Request, principal: Reader, run_id: Annotated[str, Path(max_length=200)]) -> dict[str, Any]:
    """The run's progress snapshot (the same data the live page streams)."""
    return progress_of(state_of(request), run_id)


@router.get("/ledger", response_model=LedgerPageOut, responses=_ERRORS)
def api_ledger(
    request: Request, principal: Reader, f: Annotated[LedgerFilter, Depends(ledger_filter)]
) -> LedgerPageOut:
    """Ledger entries, newest first, filtered by facets and full-text search; keyset pages on seq."""
    result = page(state_of(request).ledger, f)
    return LedgerPageOut(
        entries=[e.model_dump(mode="json") for e in result.entries], older=result.older, newer=result.newer
    )


@router.get("/ledger/{seq}", responses=_ERRORS)
def api_entry(request: Request, principal: Reader, seq: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
    """One ledger entry with every field."""
    entry = state_of(request).ledger.get(seq)
    if entry is None:
        raise Refused(404, f"no ledger entry #{seq}")
    return entry.model_dump(mode="json")


@router.get("/ledger/{seq}/explain", responses=_ERRORS)
def api_explain(request: Request, principal: Reader, seq: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
    """The "why" chain of one entry (the same as `coalition ledger explain`)."""
    ledger = state_of(request).ledger
    if ledger.get(seq) is None:
        raise Refused(404, f"no ledger entry #{seq}")
    return explain(ledger, seq, decision_problem=decision_check(ledger)).model_dump(mode="json")


@router.get("/approvals", response_model=list[EscalationOut], responses=_ERRORS)
def api_approvals(
    request: Request, principal: Reader, run: Annotated[str | None, Query(max_length=200)] = None
) -> list[EscalationOut]:
    """Pending escalations, highest risk first."""
    return [_escalation(item) for item in inbox(state_of(request).ledger, run_id=run or None).pending]
