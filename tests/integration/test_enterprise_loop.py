"""The governed loop end to end: helios-launch on both buses, determinism, scheduling independence, resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coalition.bus.base import Bus
from coalition.bus.memory import MemoryBus
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.ledger.base import LedgerQuery
from coalition.ledger.digest import run_digest
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.runner import DayProgress, RunnerOptions, RunResult
from coalition.scenarios.spec import Scenario, load_scenario

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def helios() -> Scenario:
    return load_scenario("helios-launch")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "ledger.db")
    yield led
    led.close()


def run_on(bus: Bus, ledger: SqliteLedger, scenario: Scenario, run_id: str, **kw: object) -> RunResult:
    return assemble_run(scenario, bus=bus, ledger=ledger, run_id=run_id, **kw).run()  # type: ignore[arg-type]


class TestHeliosLaunch:
    """helios-launch shows every governance behaviour the issue asks for, and its expectations hold."""

    def test_all_expectations_hold_on_the_memory_bus(self, helios: Scenario, ledger: SqliteLedger) -> None:
        result = run_on(MemoryBus(namespace="t"), ledger, helios, "r1")
        failed = [r.detail for r in result.expectations if not r.passed]
        assert failed == []
        assert len(result.expectations) >= 20

    def test_each_required_behaviour_is_in_the_ledger(self, helios: Scenario, ledger: SqliteLedger) -> None:
        run_on(MemoryBus(namespace="t"), ledger, helios, "r1")
        verdicts = ledger.query(LedgerQuery(run_id="r1", kind="verdict"))
        escalated_gates = {v.gate for v in verdicts if v.outcome == "escalate"}
        assert {"market_entry", "incident_severity", "capital_commitment", "budget_overrun"} <= escalated_gates
        denied = {(v.payload["agent"], v.payload["action"]) for v in verdicts if v.outcome == "deny"}
        assert ("finance", "set_price") in denied  # surge above the cap
        assert ("marketing", "launch_campaign") in denied  # banned claim
        assert ("marketing", "pause_settlement") in denied  # permission
        executed = {
            (e.payload["agent"], e.payload["action"])
            for e in ledger.query(LedgerQuery(run_id="r1", kind="execution"))
            if e.outcome == "applied"
        }
        assert {("ops", "pause_settlement"), ("marketing", "launch_campaign"), ("finance", "set_price")} <= executed
        assert ledger.verify().ok

    def test_every_execution_was_authorized_by_governance_for_that_exact_proposal(
        self, helios: Scenario, ledger: SqliteLedger
    ) -> None:
        run_on(MemoryBus(namespace="t"), ledger, helios, "r1")
        authorized = {
            e.payload["authorization_id"]: e.payload["proposal_hash"]
            for e in ledger.query(LedgerQuery(run_id="r1", kind="authorization"))
        }
        proposals = {e.subject: e for e in ledger.query(LedgerQuery(run_id="r1", kind="proposal"))}
        executions = ledger.query(LedgerQuery(run_id="r1", kind="execution"))
        assert executions
        for execution in executions:
            assert execution.payload["authorization_id"] in authorized
            assert execution.subject in proposals


class TestDeterminism:
    """Same scenario + seed ⇒ same digest on any bus and any agent schedule; another seed ⇒ another digest."""

    def test_memory_and_redis_buses_give_the_same_digest(
        self, helios: Scenario, ledger: SqliteLedger, redis_url: str
    ) -> None:
        run_on(MemoryBus(namespace="m"), ledger, helios, "on-memory")
        redis_bus = RedisStreamsBus(redis_url, namespace="test-loop-determinism")
        try:
            redis_bus.delete_namespace()
            run_on(redis_bus, ledger, helios, "on-redis")
        finally:
            redis_bus.delete_namespace()
            redis_bus.close()
        assert run_digest(ledger, "on-memory") == run_digest(ledger, "on-redis")

    def test_a_different_seed_gives_a_different_digest(self, helios: Scenario, ledger: SqliteLedger) -> None:
        run_on(MemoryBus(namespace="a"), ledger, helios, "seed-a")
        run_on(MemoryBus(namespace="b"), ledger, helios, "seed-b", seed=helios.seed + 1)
        assert run_digest(ledger, "seed-a") != run_digest(ledger, "seed-b")

    def test_agent_scheduling_order_does_not_change_the_ledger(self, helios: Scenario, ledger: SqliteLedger) -> None:
        run_on(MemoryBus(namespace="a"), ledger, helios, "in-order")
        runner = assemble_run(helios, bus=MemoryBus(namespace="b"), ledger=ledger, run_id="reversed")
        runner.runtimes.reverse()  # agents now step in the opposite order within each superstep
        runner.run()
        assert run_digest(ledger, "in-order") == run_digest(ledger, "reversed")


class _Interrupt(Exception):
    """Raised from the progress callback to stop a run mid-way, as Ctrl-C would."""


class TestResume:
    """An interrupted run resumes from its ledger and ends with the same content as an uninterrupted one."""

    def test_resume_after_interruption_matches_an_uninterrupted_run(
        self, helios: Scenario, ledger: SqliteLedger
    ) -> None:
        run_on(MemoryBus(namespace="whole"), ledger, helios, "whole")

        def stop_on_day_40(progress: DayProgress) -> None:
            if progress.day == 40 and not progress.waiting_for_human:
                raise _Interrupt

        with pytest.raises(_Interrupt):
            run_on(MemoryBus(namespace="first"), ledger, helios, "cut", options=RunnerOptions(on_day=stop_on_day_40))
        partial = ledger.count(LedgerQuery(run_id="cut"))
        assert 0 < partial < ledger.count(LedgerQuery(run_id="whole"))
        run_on(MemoryBus(namespace="second"), ledger, helios, "cut")  # a fresh bus: the stream state is gone
        assert run_digest(ledger, "cut") == run_digest(ledger, "whole")
        assert ledger.verify().ok
