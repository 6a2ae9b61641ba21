"""What-if: re-run a recorded run's scenario, seed and human decisions under another policy, and list the
decisions that change (allowed / denied / escalated) with the rules responsible, and the KPI deltas.

The what-if is narrated by the offline model whatever the recorded run used: models only word what the engines
decided, so no key or network is needed, and decisions are compared without their free-text arguments (a model's
words are never a "changed decision")."""

from __future__ import annotations

from collections import defaultdict
from contextlib import ExitStack, closing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from coalition.bus.canonical import canonical_json
from coalition.bus.memory import MemoryBus
from coalition.domain.arguments import cents
from coalition.governance.policy import Policy
from coalition.ledger.base import Ledger
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.board import Board
from coalition.scenarios.consistency import decision_args, offline_options
from coalition.scenarios.replay import RecordedAnswers, RecordedBoard, recorded_run

MONEY_KPIS = ("revenue_usd", "margin_pct", "cash_usd", "reserves_usd")  # rounded half-even to cents
COUNT_KPIS = ("incidents", "escalations")


def kpi_json(key: str, value: Decimal) -> float | int:
    """A KPI at the JSON edge: money a number with at most two decimals, counts an integer."""
    return float(cents(value)) if is_money(key) else int(value)


def is_money(key: str) -> bool:
    """A KPI in money (or a percentage): the market's named ones, and any world's `…_usd`."""
    return key in MONEY_KPIS or key.endswith("_usd")


@dataclass(frozen=True, slots=True)
class Decision:
    """One proposal and what governance (and then humans) made of it."""

    proposal_id: str
    agent: str
    action: str
    args: dict[str, Any]
    outcome: str  # allow / deny / escalate
    rule_ids: tuple[str, ...]
    gate: str | None
    resolution: str | None  # approved / rejected / expired (escalations)

    def to_json(self) -> dict[str, Any]:
        return {
            "proposal_id": self.proposal_id,
            "outcome": self.outcome,
            "resolution": self.resolution,
            "rule_ids": list(self.rule_ids),
            "gate": self.gate,
        }


@dataclass(frozen=True, slots=True)
class DecisionChange:
    """A proposal whose decision differs between the recorded run and the what-if (None = not proposed there)."""

    agent: str
    action: str
    args: dict[str, Any]
    before: Decision | None
    after: Decision | None

    @property
    def changed_args(self) -> dict[str, tuple[Any, Any]]:
        """Arguments (wording aside) whose value differs: name → (recorded, what-if); a side that was not
        proposed gives None."""
        before = decision_args(self.before.args) if self.before else {}
        after = decision_args(self.after.args) if self.after else {}
        if self.before is None or self.after is None:
            return {}
        return {
            k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)
        }

    @property
    def what_changed(self) -> str:
        """In words: the outcome, the amounts and arguments, or both."""
        if self.before is None:
            return "proposed only under the new policy"
        if self.after is None:
            return "no longer proposed"
        parts = []
        if (self.before.outcome, self.before.resolution) != (self.after.outcome, self.after.resolution):
            parts.append("outcome")
        if self.changed_args:
            parts.append("arguments: " + ", ".join(f"{k} {b} → {a}" for k, (b, a) in self.changed_args.items()))
        return "; ".join(parts) or "unchanged"

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "action": self.action,
            "args": self.args,
            "args_after": self.after.args if self.after else None,
            "changed_args": {k: {"recorded": b, "whatif": a} for k, (b, a) in self.changed_args.items()},
            "what_changed": self.what_changed,
            "before": self.before.to_json() if self.before else None,
            "after": self.after.to_json() if self.after else None,
        }


@dataclass(frozen=True)
class WhatIfResult:
    run_id: str
    policy_before: str
    policy_after: str
    changes: list[DecisionChange]
    kpis_before: dict[str, Decimal]
    kpis_after: dict[str, Decimal]
    answered_by: dict[str, str]

    @property
    def kpi_deltas(self) -> dict[str, Decimal]:
        """after − before, in Decimal (money rounded half-even to cents)."""
        deltas = {k: self.kpis_after[k] - self.kpis_before[k] for k in self.kpis_before}
        return {k: cents(v) if is_money(k) else v for k, v in deltas.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "policy_before": self.policy_before,
            "policy_after": self.policy_after,
            "narrated_by": "offline",
            "changes": [c.to_json() for c in self.changes],
            "kpis_before": {k: kpi_json(k, v) for k, v in self.kpis_before.items()},
            "kpis_after": {k: kpi_json(k, v) for k, v in self.kpis_after.items()},
            "kpi_deltas": {k: kpi_json(k, v) for k, v in self.kpi_deltas.items()},
        }


