"""The autonomous lane's cost per step: the finance agent's step (supply.shock → set_price) in the transactional
lane against the same step in the autonomous lane, measured in the same run.

The autonomous step adds the tool-calling loop: the tools built from the permitted actions' schemas, two offline
model calls (ask the engine, then adopt its recommendation), the checks of the chosen call (argument model,
content screen, pending keys) and the proposal's choice record. The third row adds governance's same-step preview
of the chosen call (`evaluate` on a governance state, as the runner injects it). The agent's memory is reset
(untimed) before each step so that every step really decides. A paid model's network time is not in it (the
offline model answers).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Measurement, repeat
from coalition.agents import AgentStepContext, build_agents
from coalition.agents.lanes import LaneSettings
from coalition.agents.testing import Envelopes
from coalition.agents.workflow import FunctionAgent
from coalition.bus.clock import IdFactory
from coalition.domain import catalog
from coalition.governance.policy import default_policy
from coalition.governance.state import GovernanceState
from coalition.scenarios.agent_lanes import governance_preview

SECTION = "lanes"
SNAPSHOT = {"prices": {"TX": {"price": 60, "base_price": 60}}}
SHOCK = {"region": "TX", "supply_change_pct": -18, "demand_change_pct": 0, "cause": "heatwave"}
TRANSACTIONAL = "finance step, transactional lane (engine decides)"


def _median_us(step: Callable[[], object], reset: Callable[[], None], n: int) -> float:
    samples = []
    for _ in range(n):
        reset()
        started = time.perf_counter()
        step()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def _finance(autonomous: bool, env: Envelopes, *, preview: bool = False) -> tuple[FunctionAgent[Any], Any, Any]:
    agent = build_agents(seed=1)["finance"]
    if autonomous:
        policy = default_policy()
        permitted = tuple(policy.permissions["finance"])
        state = GovernanceState.initial(policy, run_id="bench")
        agent.use_lanes(
            LaneSettings(lane="autonomous", permitted=permitted),
            catalog().actions,
            preview=governance_preview(policy, lambda: state) if preview else None,
        )
    ctx = AgentStepContext("finance", 1, env.sim_time, IdFactory("bench").child("agent:finance"))
    agent.run([env.observation("market.snapshot", SNAPSHOT, ["finance"])], ctx)
    return agent, agent.memory.model_copy(deep=True), ctx


def run(quick: bool) -> list[Measurement]:
    n, repeats = (200, 3) if quick else (1000, 7)
    env = Envelopes()
    shock = env.observation("supply.shock", SHOCK, ["finance"])
    steps: list[tuple[str, Callable[[], float], dict[str, Any]]] = []
    for autonomous, preview, name, extra in (
        (False, False, TRANSACTIONAL, {"notes": "graph + engine + one offline narrator call"}),
        (
            True,
            False,
            "finance step, autonomous lane (model chooses by tool calling)",
            {
                "baseline": TRANSACTIONAL,
                "notes": "+ tools from the action schemas, 2 offline tool calls, the call's checks, the choice record",
            },
        ),
        (
            True,
            True,
            "finance step, autonomous lane with governance's same-step preview",
            {"baseline": TRANSACTIONAL, "notes": "+ evaluate() of the chosen call on a governance state (advice)"},
        ),
    ):
        agent, memory, ctx = _finance(autonomous, env, preview=preview)

        def reset(agent: FunctionAgent[Any] = agent, memory: Any = memory) -> None:
            agent.memory = memory.model_copy(deep=True)

        def measure(agent: FunctionAgent[Any] = agent, ctx: Any = ctx, reset: Callable[[], None] = reset) -> float:
            return _median_us(lambda: agent.run([shock], ctx), reset, n)

        steps.append((name, measure, extra))
    results = []
    for name, measure, extra in steps:
        median, low, high = repeat(measure, repeats)
        results.append(
            Measurement(
                section=SECTION,
                name=name,
                unit="µs",
                median=median,
                low=low,
                high=high,
                repeats=repeats,
                higher_is_better=False,
                **extra,
            )
        )
    return results


if __name__ == "__main__":
    for m in run(quick=True):
        print(f"{m.name}: {m.median:.0f} µs ({m.low:.0f}–{m.high:.0f})")
