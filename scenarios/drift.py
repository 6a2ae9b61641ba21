"""Drift: two runs (two models, prompts or policies) compared by their decision mix, read from the ledger alone.

Per agent and action: how many proposals each run made and which share governance allowed, denied and escalated
(and how the humans resolved the escalations). Per agent and overall: how far apart the two runs' action
distributions are, as the Jensen–Shannon divergence (base 2, so 0 = the same mix and 1 = no action in common) and
the total variation distance (the share of proposals that would have to change action to turn one mix into the
other). Proposals are also paired across the runs (same agent, action and decision arguments, wording aside) to
count the same proposal decided differently.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from coalition.governance.approvals import run_started
from coalition.ledger.base import Ledger
from coalition.scenarios.whatif import Decision, decisions, pair_decisions

OUTCOMES = ("allow", "deny", "escalate")
RESOLUTIONS = ("approved", "rejected", "expired")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def jensen_shannon(left: Mapping[Any, int], right: Mapping[Any, int]) -> float | None:
    """The Jensen–Shannon divergence (base 2, in [0, 1]) between two count distributions; None if either is
    empty (there is no mix to compare)."""
    total_l, total_r = sum(left.values()), sum(right.values())
    if not total_l or not total_r:
        return None

    def kl(p: Mapping[Any, float], m: Mapping[Any, float]) -> float:
        return sum(v * math.log2(v / m[k]) for k, v in p.items() if v > 0)

    keys = set(left) | set(right)
    p = {k: left.get(k, 0) / total_l for k in keys}
    q = {k: right.get(k, 0) / total_r for k in keys}
    m = {k: (p[k] + q[k]) / 2 for k in keys}
    return round(max(0.0, min(1.0, (kl(p, m) + kl(q, m)) / 2)), 4)


def total_variation(left: Mapping[Any, int], right: Mapping[Any, int]) -> float | None:
    """Half the L1 distance between the two normalised distributions (in [0, 1]); None if either is empty."""
    total_l, total_r = sum(left.values()), sum(right.values())
    if not total_l or not total_r:
        return None
    keys = set(left) | set(right)
    return round(sum(abs(left.get(k, 0) / total_l - right.get(k, 0) / total_r) for k in keys) / 2, 4)


@dataclass(frozen=True, slots=True)
class Mix:
    """One run's decisions on one agent's action: how many, and what governance and humans made of them."""

    proposals: int
    outcomes: dict[str, int]
    resolutions: dict[str, int]

    @classmethod
    def of(cls, items: Sequence[Decision]) -> Mix:
        outcomes = Counter(d.outcome for d in items)
        resolutions = Counter(d.resolution for d in items if d.resolution)
        return cls(
            len(items),
            {o: outcomes.get(o, 0) for o in OUTCOMES},
            {r: resolutions.get(r, 0) for r in RESOLUTIONS},
        )

    def rate(self, outcome: str) -> float | None:
        return _rate(self.outcomes.get(outcome, 0), self.proposals)

    def to_json(self) -> dict[str, Any]:
        return {
            "proposals": self.proposals,
            "outcomes": self.outcomes,
            "rates": {o: self.rate(o) for o in OUTCOMES},
            "resolutions": self.resolutions,
        }


@dataclass(frozen=True, slots=True)
class ActionRow:
    agent: str
    action: str
    a: Mix
    b: Mix

    def delta(self, outcome: str) -> float | None:
        ra, rb = self.a.rate(outcome), self.b.rate(outcome)
        return None if ra is None or rb is None else round(rb - ra, 4)

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "action": self.action,
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "rate_delta": {o: self.delta(o) for o in OUTCOMES},
        }


@dataclass(frozen=True, slots=True)
class AgentDrift:
    """How far one agent's two runs are apart: over the actions it proposed, and over governance's outcomes."""

    agent: str
    proposals_a: int
    proposals_b: int
    action_js: float | None
    action_tv: float | None
    outcome_js: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "proposals": {"a": self.proposals_a, "b": self.proposals_b},
            "action_divergence": {"jensen_shannon": self.action_js, "total_variation": self.action_tv},
            "outcome_divergence": {"jensen_shannon": self.outcome_js},
        }


@dataclass(frozen=True, slots=True)
class DecidedOtherwise:
    """The same proposal (agent, action, decision arguments) decided differently in the two runs."""

    agent: str
    action: str
    a: str
    b: str

    def to_json(self) -> dict[str, str]:
        return {"agent": self.agent, "action": self.action, "a": self.a, "b": self.b}


@dataclass(frozen=True, slots=True)
class DriftResult:
    run_a: str
    run_b: str
    rows: list[ActionRow]
    agents: list[AgentDrift]
    overall_js: float | None
    overall_tv: float | None
    decision_js: float | None  # over (agent, action, outcome): the whole decision mix
    paired: int
    only_a: int
    only_b: int
    decided_otherwise: list[DecidedOtherwise]
    scenario_a: str | None = None  # each run's scenario, from its run.started entry
    scenario_b: str | None = None
    ledger_a: str | None = None  # each run's ledger, when both runs have the same id (two ledgers)
    ledger_b: str | None = None

    @property
    def label_a(self) -> str:
        return f"{self.run_a} ({self.ledger_a})" if self.ledger_a else self.run_a

    @property
    def label_b(self) -> str:
        return f"{self.run_b} ({self.ledger_b})" if self.ledger_b else self.run_b

    def scenario_warning(self) -> str | None:
        """A warning when the two runs played different scenarios (their mixes are not one business's day)."""
        if self.scenario_a is None or self.scenario_b is None or self.scenario_a == self.scenario_b:
            return None
        return f"warning: A is {self.scenario_a}, B is {self.scenario_b}: the mixes compare different businesses' days"

    def to_json(self) -> dict[str, Any]:
        scenarios = {"a": self.scenario_a, "b": self.scenario_b, "warning": self.scenario_warning()}
        ledgers = {"a": self.ledger_a, "b": self.ledger_b} if self.ledger_a or self.ledger_b else {}
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            **({"scenarios": scenarios} if scenarios["warning"] else {}),
            **({"ledgers": ledgers} if ledgers else {}),
            "overall": {
                "action_divergence": {"jensen_shannon": self.overall_js, "total_variation": self.overall_tv},
                "decision_divergence": {"jensen_shannon": self.decision_js},
            },
            "pairing": {
                "paired": self.paired,
                "only_a": self.only_a,
                "only_b": self.only_b,
                "decided_otherwise": [d.to_json() for d in self.decided_otherwise],
            },
            "agents": [a.to_json() for a in self.agents],
            "actions": [r.to_json() for r in self.rows],
        }


