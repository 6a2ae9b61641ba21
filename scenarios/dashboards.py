"""What executives, risk and ops people must see of a run (seed 002:878-879, 927, 1082, 1293), computed from the
ledger alone: the three-statement model over simulated time, the human-emulation KPIs, the trust dashboard and
the ops cockpit. Every figure carries its definition and the ledger entries it is computed from; a figure the
ledger cannot support says so instead of showing a number."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from coalition.ledger.base import Ledger
from coalition.ledger.entry import LedgerEntry
from coalition.scenarios.incidents import IncidentRecord, incidents
from coalition.scenarios.reports import ReportError

ANOMALY_KINDS = ("supply.shock", "meter.outage", "settlement.mismatch", "suspicious.trades", "customer.complaints")
TEXT_ACTIONS = {"notify_customers": "message", "launch_campaign": "copy"}
PLAIN_ENGLISH = 60.0  # Flesch reading ease at or above which a text reads as plain English
DECISIONS = frozenset({"allow", "deny", "escalate"})  # a verdict entry that decides (not "held" behind a gate)


@dataclass(frozen=True)
class Figure:
    """One number on a dashboard: what it is, how it is computed, and the entries behind it (ledger seqs)."""

    key: str
    label: str
    value: str
    definition: str
    seqs: tuple[int, ...] = ()
    number: float | None = None
    status: str = ""  # ok / warn / alert / n/a, for the page's colours

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "number": self.number,
            "status": self.status,
            "definition": self.definition,
            "entries": list(self.seqs),
        }


@dataclass(frozen=True)
class StatementDay:
    """The three statements on one simulated day, from that day's market snapshot (running totals since day 0)."""

    day: int
    sim_time: str
    seq: int
    revenue_usd: float  # fees earned that day
    costs_usd: float  # opex + agent spend + credits that day
    net_income_usd: float
    cumulative_net_income_usd: float
    cash_usd: float
    reserves_usd: float
    assets_usd: float  # cash + reserves
    liabilities_usd: float  # settlement backlog owed to producers
    equity_usd: float
    operating_cash_flow_usd: float  # net income + increase in the settlement backlog
    other_cash_usd: float  # cash moved outside the P&L (capital commitments, transfers): the reconciling line
    cash_change_usd: float  # change in cash + reserves


