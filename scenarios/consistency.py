"""The consistency check (pass^k): run K variants of a scenario (other seeds; disputes through other channels and
on other days) and report the share of cases whose decision — outcome and amounts, not wording — was identical in
every run.

Models never decide (they only word what the engines decided), so every variant is narrated by the offline model,
whatever the scenario's agents block or the environment chooses: no key, no network, no cost."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from coalition.agents.model_choice import choose_models
from coalition.bus.canonical import canonical_json
from coalition.bus.memory import MemoryBus
from coalition.governance.policy import Policy
from coalition.ledger.base import Ledger
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.runner import RunnerOptions
from coalition.scenarios.spec import Scenario, ScheduledEvent, generated_kinds

CHANNELS = ("phone", "chat", "email", "app")
# Free-text arguments: wording may vary between runs, decisions may not.
WORDING_ARGS = frozenset({"message", "copy", "summary", "reason", "hypothesis"})


def decision_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """A proposal's arguments without the free-text ones: what a decision is about, not how it was worded."""
    return {k: v for k, v in args.items() if k not in WORDING_ARGS}


def offline_options() -> RunnerOptions:
    """Runner options narrating every agent with the offline model (models word decisions, they never take them)."""
    return RunnerOptions(models=choose_models())


@dataclass(frozen=True)
class ConsistencyResult:
    """pass^k over the cases of a scenario, with the cases that differed."""

    scenario: str
    runs: int
    cases: int
    consistent: int
    differing: dict[str, list[Any]]

    @property
    def pass_k(self) -> float:
        return self.consistent / self.cases if self.cases else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "runs": self.runs,
            "narrated_by": "offline",
            "cases": self.cases,
            "consistent": self.consistent,
            "pass_k": round(self.pass_k, 4),
            "differing": self.differing,
        }


def variant(scenario: Scenario, index: int) -> Scenario:
    """Variant `index` (0 = the scenario itself): seed + index; each customer case (the kinds the pack's world
    declares as `cases`) through another channel, up to two days later (never past the last day)."""
    if index == 0:
        return scenario
    world = scenario.of_pack().world
    cases = world.cases if world is not None else frozenset()
    events: list[ScheduledEvent] = []
    for n, event in enumerate(scenario.events):
        if event.kind in cases:
            channel = (
                CHANNELS[(CHANNELS.index(event.data["channel"]) + index + n) % len(CHANNELS)]
                if str(event.data.get("channel")) in CHANNELS
                else CHANNELS[(index + n) % len(CHANNELS)]
            )
            day = min(scenario.last_day, event.day + (index + n) % 3)
            events.append(event.model_copy(update={"day": day, "data": {**event.data, "channel": channel}}))
        else:
            events.append(event)
    events.sort(key=lambda e: e.day)  # stable: same-day events keep file order
    return scenario.model_copy(update={"seed": scenario.seed + index, "events": events})


def case_decisions(ledger: Ledger, run_id: str) -> dict[str, list[str]]:
    """Each scheduled event's case (dispute case id, else subject) → the decisions it caused, wording removed:
    (agent, action, args without free text, verdict outcome, resolution), sorted."""
    case_of: dict[str, str] = {}
    proposals: dict[str, tuple[str, str, dict[str, Any]]] = {}
    case_of_proposal: dict[str, str] = {}
    verdicts: dict[str, str] = {}
    resolutions: dict[str, str] = {}
    counts: dict[str, int] = {}
    for e in ledger.iter_entries(run_id=run_id):
        if e.kind == "observation" and e.payload.get("kind") not in generated_kinds() and e.message_id:
            data = e.payload.get("data") or {}
            base = str(data.get("case_id") or e.payload.get("subject") or e.payload.get("kind"))
            counts[base] = counts.get(base, 0) + 1
            case_of[e.message_id] = base if counts[base] == 1 else f"{base}#{counts[base]}"
            continue
        case = case_of.get(e.causation_id or "") or case_of_proposal.get(e.subject)
        if case is None:
            continue
        if e.message_id:
            case_of[e.message_id] = case
        if e.kind == "proposal":
            args = decision_args(e.payload.get("args") or {})
            proposals[e.subject] = (str(e.payload.get("agent")), str(e.payload.get("action")), args)
            case_of_proposal[e.subject] = case
        elif e.kind == "verdict":
            verdicts[e.subject] = str(e.outcome)
        elif e.kind == "resolution":
            resolutions[e.subject] = str(e.outcome)
    out: dict[str, list[str]] = {case: [] for case in dict.fromkeys(case_of.values())}
    for pid, (agent, action, args) in proposals.items():
        item = [agent, action, args, verdicts.get(pid), resolutions.get(pid)]
        out[case_of_proposal[pid]].append(canonical_json(item).decode())
    return {case: sorted(items) for case, items in out.items()}


def consistency(
    scenario: Scenario, runs: int, *, policy: Policy | None = None, options: RunnerOptions | None = None
) -> ConsistencyResult:
    """Run `runs` variants on the memory bus and compare every case's decisions across them: narrated offline
    unless `options` name the models (e.g. a model lane under `policy`, whose model chooses actions)."""
    per_run: list[dict[str, list[str]]] = []
    for index in range(runs):
        run_id = f"consistency-{scenario.name}-{index}"
        with SqliteLedger.scratch() as ledger, closing(MemoryBus.for_run(run_id)) as bus:
            assemble_run(
                variant(scenario, index),
                bus=bus,
                ledger=ledger,
                run_id=run_id,
                policy=policy,
                options=options or offline_options(),
            ).run()
            per_run.append(case_decisions(ledger, run_id))
    return compare_runs(scenario.name, per_run)


def compare_runs(name: str, per_run: list[dict[str, list[str]]]) -> ConsistencyResult:
    """pass^k over runs already made (in this process, or by sweep workers): each run's case → decisions."""
    cases = sorted(set().union(*per_run)) if per_run else []
    differing: dict[str, list[Any]] = {}
    for case in cases:
        seen = [run.get(case) for run in per_run]
        if any(s != seen[0] for s in seen[1:]):
            differing[case] = seen
    return ConsistencyResult(name, len(per_run), len(cases), len(cases) - len(differing), differing)