def _label(d: Decision) -> str:
    return f"{d.outcome}/{d.resolution}" if d.resolution else d.outcome


def compare(run_a: str, left: Sequence[Decision], run_b: str, right: Sequence[Decision]) -> DriftResult:
    """Compare two runs' decisions (as `whatif.decisions` reads them from a ledger)."""

    def grouped(items: Iterable[Decision]) -> dict[tuple[str, str], list[Decision]]:
        out: dict[tuple[str, str], list[Decision]] = {}
        for d in items:
            out.setdefault((d.agent, d.action), []).append(d)
        return out

    ga, gb = grouped(left), grouped(right)
    rows = [
        ActionRow(agent, action, Mix.of(ga.get((agent, action), [])), Mix.of(gb.get((agent, action), [])))
        for agent, action in sorted(set(ga) | set(gb))
    ]
    agents = []
    for agent in sorted({agent for agent, _ in set(ga) | set(gb)}):
        acts_a = Counter({act: len(v) for (ag, act), v in ga.items() if ag == agent})
        acts_b = Counter({act: len(v) for (ag, act), v in gb.items() if ag == agent})
        outs_a = Counter(d.outcome for (ag, _), v in ga.items() if ag == agent for d in v)
        outs_b = Counter(d.outcome for (ag, _), v in gb.items() if ag == agent for d in v)
        agents.append(
            AgentDrift(
                agent,
                sum(acts_a.values()),
                sum(acts_b.values()),
                jensen_shannon(acts_a, acts_b),
                total_variation(acts_a, acts_b),
                jensen_shannon(outs_a, outs_b),
            )
        )
    pair_a = Counter({key: len(v) for key, v in ga.items()})
    pair_b = Counter({key: len(v) for key, v in gb.items()})
    mix_a = Counter((d.agent, d.action, d.outcome) for d in left)
    mix_b = Counter((d.agent, d.action, d.outcome) for d in right)
    paired, only_a, only_b, otherwise = 0, 0, 0, []
    for before, after in pair_decisions(list(left), list(right)):
        if before is None:
            only_b += 1
        elif after is None:
            only_a += 1
        else:
            paired += 1
            if _label(before) != _label(after):
                otherwise.append(DecidedOtherwise(before.agent, before.action, _label(before), _label(after)))
    return DriftResult(
        run_a,
        run_b,
        rows,
        agents,
        jensen_shannon(pair_a, pair_b),
        total_variation(pair_a, pair_b),
        jensen_shannon(mix_a, mix_b),
        paired,
        only_a,
        only_b,
        otherwise,
    )


def _scenario(ledger: Ledger, run_id: str) -> str | None:
    started = run_started(ledger, run_id)
    return None if started is None else started.scenario


def run_drift(
    ledger_a: Ledger, run_a: str, ledger_b: Ledger, run_b: str, *, labels: tuple[str, str] | None = None
) -> DriftResult:
    """Drift between run A (in ledger A) and run B (in ledger B, which may be the same ledger), with each run's
    scenario; `labels` names the two ledgers (for two runs of the same id)."""
    result = compare(run_a, decisions(ledger_a, run_a), run_b, decisions(ledger_b, run_b))
    ledgers = labels or (None, None)
    return replace(
        result,
        scenario_a=_scenario(ledger_a, run_a),
        scenario_b=_scenario(ledger_b, run_b),
        ledger_a=ledgers[0],
        ledger_b=ledgers[1],
    )