@dataclass(frozen=True)
class RegionRisk:
    """Complaint-risk predictors and churn leading indicators of one region, each with its entries."""

    region: str
    figures: dict[str, Figure]


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
    kpis: list[Figure] = field(default_factory=list)
    trust: list[Figure] = field(default_factory=list)
    regions: list[RegionRisk] = field(default_factory=list)
    ops: list[Figure] = field(default_factory=list)
    incidents: list[IncidentRecord] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    numbers: dict[int, int] = field(default_factory=dict)  # ledger seq → the entry's number within the run
    end: datetime | None = None

    def weeks(self) -> list[dict[str, Any]]:
        """The statements by simulated week: flows summed, balances at the week's last day."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(self.statements), 7):
            week = self.statements[start : start + 7]
            last = week[-1]
            out.append(
                {
                    "days": f"{week[0].day}–{last.day}",
                    "from": week[0].sim_time[:10],
                    "seqs": [s.seq for s in week],
                    "revenue": _sum(s.revenue_usd for s in week),
                    "costs": _sum(s.costs_usd for s in week),
                    "net": _sum(s.net_income_usd for s in week),
                    "assets": last.assets_usd,
                    "liabilities": last.liabilities_usd,
                    "equity": last.equity_usd,
                    "operating": _sum(s.operating_cash_flow_usd for s in week),
                    "other": _sum(s.other_cash_usd for s in week),
                    "cash_change": _sum(s.cash_change_usd for s in week),
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "statements": [vars(s) for s in self.statements],
            "kpis": [f.to_json() for f in self.kpis],
            "trust": [f.to_json() for f in self.trust],
            "regions": [{"region": r.region, **{k: f.to_json() for k, f in r.figures.items()}} for r in self.regions],
            "ops": [f.to_json() for f in self.ops],
            "incidents": [
                {**i.to_json(), "age_hours": i.age_hours(self.end) if self.end else None} for i in self.incidents
            ],
            "alerts": [vars(a) for a in self.alerts],
        }


def _sum(values: Iterable[float]) -> float:
    """Money summed exactly (as decimals), back to a float with cents."""
    return _usd(sum((Decimal(str(v)) for v in values), Decimal(0)))


def _d(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        return Decimal(0)


def _usd(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _pct_text(value: float | None) -> str:
    return f"{value:.1f} %" if value is not None else "—"


def _money(value: float) -> str:
    return f"{value:,.0f} USD"


# --- the three statements ------------------------------------------------------------------------------------


def statements(snapshots: Sequence[LedgerEntry]) -> list[StatementDay]:
    """Day by day: P&L (revenue, costs, net income), balance sheet (assets, liabilities, equity) and cash flow
    (indirect: net income + increase in payables = change in cash; the rest is cash moved outside the P&L)."""
    out: list[StatementDay] = []
    prev: dict[str, Decimal] | None = None
    for e in snapshots:
        data = e.payload.get("data") or {}
        now = {
            "revenue": _d(data.get("revenue_usd")),
            "costs": _d(data.get("costs_usd")),
            "cash": _d(data.get("cash_usd")),
            "reserves": _d(data.get("reserves_usd")),
            "backlog": _d((data.get("settlement") or {}).get("backlog_usd")),
        }
        base = prev or {
            "revenue": Decimal(0),
            "costs": Decimal(0),
            **{k: now[k] for k in ("cash", "reserves", "backlog")},
        }
        revenue, costs = now["revenue"] - base["revenue"], now["costs"] - base["costs"]
        net = revenue - costs
        cash_change = (now["cash"] + now["reserves"]) - (base["cash"] + base["reserves"])
        operating = net + (now["backlog"] - base["backlog"])
        assets = now["cash"] + now["reserves"]
        out.append(
            StatementDay(
                day=int(data.get("day", len(out))),
                sim_time=e.sim_time.isoformat(),
                seq=e.seq,
                revenue_usd=_usd(revenue),
                costs_usd=_usd(costs),
                net_income_usd=_usd(net),
                cumulative_net_income_usd=_usd(now["revenue"] - now["costs"]),
                cash_usd=_usd(now["cash"]),
                reserves_usd=_usd(now["reserves"]),
                assets_usd=_usd(assets),
                liabilities_usd=_usd(now["backlog"]),
                equity_usd=_usd(assets - now["backlog"]),
                operating_cash_flow_usd=_usd(operating),
                other_cash_usd=_usd(cash_change - operating),
                cash_change_usd=_usd(cash_change),
            )
        )
        prev = now
    return out


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


class _Run:
    """The run's entries, indexed once."""

    def __init__(self, entries: Sequence[LedgerEntry]) -> None:
        self.entries = list(entries)
        self.proposals: dict[str, LedgerEntry] = {}
        self.verdicts: dict[str, LedgerEntry] = {}
        self.resolutions: dict[str, LedgerEntry] = {}
        self.authorizations: dict[str, LedgerEntry] = {}
        self.executions: dict[str, list[LedgerEntry]] = defaultdict(list)
        self.snapshots: list[LedgerEntry] = []
        self.observations: list[LedgerEntry] = []
        self.finished: LedgerEntry | None = None
        for e in self.entries:
            if e.kind == "proposal":
                self.proposals.setdefault(e.subject, e)
            elif e.kind == "verdict" and e.outcome in DECISIONS:
                self.verdicts[e.subject] = e  # a held proposal's decision comes after its "held" entry
            elif e.kind == "resolution":
                self.resolutions.setdefault(e.subject, e)
            elif e.kind == "authorization":
                self.authorizations.setdefault(e.subject, e)
            elif e.kind == "execution":
                self.executions[e.subject].append(e)
            elif e.kind == "observation":
                if e.payload.get("kind") == "market.snapshot":
                    self.snapshots.append(e)
                else:
                    self.observations.append(e)
            elif e.kind == "run" and e.outcome not in (None, "started"):
                self.finished = e

    def applied(self) -> list[LedgerEntry]:
        return [x for xs in self.executions.values() for x in xs if x.outcome == "applied"]

    def action(self, proposal_id: str) -> str:
        p = self.proposals.get(proposal_id)
        return str(p.payload.get("action")) if p is not None else ""

    def args(self, proposal_id: str) -> dict[str, Any]:
        p = self.proposals.get(proposal_id)
        return dict(p.payload.get("args") or {}) if p is not None else {}


