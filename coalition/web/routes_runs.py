"""Overview and runs: health at a glance, the runs list with KPIs, one run's charts and timeline, live progress."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from coalition.ledger.base import LedgerQuery
from coalition.ledger.errors import MalformedEntry
from coalition.scenarios import report_render
from coalition.scenarios.spec import list_library
from coalition.web.auth import OPERATORS, READERS, Principal, allow
from coalition.web.csrf import CSRF_FIELD, check_fetch_site, check_token, submitted_token
from coalition.web.errors import Refused
from coalition.web.figures import NARROW_FIGURES
from coalition.web.pages import render, state_of
from coalition.web.routes_assets import PLOTLY_JS_URL, plotly_bundle
from coalition.web.sse import progress_of, progress_stream
from coalition.web.urls import path_segment
from coalition.web.views import WARN_BEFORE, run_row

router = APIRouter()

ReportFormat = Literal["html", "md", "json", "csv"]
_MEDIA_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}


@router.get("/", include_in_schema=False)
def overview(request: Request, principal: Annotated[Principal, Depends(allow(READERS))]) -> Response:
    """Recent runs, pending approvals (age, risk), budget use per agent, blocked violations, integrity."""
    state = state_of(request)
    ledger = state.ledger
    runs = list(reversed(state.runs()))[:8]
    live = {r.run_id for r in state.live.running()}
    now = state.clock.now()
    rows = [run_row(ledger, info, live=info.run_id in live, now=now) for info in runs]
    latest = runs[0].run_id if runs else None
    try:
        report = state.run_views.report(ledger, runs[0].run_id, runs[0].last_seq) if runs else None
    except MalformedEntry:  # the latest run's run.started altered: the inbox names it, the overview still serves
        report = None
    blocked = ledger.query(LedgerQuery(kind="verdict", outcome="deny", newest_first=True, limit=10))
    return render(
        request,
        "overview.html",
        principal,
        runs=rows,
        inbox=state.inbox(),
        budgets=report.budgets if report is not None else [],
        budgets_run=latest,
        blocked=blocked,
        blocked_total=ledger.count(LedgerQuery(kind="verdict", outcome="deny")),
        verified=state.last_verify,
        checkpoint=state.newest_checkpoint(),
        head=ledger.head(),
        now=now,
        warn_seconds=WARN_BEFORE.total_seconds(),
    )


@router.get("/runs", include_in_schema=False)
def runs_page(request: Request, principal: Annotated[Principal, Depends(allow(READERS))]) -> Response:
    state = state_of(request)
    live = {r.run_id for r in state.live.running()}
    now = state.clock.now()
    rows = [run_row(state.ledger, info, live=info.run_id in live, now=now) for info in reversed(state.runs())]
    return render(
        request, "runs.html", principal, runs=rows, scenarios=list_library(), can_start=principal.can(OPERATORS)
    )


@router.post("/runs", include_in_schema=False)
def start_run(
    request: Request,
    principal: Annotated[Principal, Depends(allow(READERS))],
    scenario: Annotated[str, Form(min_length=1, max_length=100)],
    interactive: Annotated[bool, Form()] = False,
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Response:
    """Start a library scenario in a background thread (policy-admin); its page streams the progress."""
    check_fetch_site(request)
    check_token(principal.session.csrf_token, submitted_token(request, csrf_token))
    if not principal.can(OPERATORS):
        raise Refused(403, f"{principal.name} may not start runs (needs policy-admin)")
    live = state_of(request).live.start(scenario, interactive=interactive)
    return RedirectResponse(f"/runs/{path_segment(live.run_id)}", status_code=303)


@router.get("/runs/{run_id:path}/events", include_in_schema=False)
def run_events(request: Request, principal: Annotated[Principal, Depends(allow(READERS))], run_id: str) -> Response:
    """Server-sent events: `progress` while the run moves, then `done`."""
    return StreamingResponse(
        progress_stream(state_of(request), run_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/runs/{run_id:path}/report.{fmt}", include_in_schema=False)
def run_report_download(
    request: Request, principal: Annotated[Principal, Depends(allow(READERS))], run_id: str, fmt: ReportFormat
) -> Response:
    """The run's report as `coalition report --format FMT` writes it, as a download (html: self-contained, offline)."""
    state = state_of(request)
    info = next((r for r in state.runs() if r.run_id == run_id), None)
    report = state.run_views.report(state.ledger, run_id, info.last_seq) if info is not None else None
    if report is None:
        raise Refused(404, f"no run {run_id!r} in the ledger")
    filename = f"report-{re.sub(r'[^A-Za-z0-9._-]', '_', run_id)}.{fmt}"
    return Response(
        report_render.render(report, fmt),
        media_type=_MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# After the events and report routes: "{run_id:path}" (a run id may hold "/") would match their URLs too.
@router.get("/runs/{run_id:path}", include_in_schema=False)
def run_page(request: Request, principal: Annotated[Principal, Depends(allow(READERS))], run_id: str) -> Response:
    """Charts over simulated time with decision markers, the decision timeline by agent, expectations."""
    state = state_of(request)
    ledger = state.ledger
    info = next((r for r in state.runs() if r.run_id == run_id), None)
    live = state.live.get(run_id)
    if info is None and live is None:
        raise Refused(404, f"no run {run_id!r} in the ledger")
    view = state.run_views.get(ledger, run_id, info.last_seq if info is not None else 0)
    return render(
        request,
        "run.html",
        principal,
        run_id=run_id,
        row=run_row(ledger, info, live=live is not None and live.alive, now=state.clock.now()) if info else None,
        progress=progress_of(state, run_id),
        charts=view.charts,
        figures=view.figures,
        plotly_js_url=PLOTLY_JS_URL,
        plotly_style_ids=plotly_bundle().inline_style_ids if view.report is not None else (),
        report_url=f"/runs/{path_segment(run_id)}/report",
        narrow_figures=NARROW_FIGURES,
        timeline=view.timeline,
        escalations=view.escalations,
        expectations=view.expectations,
        budgets=view.budgets,
        now=state.clock.now(),
        warn_seconds=WARN_BEFORE.total_seconds(),
    )
