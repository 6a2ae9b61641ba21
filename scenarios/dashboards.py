"""What executives, risk and ops people must see of a run (seed 002:878-879, 927, 1082, 1293), computed from the
ledger alone: the three-statement model over simulated time, the human-emulation KPIs, the trust dashboard and
the ops cockpit. Every figure carries its definition and the ledger entries it is computed from; a figure the
ledger cannot support says so instead of showing a number."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coalition.domain import Panel, Reporting, Statements
from coalition.ledger.base import Ledger
from coalition.ledger.entry import LedgerEntry
from coalition.scenarios.chart_series import at
from coalition.scenarios.dashboard_figures import Figure, RunEntries, decimal, money, pct, pct_text
from coalition.scenarios.incidents import IncidentRecord, incidents
from coalition.scenarios.reports import ReportError, pack_of
from coalition.scenarios.statements import StatementDay, statements, weeks
from coalition.scenarios.world_kpis import reporting_of

PLAIN_ENGLISH = 60.0  # Flesch reading ease at or above which a text reads as plain English


@dataclass(frozen=True)
class FigureGroup:
    """One group of a breakdown (e.g. one region) and its figures by key."""

    name: str
    figures: dict[str, Figure]


@dataclass(frozen=True)
class Breakdown:
    """Figures in groups a pack declares on one dashboard (coalition.domain.Panel with a title)."""

    board: str
    title: str
    empty: str
    groups: list[FigureGroup]


@dataclass(frozen=True)
class Alert:
    """An anomaly the world reported (an observation ops or finance must react to)."""

    seq: int
    sim_time: str
    kind: str
    subject: str
    summary: str


@dataclass
class Dashboards:
    """Every dashboard of one run."""

    run_id: str
    statements: list[StatementDay] = field(default_factory=list)
    declared_statements: Statements | None = None  # where the statements come from (none: the pack declares none)
    kpis: list[Figure] = field(default_factory=list)
    trust: list[Figure] = field(default_factory=list)
    ops: list[Figure] = field(default_factory=list)
    breakdowns: list[Breakdown] = field(default_factory=list)
    incidents: list[IncidentRecord] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    numbers: dict[int, int] = field(default_factory=dict)  # ledger seq → the entry's number within the run
    end: datetime | None = None

    def weeks(self) -> list[dict[str, Any]]:
        """The statements by simulated week: flows summed, balances at the week's last day."""
        return weeks(self.statements)

    def breakdowns_on(self, board: str) -> list[Breakdown]:
        return [b for b in self.breakdowns if b.board == board]

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "statements": [vars(s) for s in self.statements],
            "kpis": [f.to_json() for f in self.kpis],
            "trust": [f.to_json() for f in self.trust],
            "breakdowns": [
                {
                    "board": b.board,
                    "title": b.title,
                    "groups": [{"name": g.name, **{k: f.to_json() for k, f in g.figures.items()}} for g in b.groups],
                }
                for b in self.breakdowns
            ],
            "ops": [f.to_json() for f in self.ops],
            "incidents": [
                {**i.to_json(), "age_hours": i.age_hours(self.end) if self.end else None} for i in self.incidents
            ],
            "alerts": [vars(a) for a in self.alerts],
        }


# --- readability (the comprehension proxy) --------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?")
_SENTENCE = re.compile(r"[.!?]+(?:\s|$)")
_VOWELS = re.compile(r"[aeiouy]+")