def _kpis(run: _Run, records: list[IncidentRecord]) -> list[Figure]:
    verdicts = list(run.verdicts.values())
    exceptions = [v for v in verdicts if v.outcome in ("deny", "escalate")]
    authorized = list(run.authorizations.values())
    applied = run.applied()
    applied_ids = {x.subject for x in applied}
    done = [a for a in authorized if a.subject in applied_ids]
    resolved = [r for r in records if r.resolved_at is not None and r.opened_at is not None]
    hours = [(r.resolved_at - r.opened_at).total_seconds() / 3600 for r in resolved if r.resolved_at and r.opened_at]
    last = run.snapshots[-1] if run.snapshots else None
    costs = _d((last.payload.get("data") or {}).get("costs_usd")) if last is not None else None
    broken = _audit_failures(run)
    checked = len(run.proposals)
    completion = _pct(len(done), len(authorized))
    exception = _pct(len(exceptions), len(verdicts))
    audit = _pct(checked - len(broken), checked)
    return [
        Figure(
            "completion_rate",
            "Completion rate",
            _pct_text(completion),
            "Authorized actions the executor applied ÷ actions governance authorized.",
            tuple(sorted(a.seq for a in authorized)),
            completion,
            "ok" if completion == 100.0 else "warn" if completion is not None else "n/a",
        ),
        Figure(
            "exception_rate",
            "Exception rate",
            _pct_text(exception),
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
            _money(float(costs) / len(applied)) if costs is not None and applied else "—",
            "Costs to date (opex + agent spend + customer credits, from the last daily snapshot) ÷ actions the "
            "executor applied.",
            tuple(sorted([*(x.seq for x in applied), *([last.seq] if last is not None else [])])),
            round(float(costs) / len(applied), 2) if costs is not None and applied else None,
            "ok" if applied else "n/a",
        ),
        Figure(
            "audit_pass_rate",
            "Audit pass rate",
            _pct_text(audit),
            "Proposals whose decision chain is complete and consistent in the ledger (a verdict; allowed or "
            "approved → one authorization → an execution; denied, rejected or expired → no authorization) ÷ all "
            "proposals. The entries listed are the ones that fail.",
            tuple(sorted(broken)),
            audit,
            "ok" if audit == 100.0 else "alert" if audit is not None else "n/a",
        ),
    ]


def _audit_failures(run: _Run) -> list[int]:
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


def _trust(run: _Run) -> tuple[list[Figure], list[RegionRisk]]:
    texts: list[tuple[int, float]] = []
    for x in run.applied():
        field_name = TEXT_ACTIONS.get(run.action(x.subject))
        if field_name is None:
            continue
        score = reading_ease(str(run.args(x.subject).get(field_name, "")))
        if score is not None:
            texts.append((x.seq, score))
    plain = [s for s in texts if s[1] >= PLAIN_ENGLISH]
    mean = round(sum(s for _, s in texts) / len(texts), 1) if texts else None
    denied_claims = [v for v in run.verdicts.values() if v.outcome == "deny" and any("claims" in r for r in v.rule_ids)]
    figures = [
        Figure(
            "comprehension_score",
            "Comprehension score",
            f"{mean:.0f} / 100 ({len(plain)} of {len(texts)} texts plain English)" if mean is not None else "—",
            "A proxy: the mean Flesch reading ease (0-100, higher is easier; 60+ reads as plain English) of every "
            "customer-facing text the executor sent — notices and campaign copy. No customer survey exists in "
            "the simulation, so understanding itself is not measured.",
            tuple(s for s, _ in texts),
            mean,
            "n/a" if mean is None else "ok" if mean >= PLAIN_ENGLISH else "warn",
        ),
        Figure(
            "claims_pressure",
            "Claims blocked before customers saw them",
            str(len(denied_claims)),
            "Campaigns denied for a banned or unapproved claim (rules limit.claims.*): promises that would have "
            "driven complaints had they gone out.",
            tuple(v.seq for v in denied_claims),
            float(len(denied_claims)),
            "ok" if not denied_claims else "warn",
        ),
    ]
    return figures, _regions(run)


