"""What each console page shows, read from the ledger: the inbox ranked by risk, runs with KPIs, chart series.

Pure reads over the `Ledger` port; the routes render these values and never compute business facts.
"""

from __future__ import annotations

import typing
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from coalition.domain import DEFAULT_PACK, catalog
from coalition.governance.approvals import latest_sim_time, load_escalation, policy_for_run
from coalition.governance.errors import PolicyError
from coalition.governance.escalation import Escalation
from coalition.governance.policy import Policy
from coalition.governance.reviews import SampledItem, review_queue
from coalition.ledger.base import Ledger, LedgerQuery, RunInfo
from coalition.ledger.entry import EntryKind, LedgerEntry
from coalition.ledger.errors import MalformedEntry
from coalition.scenarios.chart_series import ChartValues, chart_values
from coalition.scenarios.world_kpis import world_kpis

ENTRY_KINDS: tuple[str, ...] = typing.get_args(EntryKind)
OUTCOMES: tuple[str, ...] = ("allow", "deny", "escalate", "approved", "rejected", "expired", "applied", "completed")

# How much harm a wrong "yes" at the core's own gate can do (a request for more budget); each pack declares its
# gates' (Reporting.gate_risk): money moved, credentials, capital > policy changes > budget. Undeclared: 2.
CORE_GATE_RISK: dict[str, int] = {"budget_overrun": 2}
HEADLINE_KPIS = 5  # the first KPIs a run's pack declares, shown in the runs list


@cache
def gate_risk() -> dict[str, int]:
    """How much harm a wrong "yes" at each gate of the installed packs can do (1-5)."""
    risks = dict(CORE_GATE_RISK)
    for pack in catalog().packs.values():
        risks.update(pack.reporting.gate_risk)
    return risks


_AMOUNT_ARGS = ("amount_usd", "investment_usd", "budget_usd", "cost_usd")


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One escalation as the inbox shows it: the escalation, its risk, and how long it has waited."""

    run_id: str
    escalation: Escalation
    risk: int
    risk_label: str
    amount_usd: Decimal | None
    opened_wall: datetime
    now_sim: datetime | None
    # Interactive runs: when the runner stops waiting for humans (opened + the run's approval wait, wall clock);
    # after that the simulated clock moves on and the escalation expires at `escalation.expires_at`.
    wall_deadline: datetime | None = None
    wait_assumed: bool = False  # the run did not record its wait (a process setting): the CLI default is assumed

    @property
    def key(self) -> str:
        return f"{self.run_id}/{self.escalation.proposal_id}"

    @property
    def sim_hours_left(self) -> float | None:
        """Simulated hours until the escalation expires, from the run's latest simulated time."""
        if self.escalation.expires_at is None or self.now_sim is None:
            return None
        return (self.escalation.expires_at - self.now_sim).total_seconds() / 3600

    def wall_seconds_left(self, now: datetime) -> float | None:
        return None if self.wall_deadline is None else (self.wall_deadline - now).total_seconds()


def amount_at_stake(escalation: Escalation) -> Decimal | None:
    for name in _AMOUNT_ARGS:
        value = escalation.proposal.args.get(name)
        if value is not None:
            try:
                return Decimal(str(value))
            except InvalidOperation:
                return None
    return None


def risk_of(escalation: Escalation) -> tuple[int, str]:
    """A 1–8 score from the gate, the money at stake and four-eyes; with a label for the badge."""
    score = gate_risk().get(escalation.gate, 2)
    amount = amount_at_stake(escalation)
    if amount is not None:
        score += 2 if amount >= 1_000_000 else 1 if amount >= 100_000 else 0
    if escalation.approvals_required > 1:
        score += 1
    return score, "high" if score >= 6 else "medium" if score >= 4 else "low"


