"""The report read model: everything a run report shows, read from the ledger alone (reusable by the CLI and the
web console): KPIs, the world's daily snapshots (the kind its pack's reporting names), decisions, escalations,
budget use, expectations."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from coalition.domain import DEFAULT_PACK
from coalition.governance.approvals import run_started
from coalition.governance.decision_signatures import RunIdentities, decision_entry_problem, recorded_identities
from coalition.governance.errors import PolicyError
from coalition.governance.policy import Policy, parse_policy
from coalition.governance.reviews import review_queue
from coalition.governance.state import GovernanceState
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.digest import run_digest
from coalition.ledger.entry import LedgerEntry
from coalition.scenarios.errors import ScenariosError
from coalition.scenarios.lane_report import OUTCOMES, LaneSummary, lane_summary
from coalition.scenarios.review_report import ReviewSummary, review_summary
from coalition.scenarios.world_kpis import reporting_of


class ReportError(ScenariosError):
    """No such run, or nothing to report on."""


@dataclass(frozen=True, slots=True)
class DayPoint:
    """One simulated day as the world's daily snapshot (the one its pack's reporting names) recorded it."""

    day: int
    sim_time: str
    data: dict[str, Any]


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
class BudgetUse:
    """One agent's money budget in one budget period, counted as governance counts it (from the ledger)."""

    period: str  # "2025-03" (month), "2025-W10" (week), "2025-03-04" (day) or "run"
    agent: str
    limit_usd: float  # the policy's money budget for the period
    increase_usd: float  # approved budget_overrun increases in the period
    budget_usd: float  # limit + increases: what governance measured spend against
    spent_usd: float  # charged amounts authorized in the period and applied by the executor
    reserved_usd: float  # authorized in the period, not (yet) executed


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
    hours_to_decision: float | None  # simulated hours (0 when the clock was paused for a human)
    wall_seconds_to_decision: float | None = None  # wall-clock seconds from the verdict to the resolution


@dataclass(frozen=True, slots=True)
class ShadowRow:
    """A proposal the shadow policy would have decided otherwise."""

    day: int
    agent: str
    action: str
    proposal_id: str
    outcome: str
    gate: str | None
    rule_ids: list[str]
    shadow_outcome: str
    shadow_gate: str | None
    shadow_rule_ids: list[str]
    shadow_reason: str


@dataclass(frozen=True)
class ShadowComparison:
    """Where a run's shadow policy (run --shadow-policy) would have decided otherwise: a different outcome, gate,
    or (for a deny or an escalation) different rules; counted per rule and per action, and listed."""

    policy_version: str
    evaluated: int
    rows: list[ShadowRow]
    by_rule: dict[str, int]
    by_action: dict[str, int]

    @classmethod
    def of(cls, pairs: list[tuple[DecisionRow, dict[str, Any]]]) -> ShadowComparison:
        rows: list[ShadowRow] = []
        by_rule: Counter[str] = Counter()
        by_action: Counter[str] = Counter()
        for d, shadow in pairs:
            outcome, gate = str(shadow.get("outcome")), shadow.get("gate")
            rule_ids = [str(r) for r in shadow.get("rule_ids") or []]
            decided = outcome != "allow" or d.outcome != "allow"
            if (outcome, gate) == (d.outcome, d.gate) and (not decided or rule_ids == d.rule_ids):
                continue
            reasons = shadow.get("reasons") or [""]
            rows.append(
                ShadowRow(
                    d.day,
                    d.agent,
                    d.action,
                    d.proposal_id,
                    d.outcome,
                    d.gate,
                    d.rule_ids,
                    outcome,
                    gate if isinstance(gate, str) else None,
                    rule_ids,
                    str(reasons[0]),
                )
            )
            by_action[d.action] += 1
            mine = rule_ids if outcome != "allow" else []
            theirs = d.rule_ids if d.outcome != "allow" else []
            for rule in dict.fromkeys(mine + theirs):
                by_rule[rule] += 1
        version = str(pairs[0][1].get("policy_version", "")) if pairs else ""
        return cls(version, len(pairs), rows, dict(sorted(by_rule.items())), dict(sorted(by_action.items())))


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
    budgets: list[BudgetUse]
    expectations: list[dict[str, Any]]
    executions: dict[str, int] = field(default_factory=dict)
    budget_period: str | None = None  # the policy's budget period (run / day / week / month)
    interactive: bool = False  # humans decided at the keyboard: time to decision is wall time
    # Filled by callers that re-check failed expectations against the scripted board (scenarios.board_divergence).
    scripted_board: dict[str, Any] | None = None
    shadow: ShadowComparison | None = None  # the run's shadow policy's verdicts compared (run --shadow-policy)
    lanes: LaneSummary | None = None  # who chose, where the policy put agents in a model lane
    reviews: ReviewSummary | None = None  # the sampled approval tier: sampled, reviewed, wrong per agent
    pack: str = DEFAULT_PACK  # the pack of the run's scenario (its KPIs' labels and formats)

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
        if self.reviews is not None:
            doc["reviews"]["rows"] = [{**asdict(r), "error_rate": r.error_rate} for r in self.reviews.rows]
        if self.lanes is not None:
            doc["lanes"]["rows"] = [
                {
                    **asdict(r),
                    "rates": {o: r.rate(o) for o in OUTCOMES},
                    "sampled_error_rate": r.sampled_error_rate,
                }
                for r in self.lanes.rows
            ]
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


