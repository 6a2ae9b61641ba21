"""What a run page shows, built once per (run, last entry of that run) and kept: the report, its plotly figures as
JSON islands, the no-JS SVG charts, the timeline, escalations and budgets.

A finished run's entries never change, so its page is built once (the console warms it when a run it started
ends) and served from memory after; a decision on a finished interactive run appends to that run, which moves its
last sequence number and so rebuilds it. Building takes a few hundred ms on a run of a hundred days; serving ~ms.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from coalition.ledger.base import Ledger
from coalition.scenarios.reports import BudgetUse, ReportError, RunReport, run_report
from coalition.web.charts import line_chart
from coalition.web.figures import FigureIsland, figure_islands
from coalition.web.views import Inbox, TimelineItem, decision_timeline, inbox, run_finished, run_series


@dataclass(frozen=True, slots=True)
class RunView:
    """Everything on a run page that is read from the ledger (progress and status are read per request)."""

    run_id: str
    last_seq: int
    report: RunReport | None
    figures: list[FigureIsland]
    charts: list[Markup]
    timeline: dict[str, list[TimelineItem]]
    escalations: Inbox
    expectations: list[Any]
    budgets: list[BudgetUse] = field(default_factory=list)


def build_report(ledger: Ledger, run_id: str, reviewers: Mapping[str, str] | None = None) -> RunReport | None:
    try:
        return run_report(ledger, run_id, reviewers=reviewers)
    except ReportError:
        return None


def _points(days: list[int], values: list[float | None]) -> list[tuple[int, float]]:
    """A line's (day, value) points, days without a value left out."""
    return [(day, value) for day, value in zip(days, values, strict=True) if value is not None]


def build_run_view(ledger: Ledger, run_id: str, last_seq: int, report: RunReport | None) -> RunView:
    series = run_series(ledger, run_id)
    markers = series.markers
    charts = [
        line_chart(
            c.chart.title,
            [(d.name, _points(series.days, d.values)) for d in c.lines if not d.line.right],
            markers=markers,
            band=(_points(series.days, c.band[0].values), _points(series.days, c.band[1].values)) if c.band else None,
        )
        for c in series.charts
    ]
    finished = run_finished(ledger, run_id)
    return RunView(
        run_id=run_id,
        last_seq=last_seq,
        report=report,
        figures=figure_islands(report) if report is not None else [],
        charts=charts,
        timeline=decision_timeline(ledger, run_id),
        escalations=inbox(ledger, run_id=run_id),
        expectations=list(finished.payload.get("expectations", [])) if finished is not None else [],
        budgets=list(report.budgets) if report is not None else [],
    )


class _Lru:
    """Values by run id, each valid while the run's last sequence number is the one it was built at."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str, last_seq: int, build: Callable[[], Any]) -> Any:
        with self._lock:
            item = self._items.get(run_id)
            if item is not None and item[0] == last_seq:
                self._items.move_to_end(run_id)
                return item[1]
        value = build()  # outside the lock: two builders at worst, same result
        with self._lock:
            self._items[run_id] = (last_seq, value)
            self._items.move_to_end(run_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


class RunViews:
    """Run reports and run pages, cached per run and its last sequence number (a small LRU each)."""

    def __init__(self, size: int = 16, reviewers: Callable[[], Mapping[str, str]] | None = None) -> None:
        self._reports = _Lru(size)
        self._views = _Lru(size)
        self._reviewers = reviewers  # the approver keys that check review marks (coalition/web/signing_keys.py)

    def report(self, ledger: Ledger, run_id: str, last_seq: int) -> RunReport | None:
        reviewers = self._reviewers() if self._reviewers is not None else None
        report: RunReport | None = self._reports.get(run_id, last_seq, lambda: build_report(ledger, run_id, reviewers))
        return report

    def get(self, ledger: Ledger, run_id: str, last_seq: int) -> RunView:
        report = self.report(ledger, run_id, last_seq)
        view: RunView = self._views.get(run_id, last_seq, lambda: build_run_view(ledger, run_id, last_seq, report))
        return view