def _syllables(word: str) -> int:
    w = word.lower()
    count = len(_VOWELS.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee")) and count > 1:
        count -= 1
    return max(count, 1)


def reading_ease(text: str) -> float | None:
    """Flesch reading ease (206.835 − 1.015 words/sentence − 84.6 syllables/word); None for a text with no words."""
    words = _WORD.findall(text)
    if not words:
        return None
    sentences = max(len(_SENTENCE.findall(text.strip() + " ")), 1)
    syllables = sum(_syllables(w) for w in words)
    return round(206.835 - 1.015 * len(words) / sentences - 84.6 * syllables / len(words), 1)


# --- building ------------------------------------------------------------------------------------------------


def _kpis(run: RunEntries, records: list[IncidentRecord], declared: Statements | None) -> list[Figure]:
    verdicts = list(run.verdicts.values())
    exceptions = [v for v in verdicts if v.outcome in ("deny", "escalate")]
    authorized = list(run.authorizations.values())
    applied = run.applied()
    applied_ids = {x.subject for x in applied}
    done = [a for a in authorized if a.subject in applied_ids]
    resolved = [r for r in records if r.resolved_at is not None and r.opened_at is not None]
    hours = [(r.resolved_at - r.opened_at).total_seconds() / 3600 for r in resolved if r.resolved_at and r.opened_at]
    last, data = run.last_snapshot()
    costs = decimal(at(data, declared.costs)) if last is not None and declared is not None else None
    broken = _audit_failures(run)
    checked = len(run.proposals)
    completion = pct(len(done), len(authorized))
    exception = pct(len(exceptions), len(verdicts))
    audit = pct(checked - len(broken), checked)
    return [
        Figure(
            "completion_rate",
            "Completion rate",
            pct_text(completion),
            "Authorized actions the executor applied ÷ actions governance authorized.",
            tuple(sorted(a.seq for a in authorized)),
            completion,
            "ok" if completion == 100.0 else "warn" if completion is not None else "n/a",
        ),
        Figure(
            "exception_rate",
            "Exception rate",
            pct_text(exception),
            "Proposals governance did not allow outright (denied or escalated to people) ÷ proposals decided (a "
            "proposal held behind a pending gate counts once, by the verdict it finally got).",
            tuple(sorted(v.seq for v in exceptions)),
            exception,
            "n/a" if exception is None else "ok",
        ),
        Figure(
            "time_to_resolution",
            "Time to resolution (incidents)",
            f"{sum(hours) / len(hours):.1f} h (simulated)" if hours else "— (no incident was resolved in this run)",
            "Mean simulated hours from the execution that opened an incident to the one that resolved it.",
            tuple(sorted(s for r in resolved for s in r.seqs)),
            round(sum(hours) / len(hours), 1) if hours else None,
            "ok" if hours else "n/a",
        ),
        Figure(
            "cost_per_outcome",
            "Cost per outcome",
            money(float(costs) / len(applied)) if costs is not None and applied else "—",
            f"Costs to date ({declared.costs_are}, from the last daily snapshot) ÷ actions the executor applied."
            if declared is not None
            else "Costs to date ÷ actions the executor applied: the pack declares no costs.",
            tuple(sorted([*(x.seq for x in applied), *([last.seq] if last is not None else [])])),
            round(float(costs) / len(applied), 2) if costs is not None and applied else None,
            "ok" if applied else "n/a",
        ),
        Figure(
            "audit_pass_rate",
            "Audit pass rate",
            pct_text(audit),
            "Proposals whose decision chain is complete and consistent in the ledger (a verdict; allowed or "
            "approved → one authorization → an execution; denied, rejected or expired → no authorization) ÷ all "
            "proposals. The entries listed are the ones that fail.",
            tuple(sorted(broken)),
            audit,
            "ok" if audit == 100.0 else "alert" if audit is not None else "n/a",
        ),
    ]


def _audit_failures(run: RunEntries) -> list[int]:
    """Seqs of proposals whose chain is incomplete or inconsistent (pending escalations at the end are fine)."""
    bad: list[int] = []
    for pid, proposal in run.proposals.items():
        verdict = run.verdicts.get(pid)
        authorized = pid in run.authorizations
        executed = bool(run.executions.get(pid))
        if verdict is None:
            bad.append(proposal.seq)
            continue
        resolution = run.resolutions.get(pid)
        should = verdict.outcome == "allow" or (resolution is not None and resolution.outcome == "approved")
        pending = verdict.outcome == "escalate" and resolution is None
        ok = not authorized if pending else (authorized == should and executed == should)
        if not ok:
            bad.append(proposal.seq)
    for pid, executions in run.executions.items():
        if pid not in run.authorizations:
            bad.extend(x.seq for x in executions)
    return bad


def _comprehension(run: RunEntries, reporting: Reporting) -> Figure:
    """The comprehension proxy over the texts the pack declares customers read."""
    fields = reporting.texts.fields if reporting.texts is not None else {}
    texts: list[tuple[int, float]] = []
    for x in run.applied():
        field_name = fields.get(run.action(x.subject))
        if field_name is None:
            continue
        score = reading_ease(str(run.args(x.subject).get(field_name, "")))
        if score is not None:
            texts.append((x.seq, score))
    plain = [s for s in texts if s[1] >= PLAIN_ENGLISH]
    mean = round(sum(s for _, s in texts) / len(texts), 1) if texts else None
    which = f" — {reporting.texts.are}" if reporting.texts is not None else " (the pack declares none)"
    return Figure(
        "comprehension_score",
        "Comprehension score",
        f"{mean:.0f} / 100 ({len(plain)} of {len(texts)} texts plain English)" if mean is not None else "—",
        "A proxy: the mean Flesch reading ease (0-100, higher is easier; 60+ reads as plain English) of every "
        f"customer-facing text the executor sent{which}. No customer survey exists in the simulation, so "
        "understanding itself is not measured.",
        tuple(s for s, _ in texts),
        mean,
        "n/a" if mean is None else "ok" if mean >= PLAIN_ENGLISH else "warn",
    )


def _ops(
    run: RunEntries, records: list[IncidentRecord], anomalies: Sequence[str], declared: Sequence[Figure]
) -> tuple[list[Figure], list[Alert]]:
    """The decision SLA, the pack's own ops figures, open incidents; the anomalies the pack declares and the run's
    dead letters and flags as alerts."""
    escalated = [v for v in run.verdicts.values() if v.outcome == "escalate"]
    in_time = [v for v in escalated if (r := run.resolutions.get(v.subject)) is not None and r.outcome != "expired"]
    expired = [run.resolutions[v.subject] for v in escalated if v.subject in run.resolutions]
    expired = [r for r in expired if r.outcome == "expired"]
    pending = [v for v in escalated if v.subject not in run.resolutions]
    sla = pct(len(in_time), len(escalated) - len(pending))
    open_incidents = [r for r in records if r.status == "open"]
    figures = [
        Figure(
            "decision_sla",
            "Escalations decided before their deadline",
            f"{pct_text(sla)} ({len(in_time)} of {len(escalated) - len(pending)}; {len(pending)} still pending)",
            "SLA status: escalations people decided before the gate's policy deadline ÷ escalations resolved; an "
            "expired one (decided by nobody, denied by default) misses it. The policy sets no SLA for incidents, "
            "so incident age is shown below, not judged.",
            tuple(sorted(r.seq for r in expired)) or tuple(sorted(v.seq for v in escalated)),
            sla,
            "n/a" if sla is None else "ok" if sla == 100.0 else "warn",
        ),
        *declared,
        Figure(
            "open_incidents",
            "Open incidents",
            str(len(open_incidents)),
            "Incidents opened by the executor and not resolved at the end of the run.",
            tuple(sorted(s for r in open_incidents for s in r.seqs[:1])),
            float(len(open_incidents)),
            "alert" if open_incidents else "ok",
        ),
    ]
    alerts = [
        Alert(
            seq=o.seq,
            sim_time=o.sim_time.isoformat(),
            kind=str(o.payload.get("kind")),
            subject=o.subject,
            summary=o.rationale,
        )
        for o in run.observations
        if o.payload.get("kind") in anomalies
    ]
    alerts += [
        Alert(e.seq, e.sim_time.isoformat(), e.kind, e.subject, e.rationale)
        for e in run.entries
        if e.kind == "dead_letter" or (e.kind == "system" and e.outcome == "flagged")
    ]
    return figures, sorted(alerts, key=lambda a: a.seq)


def _panel_figures(panel: Panel, run: RunEntries) -> Sequence[Any]:
    """What one panel computes; a panel that fails (cannot be imported, raises) shows as one alert, the rest of
    the dashboards stand."""
    try:
        return panel.compute(run)
    except Exception as exc:
        name = panel.figures if isinstance(panel.figures, str) else getattr(panel.figures, "__name__", "panel")
        failed = Figure(
            "panel_failed",
            f"A panel of the pack failed ({name})",
            "—",
            f"{type(exc).__name__}: {exc}",
            status="alert",
        )
        return [(panel.title, {"panel_failed": failed})] if panel.title else [failed]


def _panels(run: RunEntries, reporting: Reporting) -> tuple[dict[str, list[Figure]], list[Breakdown]]:
    """The figures the pack declares, by board, and its breakdowns (a Panel with a title: figures in groups)."""
    figures: dict[str, list[Figure]] = {"overview": [], "trust": [], "ops": []}
    breakdowns: list[Breakdown] = []
    for panel in reporting.panels:
        found = _panel_figures(panel, run)
        if panel.title:
            groups = [FigureGroup(str(name), dict(by_key)) for name, by_key in found]
            breakdowns.append(Breakdown(panel.board, panel.title, panel.empty, groups))
        else:
            figures[panel.board].extend(found)
    return figures, breakdowns


def build_dashboards(entries: Sequence[LedgerEntry], run_id: str, reporting: Reporting | None = None) -> Dashboards:
    """Every dashboard of a run from its entries (in ledger order), as `reporting` declares them (default: what
    the run's pack declares, the pack its run.started entry recorded)."""
    if reporting is None:
        started = next((e.payload for e in entries if e.kind == "run" and e.outcome == "started"), {})
        reporting = reporting_of(pack_of(started))
    run = RunEntries(entries, reporting.snapshot)
    records = incidents(run.entries)
    declared, breakdowns = _panels(run, reporting)
    ops, alerts = _ops(run, records, reporting.alerts, declared["ops"])
    return Dashboards(
        run_id=run_id,
        statements=statements(run.snapshots, reporting.statements),
        declared_statements=reporting.statements,
        kpis=[*_kpis(run, records, reporting.statements), *declared["overview"]],
        trust=[_comprehension(run, reporting), *declared["trust"]],
        ops=ops,
        breakdowns=breakdowns,
        incidents=records,
        alerts=alerts,
        numbers={e.seq: n for n, e in enumerate(run.entries, 1)},
        end=run.entries[-1].sim_time if run.entries else None,
    )


def run_dashboards(ledger: Ledger, run_id: str) -> Dashboards:
    """The dashboards of `run_id`; ReportError when the ledger has no such run."""
    entries = list(ledger.iter_entries(run_id=run_id))
    if not entries:
        raise ReportError(f"no run {run_id!r} in the ledger")
    return build_dashboards(entries, run_id)