def decisions(ledger: Ledger, run_id: str) -> list[Decision]:
    """Every proposal of a run with its verdict and, for escalations, how it was resolved, in ledger order."""
    proposals: dict[str, dict[str, Any]] = {}
    verdicts: dict[str, tuple[str, tuple[str, ...], str | None]] = {}
    resolutions: dict[str, str] = {}
    for entry in ledger.iter_entries(run_id=run_id):
        if entry.kind == "proposal":
            proposals[entry.subject] = entry.payload
        elif entry.kind == "verdict":
            verdicts[entry.subject] = (str(entry.outcome), tuple(entry.rule_ids), entry.gate)
        elif entry.kind == "resolution":
            resolutions[entry.subject] = str(entry.outcome)
    out = []
    for pid, payload in proposals.items():
        outcome, rules, gate = verdicts.get(pid, ("none", (), None))
        out.append(
            Decision(
                pid,
                str(payload.get("agent")),
                str(payload.get("action")),
                dict(payload.get("args", {})),
                outcome,
                rules,
                gate,
                resolutions.get(pid),
            )
        )
    return out


def _key(d: Decision) -> tuple[str, str, bytes]:
    return d.agent, d.action, canonical_json(decision_args(d.args))


def pair_decisions(before: list[Decision], after: list[Decision]) -> list[tuple[Decision | None, Decision | None]]:
    """Match proposals by agent + action + args without wording (in order), then the rest by agent + action."""
    pairs: list[tuple[Decision | None, Decision | None]] = []
    left_after = list(after)
    unmatched: list[Decision] = []
    for b in before:
        match = next((a for a in left_after if _key(a) == _key(b)), None)
        if match is None:
            unmatched.append(b)
            continue
        left_after.remove(match)
        pairs.append((b, match))
    for b in unmatched:
        match = next((a for a in left_after if (a.agent, a.action) == (b.agent, b.action)), None)
        if match is not None:
            left_after.remove(match)
        pairs.append((b, match))
    pairs.extend((None, a) for a in left_after)
    return pairs


def _changed(b: Decision | None, a: Decision | None) -> bool:
    if b is None or a is None:
        return True
    return (b.outcome, b.resolution, decision_args(b.args)) != (a.outcome, a.resolution, decision_args(a.args))


def run_kpis(ledger: Ledger, run_id: str) -> dict[str, Decimal]:
    """Revenue, margin, cash, reserves (to the cent), incidents and escalations at the end of a run (from
    run.finished); a world that is not the market (another pack's) by its own numeric KPIs, then escalations."""
    kpis: dict[str, Any] = {}
    escalations = 0
    for entry in ledger.iter_entries(run_id=run_id):
        if entry.kind == "run" and entry.outcome == "completed":
            kpis = dict(entry.payload.get("summary", {}).get("kpis", {}))
        elif entry.kind == "verdict" and entry.outcome == "escalate":
            escalations += 1
    if "revenue_usd" not in kpis:
        own = {
            key: cents(Decimal(str(value))) if is_money(key) else Decimal(str(value))
            for key, value in kpis.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        return {**own, "escalations": Decimal(escalations)}
    incidents = kpis.get("incidents", {})
    total_incidents = sum(int(v) for v in incidents.values()) if isinstance(incidents, dict) else 0
    money = {key: cents(Decimal(str(kpis.get(key, 0)))) for key in MONEY_KPIS}
    return {**money, "incidents": Decimal(total_incidents), "escalations": Decimal(escalations)}


def whatif(
    ledger: Ledger, run_id: str, policy: Policy, *, scratch: SqliteLedger | None = None, scenario_board: bool = True
) -> WhatIfResult:
    """Re-run `run_id` under `policy` (recorded human decisions; escalations new to the what-if are answered by
    the scenario's scripted board when `scenario_board`) into a scratch ledger, and diff the decisions.

    Every agent is narrated by the offline model (no key, no network), whatever models the recorded run used."""
    recorded = recorded_run(ledger, run_id)
    new_id = f"whatif-of-{run_id}"
    board = RecordedBoard(
        recorded.decisions,
        by_content=True,
        fallback=Board(recorded.scenario.board) if scenario_board else None,
    )
    with ExitStack() as stack:
        target = scratch if scratch is not None else stack.enter_context(SqliteLedger.scratch())
        bus = stack.enter_context(closing(MemoryBus.for_run(new_id)))
        assemble_run(
            recorded.scenario,
            bus=bus,
            ledger=target,
            run_id=new_id,
            seed=recorded.seed,
            policy=policy,
            options=offline_options(),
            answers=RecordedAnswers(board, original_run=run_id, ledger=target, run_id=new_id, policy=policy),
        ).run()
        after = decisions(target, new_id)
        kpis_after = run_kpis(target, new_id)
    pairs = pair_decisions(decisions(ledger, run_id), after)
    changes = []
    for b, a in pairs:
        if not _changed(b, a):
            continue
        ref = b or a
        assert ref is not None
        changes.append(DecisionChange(ref.agent, ref.action, ref.args, b, a))
    grouped: dict[str, list[DecisionChange]] = defaultdict(list)
    for change in changes:
        grouped[change.agent].append(change)
    return WhatIfResult(
        run_id=run_id,
        policy_before=recorded.policy.version,
        policy_after=policy.version,
        changes=[c for agent in sorted(grouped) for c in grouped[agent]],
        kpis_before=run_kpis(ledger, run_id),
        kpis_after=kpis_after,
        answered_by=dict(board.answered_by),
    )