def _usd(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


# The entries governance folds its budget counts from: proposals and verdicts open escalations, resolutions carry
# approved budget increases, authorizations reserve the charged argument, executions turn reservations into spend.
_BUDGET_KINDS = frozenset({"run", "proposal", "verdict", "resolution", "authorization", "execution"})


class _BudgetBook:
    """Budget use per agent and period, folded from the ledger with governance's own state (same periods, same
    charged arguments, same increases), against the policy the run recorded in run.started."""

    def __init__(self) -> None:
        self.policy: Policy | None = None
        self.state = GovernanceState()
        self.periods: set[str] = set()
        self.snapshot_limits: dict[str, Decimal] = {}

    def start(self, entry: LedgerEntry) -> None:
        document = (entry.payload.get("settings") or {}).get("policy_document")
        if isinstance(document, dict):
            try:
                self.policy = parse_policy(document, source=f"run {entry.run_id}")
            except PolicyError:
                self.policy = None  # an unreadable recorded policy: fall back to the snapshots' limits
        self.state = GovernanceState.initial(self.policy, run_id=entry.run_id) if self.policy else GovernanceState()
        self.apply(entry)

    def apply(self, entry: LedgerEntry) -> None:
        self.state = self.state.apply_entry(entry)

    def saw_day(self, sim_time: datetime, budgets: dict[str, Any]) -> None:
        """A simulated day of the run: its period is reported even if nothing was spent in it."""
        self.periods.add(self.state.period_key(sim_time))
        for agent, budget in budgets.items():
            limit = budget.get("budget_usd") if isinstance(budget, dict) else None
            if limit is not None:
                self.snapshot_limits[str(agent)] = Decimal(str(_f(limit)))

    def rows(self) -> list[BudgetUse]:
        if self.policy is not None:
            limits = {agent: b.money_usd for agent, b in self.policy.budgets.agents.items()}
        else:
            limits = dict(self.snapshot_limits)
        s = self.state
        keys = set(s.spent) | set(s.reserved) | set(s.increases)
        periods = self.periods | {period for _, period in keys}
        agents = set(limits) | {agent for agent, _ in keys}
        zero = Decimal(0)
        rows = []
        for period in sorted(periods):
            for agent in sorted(agents):
                limit = limits.get(agent, zero)
                increase = s.increases.get((agent, period), zero)
                rows.append(
                    BudgetUse(
                        period=period,
                        agent=agent,
                        limit_usd=_usd(limit),
                        increase_usd=_usd(increase),
                        budget_usd=_usd(limit + increase),
                        spent_usd=_usd(s.spent.get((agent, period), zero)),
                        reserved_usd=_usd(s.reserved.get((agent, period), zero)),
                    )
                )
        return rows


def run_report(ledger: Ledger, run_id: str, *, reviewers: Mapping[str, str] | None = None) -> RunReport:
    """Build the report of `run_id` from the ledger; ReportError when the run is not there. Review marks are
    checked against the keys the run binds (governance/reviews.py); `reviewers`, the installation's approver keys
    (name → public key), check only marks from before marks recorded their key. A mark no key verifies is not
    counted."""
    if ledger.count(LedgerQuery(run_id=run_id, limit=1)) == 0:
        raise ReportError(f"no run {run_id!r} in the ledger")
    run_started(ledger, run_id)  # a recorded run.started that no longer validates: MalformedEntry, as every reader's
    started: dict[str, Any] = {}
    finished: dict[str, Any] = {}
    start: datetime | None = None
    series: list[DayPoint] = []
    proposals: dict[str, dict[str, Any]] = {}
    decisions: list[DecisionRow] = []
    shadowed: list[tuple[DecisionRow, dict[str, Any]]] = []
    escalations: dict[str, dict[str, Any]] = {}
    executions: Counter[str] = Counter()
    book = _BudgetBook()
    entries = 0
    snapshot = ""
    identities: RunIdentities | None = None  # who may sign decisions in the run: read at its first decision
    for e in ledger.iter_entries(run_id=run_id):
        entries += 1
        if e.kind == "run" and e.outcome == "started":
            started, start = e.payload, e.sim_time
            snapshot = reporting_of(pack_of(started)).snapshot
            book.start(e)
            continue
        if e.kind in _BUDGET_KINDS:
            book.apply(e)
        if e.kind == "run":
            finished = e.payload
        elif e.kind == "observation" and snapshot and e.payload.get("kind") == snapshot:
            data = e.payload.get("data") or {}
            book.saw_day(e.sim_time, data.get("budgets") or {})
            series.append(DayPoint(int(data.get("day", _day(e.sim_time, start))), e.sim_time.isoformat(), dict(data)))
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
            shadow = e.payload.get("shadow")
            if isinstance(shadow, dict):
                shadowed.append((row, shadow))
            if e.outcome == "escalate":
                escalations[e.subject] = {
                    "row": row,
                    "opened": e.sim_time,
                    "opened_wall": e.wall_time,
                    "by": [],
                    "reasons": [],
                }
        elif e.kind in ("approval", "rejection") and e.subject in escalations:
            identities = identities or recorded_identities(ledger, run_id)
            if decision_entry_problem(e, identities) is not None:
                continue  # not its approver's signed decision: governance never took it (ledger verify names it)
            escalations[e.subject]["by"].append(f"{e.approver} ({e.payload.get('role', '')})")
            escalations[e.subject]["reasons"].append(e.rationale)
        elif e.kind == "resolution" and e.subject in escalations:
            escalations[e.subject]["outcome"] = str(e.outcome)
            escalations[e.subject]["closed"] = e.sim_time
            escalations[e.subject]["closed_wall"] = e.wall_time
        elif e.kind == "execution":
            executions[str(e.outcome)] += 1
    rows = []
    for pid, esc in escalations.items():
        row = esc["row"]
        closed = esc.get("closed")
        closed_wall = esc.get("closed_wall")
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
                wall_seconds_to_decision=(
                    round((closed_wall - esc["opened_wall"]).total_seconds(), 1) if closed_wall else None
                ),
            )
        )
    scenario_doc = (started.get("settings") or {}).get("scenario_document") or {}
    sampled = review_queue(ledger, run_id, trusted=reviewers)
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
        budgets=book.rows(),
        expectations=list(finished.get("expectations") or []),
        executions=dict(sorted(executions.items())),
        budget_period=book.state.budget_period if book.policy is not None else None,
        interactive=bool((started.get("settings") or {}).get("interactive")),
        shadow=ShadowComparison.of(shadowed) if shadowed else None,
        lanes=lane_summary(
            proposals, {d.proposal_id: d.outcome for d in decisions}, {i.proposal_id: i.mark for i in sampled}
        ),
        reviews=review_summary(sampled),
        pack=pack_of(started),
    )


def pack_of(started: Mapping[str, Any]) -> str:
    """The pack of the run's scenario, as its run.started entry recorded it."""
    document = (started.get("settings") or {}).get("scenario_document") or {}
    return str(document.get("pack") or DEFAULT_PACK) if isinstance(document, Mapping) else DEFAULT_PACK