@dataclass
class Inbox:
    """Pending escalations (highest risk first) and decided ones (newest first); runs whose policy is unusable."""

    pending: list[InboxItem] = field(default_factory=list)
    decided: list[InboxItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def policies_for(ledger: Ledger, run_ids: list[str], problems: list[str]) -> dict[str, Policy]:
    found: dict[str, Policy] = {}
    for run_id in dict.fromkeys(run_ids):
        try:
            found[run_id] = policy_for_run(ledger, run_id)
        except PolicyError as exc:
            problems.append(f"run {run_id}: {exc}")
        except MalformedEntry as exc:  # its run.started altered: named, the other runs' escalations still listed
            problems.append(str(exc))
    return found


def inbox(ledger: Ledger, *, run_id: str | None = None, limit: int = 300) -> Inbox:
    """Every escalation the ledger holds (the newest `limit` escalate verdicts), folded from the ledger."""
    verdicts = ledger.query(
        LedgerQuery(run_id=run_id, kind="verdict", outcome="escalate", newest_first=True, limit=limit)
    )
    result = Inbox()
    policies = policies_for(ledger, [v.run_id for v in verdicts], result.problems)
    now_by_run = {r: latest_sim_time(ledger, r) for r in policies}
    waits = {r: approval_wait(ledger, r) for r in policies}
    for verdict in verdicts:
        policy = policies.get(verdict.run_id)
        if policy is None:
            continue
        escalation = load_escalation(ledger, run_id=verdict.run_id, proposal_id=verdict.subject, policy=policy)
        if escalation is None:
            continue
        risk, label = risk_of(escalation)
        wait, assumed = waits[verdict.run_id]
        item = InboxItem(
            verdict.run_id,
            escalation,
            risk,
            label,
            amount_at_stake(escalation),
            verdict.wall_time,
            now_by_run[verdict.run_id],
            verdict.wall_time + wait if wait is not None else None,
            assumed,
        )
        (result.pending if escalation.is_open else result.decided).append(item)
    result.pending.sort(key=lambda i: (-i.risk, i.escalation.expires_at or i.opened_wall, i.key))
    return result


DEFAULT_APPROVAL_WAIT = timedelta(seconds=600)  # `coalition run --interactive --approval-wait` default
WARN_BEFORE = timedelta(minutes=5)  # the inbox warns when an escalation's wall deadline is this close


def approval_wait(ledger: Ledger, run_id: str) -> tuple[timedelta | None, bool]:
    """How long an interactive run waits for humans (None for a non-interactive run), and whether assumed."""
    started = ledger.query(LedgerQuery(run_id=run_id, kind="run", limit=1))
    settings = (started[0].payload.get("settings") or {}) if started else {}
    if not isinstance(settings, dict) or not settings.get("interactive"):
        return None, False
    seconds = settings.get("approval_wait_seconds")
    if isinstance(seconds, int | float) and seconds >= 0:
        return timedelta(seconds=float(seconds)), False
    return DEFAULT_APPROVAL_WAIT, True


REVIEW_LIMIT = 300  # sampled items the approvals inbox lists at once (a rate of 1 over a long run draws thousands)


@dataclass(frozen=True, slots=True)
class ReviewPage:
    """The review queue as the inbox shows it: at most `limit` items, waiting ones first, and the counts of all."""

    items: list[SampledItem]
    waiting: int
    total: int


def review_items(
    ledger: Ledger, trusted: Mapping[str, str], *, run_id: str | None = None, limit: int = REVIEW_LIMIT
) -> ReviewPage:
    """The sampled proposals of the runs with the newest `limit` draws (one run, or every run), waiting ones first,
    each run's in the order they were drawn, cut to `limit`; with their marks checked against `trusted`
    (governance/reviews.py)."""
    draws = ledger.query(LedgerQuery(run_id=run_id, kind="review", newest_first=True, limit=limit))
    items = [
        item for run in dict.fromkeys(d.run_id for d in draws) for item in review_queue(ledger, run, trusted=trusted)
    ]
    ordered = sorted(items, key=lambda i: i.mark is not None)
    return ReviewPage(ordered[:limit], sum(1 for i in items if i.mark is None), len(items))


def find_escalation(ledger: Ledger, run_id: str, proposal_id: str) -> tuple[Escalation | None, Policy | None, str]:
    """The escalation and the run's policy, or None with a one-line reason."""
    try:
        policy = policy_for_run(ledger, run_id)
    except (PolicyError, MalformedEntry) as exc:
        return None, None, str(exc)
    escalation = load_escalation(ledger, run_id=run_id, proposal_id=proposal_id, policy=policy)
    if escalation is None:
        return None, policy, f"no escalation for proposal {proposal_id} in run {run_id}"
    return escalation, policy, ""


# ----- runs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run in the runs list: its span in the ledger, status and the headline KPIs of run.finished."""

    info: RunInfo
    status: str
    kpis: dict[str, Any]
    expectations_passed: int
    expectations_total: int
    world: list[tuple[str, str]] = field(default_factory=list)  # the headline KPIs its pack declares: (label, text)


def run_finished(ledger: Ledger, run_id: str) -> LedgerEntry | None:
    for entry in ledger.query(LedgerQuery(run_id=run_id, kind="run", newest_first=True, limit=5)):
        if entry.message_type == "run.finished":
            return entry
    return None


# A run with no run.finished that no console thread runs (a CLI run, another machine) counts as running while it
# wrote to the ledger this recently; after that it is "incomplete" (interrupted, crashed, or the console restarted).
# An interactive run waiting for humans writes nothing for up to --approval-wait (600 s by default).
QUIET_LIMIT = timedelta(minutes=15)


def unfinished_status(ledger: Ledger, run_id: str, *, now: datetime | None) -> str:
    """ "running" if the run's newest entry is younger than QUIET_LIMIT at `now`, else "incomplete" (also when
    `now` is None: the caller cannot tell)."""
    if now is None:
        return "incomplete"
    newest = ledger.query(LedgerQuery(run_id=run_id, newest_first=True, limit=1))
    return "running" if newest and now - newest[0].wall_time < QUIET_LIMIT else "incomplete"


def run_row(ledger: Ledger, info: RunInfo, *, live: bool = False, now: datetime | None = None) -> RunRow:
    """The runs-list row; `live`: a console thread runs it; `now`: judge other unfinished runs by their last write."""
    finished = run_finished(ledger, info.run_id)
    kpis: dict[str, Any] = {}
    passed = total = 0
    if finished is not None:
        summary = finished.payload.get("summary") or {}
        kpis = dict(summary.get("kpis") or {}) if isinstance(summary, dict) else {}
        expectations = finished.payload.get("expectations") or []
        total = len(expectations)
        passed = sum(1 for e in expectations if isinstance(e, dict) and e.get("passed"))
    if finished is not None:
        status = str(finished.outcome)
    else:
        status = "running" if live else unfinished_status(ledger, info.run_id, now=now)
    world = world_kpis(run_pack(ledger, info.run_id), kpis)[:HEADLINE_KPIS] if kpis else []
    return RunRow(info, status, kpis, passed, total, world)


@dataclass
class Series:
    """Daily values of one run from its pack's daily snapshot (the charts the pack declares), plus decision markers
    by day."""

    days: list[int] = field(default_factory=list)
    charts: list[ChartValues] = field(default_factory=list)
    budgets: dict[str, dict[str, float]] = field(default_factory=dict)
    markers: list[tuple[int, str, str]] = field(default_factory=list)  # (day, outcome, label)


def run_pack(ledger: Ledger, run_id: str) -> str:
    """The pack of the run's scenario, as its run.started entry recorded it."""
    for entry in ledger.query(LedgerQuery(run_id=run_id, kind="run", limit=1)):
        document = (entry.payload.get("settings") or {}).get("scenario_document") or {}
        return str(document.get("pack") or DEFAULT_PACK) if isinstance(document, Mapping) else DEFAULT_PACK
    return DEFAULT_PACK


def _day_of(entry: LedgerEntry, start: datetime | None) -> int:
    return (entry.sim_time - start).days if start is not None else 0


def run_series(ledger: Ledger, run_id: str) -> Series:
    """The charts the run's pack declares, over its daily snapshots (none when the pack is not installed here)."""
    pack = catalog().packs.get(run_pack(ledger, run_id))
    reporting = pack.reporting if pack is not None else None
    series = Series()
    snapshots: list[Mapping[str, Any]] = []
    start: datetime | None = None
    for entry in ledger.query(LedgerQuery(run_id=run_id, kind="observation")):
        payload = entry.payload
        if reporting is None or payload.get("kind") != reporting.snapshot:
            continue
        data = payload.get("data") or {}
        day = int(data.get("day", len(series.days)))
        if start is None:
            start = entry.sim_time
        series.days.append(day)
        snapshots.append(data)
        budgets = data.get("budgets") or {}
        series.budgets = {a: {k: float(v) for k, v in b.items()} for a, b in budgets.items() if isinstance(b, Mapping)}
    series.charts = [chart_values(c, snapshots) for c in (reporting.charts if reporting is not None else ())]
    for verdict in ledger.query(LedgerQuery(run_id=run_id, kind="verdict")):
        if verdict.outcome in ("deny", "escalate"):
            label = f"{verdict.payload.get('agent', '?')}: {verdict.payload.get('action', '?')} → {verdict.outcome}"
            series.markers.append((_day_of(verdict, start), str(verdict.outcome), label))
    return series


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One verdict in the decision timeline: day, action, outcome (the colour) and its ledger entry."""

    day: int
    seq: int
    action: str
    outcome: str
    rationale: str


def decision_timeline(ledger: Ledger, run_id: str) -> dict[str, list[TimelineItem]]:
    """Verdicts of a run grouped by the proposing agent (then resolutions folded in as their own outcome)."""
    started = ledger.query(LedgerQuery(run_id=run_id, limit=1))
    start = started[0].sim_time if started else None
    grouped: dict[str, list[TimelineItem]] = defaultdict(list)
    for entry in ledger.query(LedgerQuery(run_id=run_id, kind="verdict")):
        agent = str(entry.payload.get("agent") or "?")
        grouped[agent].append(
            TimelineItem(
                _day_of(entry, start),
                entry.seq,
                str(entry.payload.get("action") or entry.subject),
                str(entry.outcome),
                entry.rationale,
            )
        )
    return dict(sorted(grouped.items()))
