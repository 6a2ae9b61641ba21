"""Agent step overhead: one agent step (its fixed observe → analyze → draft → propose step run straight, domain
engine, offline narrator) against a bare LangGraph graph with the same four nodes doing nothing, measured in the
same run; the same step run as the compiled LangGraph graph (COALITION_AGENT_GRAPH=langgraph) beside it.

The agent's memory is reset (untimed) before each step so that every step really decides and words a
proposal instead of deduplicating it. Extra figures break the cost down: the narrator call alone, a larger
ops step (6 proposals, 1 message), and a full runtime step over the MemoryBus (read, run, publish, ack).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from benchmarks.harness import Measurement, repeat
from coalition.agents import AgentRuntime, AgentStepContext, Facts, Narrator, OfflineChatModel, build_agents
from coalition.agents.pipeline import GRAPH_VARIABLE, LANGGRAPH
from coalition.agents.testing import Envelopes
from coalition.agents.workflow import FunctionAgent
from coalition.bus import topics
from coalition.bus.clock import IdFactory
from coalition.bus.memory import MemoryBus

SECTION = "agents"
SNAPSHOT = {"prices": {"TX": {"price": 60, "base_price": 60}}}
SHOCK = {"region": "TX", "supply_change_pct": -18, "demand_change_pct": 0, "cause": "heatwave"}
BRIEF = {"credit_tiers": {"bronze": 10, "silver": 25, "gold": 50}, "max_credit_usd": 100, "incident_severity_bound": 3}
OUTAGE = {
    "region": "TX",
    "incident_hint": "INC-1",
    "meters_down": 40,
    "hours": 6,
    "customers": [{"id": f"c{i}", "lost_kwh": 40 * (i + 1)} for i in range(3)],
}


class _State(TypedDict):
    inbox: list[Any]
    ctx: Any
    drafts: list[Any]
    worded: list[Any]
    outgoing: list[Any]
    rejected: list[Any]


def _nothing(state: _State) -> dict[str, Any]:
    return {}


def bare_graph() -> Any:
    """Four no-op nodes in a line over the same state shape as the agents' graph."""
    graph = StateGraph(_State)
    previous = START
    for name in ("observe", "analyze", "draft", "propose"):
        graph.add_node(name, _nothing)
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, END)
    return graph.compile()


def _median_us(step: Callable[[], object], reset: Callable[[], None], n: int) -> float:
    samples = []
    for _ in range(n):
        reset()
        started = time.perf_counter()
        step()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def _primed(agent: FunctionAgent[Any], name: str, env: Envelopes, inbox: list[Any]) -> Any:
    ctx = AgentStepContext(name, 1, env.sim_time, IdFactory("bench").child(f"agent:{name}"))
    agent.run(inbox, ctx)
    return agent.memory.model_copy(deep=True), ctx


def _langgraph_agent(name: str) -> FunctionAgent[Any]:
    """The agent built as with COALITION_AGENT_GRAPH=langgraph: its step runs as the compiled graph."""
    before = os.environ.get(GRAPH_VARIABLE)
    os.environ[GRAPH_VARIABLE] = LANGGRAPH
    try:
        return build_agents(seed=1, names=[name])[name]
    finally:
        if before is None:
            del os.environ[GRAPH_VARIABLE]
        else:
            os.environ[GRAPH_VARIABLE] = before


def run(quick: bool) -> list[Measurement]:
    n, repeats = (300, 3) if quick else (1500, 7)
    env = Envelopes()
    agents = build_agents(seed=1)
    finance, ops = agents["finance"], agents["ops"]
    finance_memory, finance_ctx = _primed(
        finance, "finance", env, [env.observation("market.snapshot", SNAPSHOT, ["finance"])]
    )
    graph_finance = _langgraph_agent("finance")
    graph_memory, _ = _primed(
        graph_finance, "finance", env, [env.observation("market.snapshot", SNAPSHOT, ["finance"])]
    )
    ops_memory, ops_ctx = _primed(ops, "ops", env, [env.observation("policy.brief", BRIEF, ["ops"])])
    shock = env.observation("supply.shock", SHOCK, ["finance"])
    outage = env.observation("meter.outage", OUTAGE, ["ops"])
    bare = bare_graph()
    bare_input = {"inbox": [shock], "ctx": finance_ctx, "drafts": [], "worded": [], "outgoing": [], "rejected": []}

    def reset_finance() -> None:
        finance.memory = finance_memory.model_copy(deep=True)

    def reset_graph_finance() -> None:
        graph_finance.memory = graph_memory.model_copy(deep=True)

    def reset_ops() -> None:
        ops.memory = ops_memory.model_copy(deep=True)

    def no_reset() -> None:
        return None

    narrator = Narrator(OfflineChatModel(seed=1))
    facts = Facts(intent="propose", decision="set the TX price to 76.20 USD/MWh", reasons=["supply fell 18%"])

    bus = MemoryBus()
    runtime = AgentRuntime(finance, bus, run_id="bench", ids=IdFactory("bench"))
    superstep = [0]

    def runtime_step() -> None:
        superstep[0] += 1
        bus.publish(
            topics.OBSERVATIONS, env.observation("supply.shock", SHOCK, ["finance"], superstep=superstep[0] - 1)
        )
        runtime.step(superstep[0], env.sim_time)

    figures: list[tuple[str, Callable[[], float], dict[str, Any]]] = [
        ("bare 4-node LangGraph invoke", lambda: _median_us(lambda: bare.invoke(bare_input), no_reset, n), {}),
        (
            "finance step: supply.shock → set_price",
            lambda: _median_us(lambda: finance.run([shock], finance_ctx), reset_finance, n),
            {
                "baseline": "bare 4-node LangGraph invoke",
                "target": "≤ 1.5× the bare graph",
                "target_ratio": 1 / 1.5,
                "notes": "the step run straight (agents/pipeline.py) + engine + one offline narrator call "
                "(OfflineChatModel.invoke; nothing attached, so no LangChain callback run)",
            },
        ),
        (
            "finance step as a LangGraph graph (COALITION_AGENT_GRAPH=langgraph)",
            lambda: _median_us(lambda: graph_finance.run([shock], finance_ctx), reset_graph_finance, n),
            {
                "baseline": "bare 4-node LangGraph invoke",
                "notes": "the same step as the compiled graph: LangGraph's per-call machinery; informative",
            },
        ),
        (
            "ops step: meter.outage → 6 proposals + 1 message",
            lambda: _median_us(lambda: ops.run([outage], ops_ctx), reset_ops, max(n // 3, 50)),
            {"baseline": "bare 4-node LangGraph invoke", "notes": "7 narrator calls + 1 copy; informative"},
        ),
        (
            "Narrator.rationale (OfflineChatModel)",
            lambda: _median_us(lambda: narrator.rationale("finance", facts), no_reset, n),
            {"notes": "one language step outside a graph"},
        ),
        (
            "AgentRuntime.step over MemoryBus (1 shock)",
            lambda: _median_us(runtime_step, reset_finance, n),
            {"baseline": "bare 4-node LangGraph invoke", "notes": "read + filter + step + publish + ack"},
        ),
    ]
    results = []
    for name, measure, extra in figures:
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
