"""Dashboards per run: the executive overview (three statements over simulated time, KPIs), the trust dashboard
and the ops cockpit — read from the ledger by coalition.scenarios.dashboards, every figure linked to its entries."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from coalition.ledger.base import Ledger
from coalition.scenarios.dashboards import Dashboards, run_dashboards
from coalition.scenarios.reports import ReportError
from coalition.web.auth import READERS, Principal, allow
from coalition.web.charts import line_chart
from coalition.web.errors import Refused
from coalition.web.pages import render, state_of
from coalition.web.urls import path_segment

router = APIRouter()

Board = Literal["overview", "trust", "ops"]
BOARDS: dict[str, str] = {"overview": "Executive overview", "trust": "Trust dashboard", "ops": "Ops cockpit"}
_CACHE: dict[tuple[str, str, int, int], Dashboards] = {}
_CACHE_SIZE = 16


def dashboards_of(ledger: Ledger, path: str, run_id: str, last_seq: int, entries: int) -> Dashboards:
    """Built once per run and ledger head of that run (a finished run's dashboards never change)."""
    key = (path, run_id, last_seq, entries)
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = run_dashboards(ledger, run_id)
    return _CACHE[key]


@router.get("/dashboards", include_in_schema=False)
def latest(request: Request, principal: Annotated[Principal, Depends(allow(READERS))]) -> Response:
    """The most recent run's executive overview."""
    runs = state_of(request).runs()
    if not runs:
        return render(request, "dashboards.html", principal, board=None, boards=BOARDS, run_id=None, d=None)
    newest = max(runs, key=lambda r: r.first_seq)
    return RedirectResponse(f"/dashboards/overview/{path_segment(newest.run_id)}", status_code=303)


@router.get("/dashboards/{board}/{run_id:path}", include_in_schema=False)
def board_page(
    request: Request, principal: Annotated[Principal, Depends(allow(READERS))], board: Board, run_id: str
) -> Response:
    state = state_of(request)
    info = next((r for r in state.runs() if r.run_id == run_id), None)
    if info is None:
        raise Refused(404, f"no run {run_id!r} in the ledger")
    try:
        d = dashboards_of(state.ledger, str(state.ledger.path), run_id, info.last_seq, info.entries)
    except ReportError as exc:
        raise Refused(404, str(exc)) from None
    charts = []
    if board == "overview" and d.statements:
        days = [s.day for s in d.statements]
        charts = [
            line_chart(
                "Net income, cumulative (USD)",
                [("net income", list(zip(days, [s.cumulative_net_income_usd for s in d.statements], strict=True)))],
            ),
            line_chart(
                "Balance sheet (USD)",
                [
                    ("assets", list(zip(days, [s.assets_usd for s in d.statements], strict=True))),
                    ("liabilities", list(zip(days, [s.liabilities_usd for s in d.statements], strict=True))),
                    ("equity", list(zip(days, [s.equity_usd for s in d.statements], strict=True))),
                ],
            ),
            line_chart(
                "Cash flow per day (USD)",
                [
                    ("operating", list(zip(days, [s.operating_cash_flow_usd for s in d.statements], strict=True))),
                    ("outside the P&L", list(zip(days, [s.other_cash_usd for s in d.statements], strict=True))),
                ],
            ),
        ]
    return render(
        request,
        "dashboards.html",
        principal,
        board=board,
        boards=BOARDS,
        run_id=run_id,
        d=d,
        weeks=d.weeks(),
        charts=charts,
        runs=[r.run_id for r in reversed(state.runs())][:20],
    )