def _regions(run: _Run) -> list[RegionRisk]:
    """Per region: complaint-risk predictors (complaints, disputes, customers hit by outages) and churn leading
    indicators (settlement paused, affected customers not credited, price above base)."""
    complaints: dict[str, list[LedgerEntry]] = defaultdict(list)
    disputes: dict[str, list[LedgerEntry]] = defaultdict(list)
    affected: dict[str, dict[str, int]] = defaultdict(dict)  # region → customer id → seq of the outage
    credited: set[str] = set()
    credit_seqs: dict[str, list[int]] = defaultdict(list)
    for o in run.observations:
        data = o.payload.get("data") or {}
        kind = o.payload.get("kind")
        region = str(data.get("region", ""))
        if kind == "customer.complaints":
            complaints[region].append(o)
        elif kind == "dispute":
            disputes[_region_of(str(data.get("customer_id", "")))].append(o)
        elif kind == "meter.outage":
            for c in data.get("customers") or []:
                if isinstance(c, dict) and "id" in c:
                    affected[region][str(c["id"])] = o.seq
    for x in run.applied():
        if run.action(x.subject) == "issue_credit":
            cid = str(run.args(x.subject).get("customer_id", ""))
            credited.add(cid)
            credit_seqs[_region_of(cid)].append(x.seq)
    paused_days: Counter[str] = Counter()
    paused_seqs: dict[str, list[int]] = defaultdict(list)
    premium: dict[str, tuple[float, int]] = {}
    for s in run.snapshots:
        data = s.payload.get("data") or {}
        for region in (data.get("settlement") or {}).get("paused") or []:
            paused_days[str(region)] += 1
            paused_seqs[str(region)].append(s.seq)
        for region in data.get("active_markets") or []:
            price = (data.get("prices") or {}).get(region) or {}
            base = _d(price.get("base_price"))
            if base:
                premium[str(region)] = (float((_d(price.get("price")) - base) / base * 100), s.seq)
    names = sorted({*complaints, *disputes, *affected, *paused_days, *premium} - {""})
    out = []
    for region in names:
        uncredited = {cid: seq for cid, seq in affected[region].items() if cid not in credited}
        prem, prem_seq = premium.get(region, (None, None))
        out.append(
            RegionRisk(
                region,
                {
                    "complaints": Figure(
                        "complaints",
                        "Complaints reported",
                        str(sum(int((c.payload.get("data") or {}).get("count", 0)) for c in complaints[region])),
                        "Customer complaints the world reported for the region (customer.complaints observations).",
                        tuple(c.seq for c in complaints[region]),
                        status="warn" if complaints[region] else "ok",
                    ),
                    "disputes": Figure(
                        "disputes",
                        "Disputes raised",
                        str(len(disputes[region])),
                        "Billing disputes customers of the region raised (dispute observations).",
                        tuple(d.seq for d in disputes[region]),
                        status="warn" if disputes[region] else "ok",
                    ),
                    "outage_customers": Figure(
                        "outage_customers",
                        "Customers hit by outages",
                        str(len(affected[region])),
                        "Customers behind dark meters in the region's outages (meter.outage observations).",
                        tuple(sorted(set(affected[region].values()))),
                        status="warn" if affected[region] else "ok",
                    ),
                    "uncredited": Figure(
                        "uncredited",
                        "Hit and not credited",
                        str(len(uncredited)),
                        "Churn leading indicator: customers hit by an outage with no credit applied to them.",
                        tuple(sorted(set(uncredited.values()))) or tuple(credit_seqs[region]),
                        status="alert" if uncredited else "ok",
                    ),
                    "settlement_paused_days": Figure(
                        "settlement_paused_days",
                        "Days producers went unpaid",
                        str(paused_days[region]),
                        "Churn leading indicator for producers: daily snapshots with the region's settlement paused.",
                        tuple(paused_seqs[region]),
                        status="warn" if paused_days[region] else "ok",
                    ),
                    "price_premium": Figure(
                        "price_premium",
                        "Price above base at the end",
                        f"{prem:+.1f} %" if prem is not None else "— (not an active market)",
                        "Churn leading indicator for buyers: the region's last price against its base price, from "
                        "the last daily snapshot it was active in.",
                        (prem_seq,) if prem_seq is not None else (),
                        status="warn" if prem is not None and prem > 0 else "ok",
                    ),
                },
            )
        )
    return out


