"""An agent's whole step runs only in steps that hold something it reacts to; the ledger is the same as when every
agent's step ran on every superstep (issue 16: 585 graph runs a helios-launch run, most of them on the snapshot)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from coalition.agents import workflow
from coalition.agents.workflow import FunctionAgent
from coalition.bus import topics
from coalition.bus.memory import MemoryBus
from coalition.ledger.digest import run_digest
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.runner import DayProgress, RunnerOptions
from coalition.scenarios.spec import list_library, load_scenario

pytestmark = pytest.mark.integration


def _run(name: str, path: Path) -> str:
    ledger = SqliteLedger(path)
    try:
        assemble_run(load_scenario(name), bus=MemoryBus(namespace=path.stem), ledger=ledger, run_id=name).run()
        return run_digest(ledger, name)
    finally:
        ledger.close()


class TestIdleStepsSkipTheGraph:
    """Skipping the graph on idle steps changes nothing a ledger can show."""

    @pytest.mark.parametrize("name", sorted(list_library()))
    def test_every_library_scenario_keeps_its_digest(
        self, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        skipping = _run(name, tmp_path / "skip.db")
        monkeypatch.setattr(FunctionAgent, "SKIP_IDLE_STEPS", False)
        every_step = _run(name, tmp_path / "every.db")
        assert skipping == every_step

    def test_graphs_run_only_when_there_is_work(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """helios-launch: most agent steps hold only the day's snapshot, and those run only `observe`."""
        invocations: Counter[str] = Counter()
        steps: Counter[str] = Counter()
        whole, run = workflow.STEP.straight, FunctionAgent.run

        def counting_whole(state: Any) -> Any:
            invocations[state["agent"].NAME] += 1
            return whole(state)

        def counting_run(agent: FunctionAgent[Any], inbox: Any, ctx: Any) -> Any:
            steps[agent.NAME] += 1
            return run(agent, inbox, ctx)

        monkeypatch.setattr(workflow.STEP, "straight", counting_whole)  # the step every agent built below runs
        monkeypatch.setattr(FunctionAgent, "run", counting_run)
        _run("helios-launch", tmp_path / "count.db")
        assert sum(steps.values()) >= 5 * 90
        assert sum(invocations.values()) < sum(steps.values()) / 4
        assert all(invocations[name] >= 1 for name in ("research", "finance", "marketing", "legal", "ops"))


class TestFlatMemory:
    """A long run on the memory bus holds only what is not yet acknowledged everywhere (issue 16)."""

    def test_bus_entries_do_not_grow_with_simulated_days(self, tmp_path: Path) -> None:
        bus = MemoryBus.for_run("long")
        held: dict[int, int] = {}

        def entries() -> int:
            return sum(bus.length(topic) for topic in topics.ALL)

        def on_day(progress: DayProgress) -> None:
            held[progress.day] = entries()

        scenario = load_scenario("helios-launch").model_copy(update={"days": 240})
        ledger = SqliteLedger(tmp_path / "long.db")
        try:
            assemble_run(scenario, bus=bus, ledger=ledger, run_id="long", options=RunnerOptions(on_day=on_day)).run()
        finally:
            ledger.close()
        early, late = max(v for d, v in held.items() if d < 120), max(v for d, v in held.items() if d >= 120)
        assert late <= early
        assert max(held.values()) < 100  # a day's traffic at most, never the run's history
