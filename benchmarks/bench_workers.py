"""Agent workers: a superstep where five agents each make one model call that takes 200 ms, with the agents in the
coordinator's process and on five `coalition worker` processes.

The scenario is helios-launch cut to two days, each day bringing one event to each of five agents, whose graph
(benchmarks/worker_graph.py) makes one model call per event; every model is the OpenAI wire format on the test
server (tests/llm_wire_server.py) answering each call after 200 ms. The figure is the second day (the workers'
agents are built and warm by then): its world opening, the superstep of five calls and the quiet one after it.
In one process the five calls are made one after another (≥ 1 s); on five workers side by side (≥ 0.2 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.bench_sweep import _redis_url as reachable_redis
from benchmarks.harness import Measurement

SECTION = "workers"
LATENCY_S = 0.2
AGENTS = {  # agent -> the event kind it reacts to
    "finance": "capital.need",
    "legal": "regulatory.change",
    "marketing": "growth.goal",
    "ops": "meter.outage",
    "research": "market.signals",
}
IDLE = {"finance": ["liquidity"], "legal": ["sales"]}  # the pack's other two agents (no event for them) ride along
ROOT = Path(__file__).resolve().parents[1]


def _scenario() -> Any:
    from coalition.scenarios.spec import Scenario, load_scenario

    base = load_scenario("helios-launch").document
    first = {kind: next(e for e in base["events"] if e["kind"] == kind) for kind in AGENTS.values()}
    events = [{**event, "day": day} for day in (0, 1) for event in first.values()]
    doc = {**base, "days": 2, "events": events, "expectations": []}
    doc["agents"] = {a: {"graph": "benchmarks.worker_graph:build", "model": "openai:gpt-4o-mini"} for a in AGENTS}
    return Scenario.model_validate(doc)


def _redis_url() -> str | None:
    """Database 9 of the benchmarks' Redis: no other run's coordinator sees these workers."""
    url = reachable_redis()
    return None if url is None else f"{url.rsplit('/', 1)[0]}/9"


def _second_day(scenario: Any, options: Any, bus: Any, folder: Path, run_id: str) -> float:
    """Wall seconds of the run's second simulated day."""
    from coalition.ledger import SqliteLedger
    from coalition.scenarios.assembly import assemble_run

    marks: list[float] = []
    options.on_day = lambda _: marks.append(time.perf_counter())
    with SqliteLedger(folder / f"{run_id}.db", create=True) as ledger:
        assemble_run(scenario, bus=bus, ledger=ledger, run_id=run_id, options=options).run()
    return marks[1] - marks[0]


def _workers(url: str, run_id: str, data_dir: Path, server: Any) -> list[subprocess.Popen[bytes]]:
    from llm_wire_server import FAKE_OPENAI_KEY

    from coalition.cli.worker_cmd import worker_command

    env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_") and k != "REDIS_URL"}
    env.update(
        COALITION_DATA_DIR=str(data_dir),
        OPENAI_API_KEY=FAKE_OPENAI_KEY,
        OPENAI_BASE_URL=server.openai_base_url,
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    )
    return [
        subprocess.Popen(
            worker_command([agent, *IDLE.get(agent, [])], name=f"{run_id}-{agent}", run_id=run_id, bus=url),
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for agent in AGENTS
    ]


def _wait_alive(url: str, names: set[str]) -> None:
    from coalition.bus.worker_control import WorkerControl

    control = WorkerControl(url)
    try:
        deadline = time.monotonic() + 180
        while not names <= control.alive().keys():
            if time.monotonic() > deadline:
                raise RuntimeError("agent workers did not start within 180 s")
            time.sleep(0.1)
    finally:
        control.close()


def run(quick: bool) -> list[Measurement]:
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT))
    from llm_wire_server import FAKE_OPENAI_KEY, WireServer

    from coalition.agents.providers import ProviderAccess
    from coalition.bootstrap import run_keyring
    from coalition.bus.memory import MemoryBus
    from coalition.bus.redis_streams import RedisStreamsBus
    from coalition.scenarios.agent_workers import remote_agents
    from coalition.scenarios.runner import RunnerOptions

    url = _redis_url()
    if url is None:
        return []
    repeats = 2 if quick else 3
    scenario = _scenario()
    one: list[float] = []
    five: list[float] = []
    with WireServer(hang_when=lambda _: LATENCY_S) as server, tempfile.TemporaryDirectory(prefix="bench-wk-") as tmp:
        folder = Path(tmp)
        access = ProviderAccess(openai_api_key=FAKE_OPENAI_KEY, openai_base_url=server.openai_base_url)
        keyring = run_keyring(folder / "data")
        for _ in range(repeats):  # interleaved, so both see the same load
            run_id = f"bench-{uuid.uuid4().hex[:8]}"
            one.append(_second_day(scenario, RunnerOptions(provider_access=access), MemoryBus(), folder, run_id))
            run_id = f"bench-{uuid.uuid4().hex[:8]}"
            processes = _workers(url, run_id, folder / "data", server)
            bus = RedisStreamsBus(url, namespace=f"run-{run_id}")
            try:
                _wait_alive(url, {f"{run_id}-{agent}" for agent in AGENTS})
                options = RunnerOptions(
                    provider_access=access, keyring=keyring, agent_workers=remote_agents(url, deadline_s=120)
                )
                five.append(_second_day(scenario, options, bus, folder, run_id))
            finally:
                bus.delete_namespace()
                bus.close()
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(timeout=30)
    base = "a superstep of 5 agents × one 200 ms model call, agents in one process"
    return [
        Measurement(SECTION, base, "s", median(one), min(one), max(one), repeats, higher_is_better=False),
        Measurement(
            SECTION,
            "the same superstep, agents on 5 coalition worker processes",
            "s",
            median(five),
            min(five),
            max(five),
            repeats,
            higher_is_better=False,
            baseline=base,
            target="≥ 3× faster than in one process",
            target_ratio=3.0,
            notes="the run's second simulated day (world opening, the superstep, the quiet step after it); "
            f"workers on Redis {url.rsplit('/', 1)[0]}, database 9; {os.cpu_count()} cores shared with others",
        ),
    ]