def _region_of(customer_id: str) -> str:
    """Customer ids are <REGION>-<P|B><n> (as the default pack's world names them)."""
    return customer_id.split("-", 1)[0] if "-" in customer_id else ""


def _ops(run: _Run, records: list[IncidentRecord]) -> tuple[list[Figure], list[Alert]]:
    escalated = [v for v in run.verdicts.values() if v.outcome == "escalate"]
    in_time = [v for v in escalated if (r := run.resolutions.get(v.subject)) is not None and r.outcome != "expired"]
    expired = [run.resolutions[v.subject] for v in escalated if v.subject in run.resolutions]
    expired = [r for r in expired if r.outcome == "expired"]
    pending = [v for v in escalated if v.subject not in run.resolutions]
    sla = _pct(len(in_time), len(escalated) - len(pending))
    last = run.snapshots[-1] if run.snapshots else None
    settlement = ((last.payload.get("data") or {}).get("settlement") or {}) if last is not None else {}
    backlog = _d(settlement.get("backlog_usd"))
    reserves = _d((last.payload.get("data") or {}).get("reserves_usd")) if last is not None else Decimal(0)
    coverage = round(float(reserves / backlog * 100), 1) if backlog else None
    mismatches = [o for o in run.observations if o.payload.get("kind") == "settlement.mismatch"]
    gap = sum((_d((o.payload.get("data") or {}).get("gap_usd")) for o in mismatches), Decimal(0))
    paused = list(settlement.get("paused") or [])
    open_incidents = [r for r in records if r.status == "open"]
    figures = [
        Figure(
            "decision_sla",
            "Escalations decided before their deadline",
            f"{_pct_text(sla)} ({len(in_time)} of {len(escalated) - len(pending)}; {len(pending)} still pending)",
            "SLA status: escalations people decided before the gate's policy deadline ÷ escalations resolved; an "
            "expired one (decided by nobody, denied by default) misses it. The policy sets no SLA for incidents, "
            "so incident age is shown below, not judged.",
            tuple(sorted(r.seq for r in expired)) or tuple(sorted(v.seq for v in escalated)),
            sla,
            "n/a" if sla is None else "ok" if sla == 100.0 else "warn",
        ),
        Figure(
            "settlement_backlog",
            "Settlement queue",
            f"{_money(float(backlog))} owed to producers; paused: {', '.join(paused) or 'none'}",
            "Settlement queue health: the backlog of producer payouts not yet due or held by a pause, and the "
            "regions whose settlement is paused, from the last daily snapshot.",
            (last.seq,) if last is not None else (),
            _usd(backlog),
            "warn" if paused else "ok",
        ),
        Figure(
            "reserve_coverage",
            "Reserves cover the queue",
            _pct_text(coverage),
            "Reserves ÷ settlement backlog at the end (the policy's reserve ratio is the target).",
            (last.seq,) if last is not None else (),
            coverage,
            "n/a" if coverage is None else "ok",
        ),
        Figure(
            "settlement_mismatch",
            "Settlement mismatches",
            f"{len(mismatches)} ({_money(float(gap))} gap)",
            "Gaps between money in and money out the world reported (settlement.mismatch observations).",
            tuple(o.seq for o in mismatches),
            _usd(gap),
            "alert" if mismatches else "ok",
        ),
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
        if o.payload.get("kind") in ANOMALY_KINDS
    ]
    alerts += [
        Alert(e.seq, e.sim_time.isoformat(), e.kind, e.subject, e.rationale)
        for e in run.entries
        if e.kind == "dead_letter" or (e.kind == "system" and e.outcome == "flagged")
    ]
    return figures, sorted(alerts, key=lambda a: a.seq)


def build_dashboards(entries: Sequence[LedgerEntry], run_id: str) -> Dashboards:
    """Every dashboard of a run from its entries (in ledger order)."""
    run = _Run(entries)
    records = incidents(run.entries)
    trust, regions = _trust(run)
    ops, alerts = _ops(run, records)
    return Dashboards(
        run_id=run_id,
        statements=statements(run.snapshots),
        kpis=_kpis(run, records),
        trust=trust,
        regions=regions,
        ops=ops,
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
