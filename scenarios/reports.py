"""The report read model: everything a run report shows, read from the ledger alone (reusable by the CLI and the
web console): KPIs, daily series from `market.snapshot`, decisions, escalations, budgets, expectations."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.digest import run_digest
from coalition.scenarios.errors import ScenariosError


class ReportError(ScenariosError):
    """No such run, or nothing to report on."""


@dataclass(frozen=True, slots=True)
class DayPoint:
    """One simulated day as the daily market snapshot saw it."""

    day: int
    sim_time: str
    cash_usd: float
    reserves_usd: float
    backlog_usd: float
    prices: dict[str, float]
    base_prices: dict[str, float]
    floor: float | None
    ceiling: float | None
    surge_cap_pct: float | None
    open_incidents: int
    paused: list[str]


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """A governance verdict on one proposal."""

    seq: int
    sim_time: str
    day: int
    agent: str
    action: str
    outcome: str
    gate: str | None
    rule_ids: list[str]
    proposal_id: str
    args: dict[str, Any]
    rationale: str


@dataclass(frozen=True, slots=True)
class EscalationRow:
    """An escalation: what was asked, how it ended, who decided and how long it took (simulated hours)."""

    proposal_id: str
    agent: str
    action: str
    gate: str | None
    args: dict[str, Any]
    opened: str
    outcome: str  # approved / rejected / expired / pending
    decided_by: list[str]
    reasons: list[str]
    hours_to_decision: float | None


@dataclass(frozen=True)
class RunReport:
    """A run's report, as data (JSON-ready via `to_json`)."""

    run_id: str
    scenario: str
    description: str
    seed: int | None
    policy_version: str | None
    start: str | None
    days: int | None
    status: str
    digest: str
    entries: int
    kpis: dict[str, Any]
    series: list[DayPoint]
    decisions: list[DecisionRow]
    escalations: list[EscalationRow]
    budgets: dict[str, dict[str, float]]
    expectations: list[dict[str, Any]]
    executions: dict[str, int] = field(default_factory=dict)

    @property
    def decisions_by_agent(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for d in self.decisions:
            out.setdefault(d.agent, Counter())[d.outcome] += 1
        return {agent: dict(sorted(c.items())) for agent, c in sorted(out.items())}

    @property
    def blocked(self) -> list[DecisionRow]:
        """Denied proposals: the violations governance stopped."""
        return [d for d in self.decisions if d.outcome == "deny"]

    @property
    def expectations_passed(self) -> tuple[int, int]:
        return sum(1 for e in self.expectations if e.get("passed")), len(self.expectations)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["decisions_by_agent"] = self.decisions_by_agent
        doc["blocked"] = len(self.blocked)
        passed, total = self.expectations_passed
        doc["expectations_summary"] = {"passed": passed, "total": total}
        return doc


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _day(sim_time: datetime, start: datetime | None) -> int:
    return (sim_time - start).days if start is not None else 0


def run_report(ledger: Ledger, run_id: str) -> RunReport:
    """Build the report of `run_id` from the ledger; ReportError when the run is not there."""
    if ledger.count(LedgerQuery(run_id=run_id, limit=1)) == 0:
        raise ReportError(f"no run {run_id!r} in the ledger")
    started: dict[str, Any] = {}
    finished: dict[str, Any] = {}
    start: datetime | None = None
    series: list[DayPoint] = []
    proposals: dict[str, dict[str, Any]] = {}
    decisions: list[DecisionRow] = []
    escalations: dict[str, dict[str, Any]] = {}
    executions: Counter[str] = Counter()
    budgets: dict[str, dict[str, float]] = {}
    entries = 0
    for e in ledger.iter_entries(run_id=run_id):
        entries += 1
        if e.kind == "run" and e.outcome == "started":
            started, start = e.payload, e.sim_time
        elif e.kind == "run":
            finished = e.payload
        elif e.kind == "observation" and e.payload.get("kind") == "market.snapshot":
            data = e.payload.get("data", {})
            band = data.get("pricing_policy") or {}
            settlement = data.get("settlement") or {}
            prices = data.get("prices") or {}
            budgets = {a: {k: _f(v) for k, v in b.items()} for a, b in (data.get("budgets") or {}).items()}
            series.append(
                DayPoint(
                    day=int(data.get("day", _day(e.sim_time, start))),
                    sim_time=e.sim_time.isoformat(),
                    cash_usd=_f(data.get("cash_usd")),
                    reserves_usd=_f(data.get("reserves_usd")),
                    backlog_usd=_f(settlement.get("backlog_usd")),
                    prices={r: _f(p.get("price")) for r, p in prices.items()},
                    base_prices={r: _f(p.get("base_price")) for r, p in prices.items()},
                    floor=_f(band["floor"]) if "floor" in band else None,
                    ceiling=_f(band["ceiling"]) if "ceiling" in band else None,
                    surge_cap_pct=_f(band["surge_cap_pct"]) if "surge_cap_pct" in band else None,
                    open_incidents=len(data.get("open_incidents") or []),
                    paused=list(settlement.get("paused") or []),
                )
            )
        elif e.kind == "proposal":
            proposals[e.subject] = e.payload
        elif e.kind == "verdict":
            p = proposals.get(e.subject, {})
            row = DecisionRow(
                seq=e.seq,
                sim_time=e.sim_time.isoformat(),
                day=_day(e.sim_time, start),
                agent=str(e.payload.get("agent") or p.get("agent")),
                action=str(e.payload.get("action") or p.get("action")),
                outcome=str(e.outcome),
                gate=e.gate,
                rule_ids=list(e.rule_ids),
                proposal_id=e.subject,
                args=dict(p.get("args", {})),
                rationale=e.rationale,
            )
            decisions.append(row)
            if e.outcome == "escalate":
                escalations[e.subject] = {"row": row, "opened": e.sim_time, "by": [], "reasons": []}
        elif e.kind in ("approval", "rejection") and e.subject in escalations:
            escalations[e.subject]["by"].append(f"{e.approver} ({e.payload.get('role', '')})")
            escalations[e.subject]["reasons"].append(e.rationale)
        elif e.kind == "resolution" and e.subject in escalations:
            escalations[e.subject]["outcome"] = str(e.outcome)
            escalations[e.subject]["closed"] = e.sim_time
        elif e.kind == "execution":
            executions[str(e.outcome)] += 1
    rows = []
    for pid, esc in escalations.items():
        row = esc["row"]
        closed = esc.get("closed")
        rows.append(
            EscalationRow(
                proposal_id=pid,
                agent=row.agent,
                action=row.action,
                gate=row.gate,
                args=row.args,
                opened=esc["opened"].isoformat(),
                outcome=str(esc.get("outcome", "pending")),
                decided_by=list(esc["by"]),
                reasons=list(esc["reasons"]),
                hours_to_decision=round((closed - esc["opened"]).total_seconds() / 3600, 1) if closed else None,
            )
        )
    scenario_doc = (started.get("settings") or {}).get("scenario_document") or {}
    return RunReport(
        run_id=run_id,
        scenario=str(started.get("scenario", "")),
        description=str(scenario_doc.get("description", "")),
        seed=started.get("seed"),
        policy_version=started.get("policy_version"),
        start=start.date().isoformat() if start is not None else None,
        days=started.get("days"),
        status=str(finished.get("status", "incomplete")),
        digest=run_digest(ledger, run_id),
        entries=entries,
        kpis=dict((finished.get("summary") or {}).get("kpis", {})),
        series=series,
        decisions=decisions,
        escalations=rows,
        budgets=budgets,
        expectations=list(finished.get("expectations") or []),
        executions=dict(sorted(executions.items())),
    )
