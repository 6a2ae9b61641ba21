"""helios-launch with finance and marketing in the autonomous lane, offline: the offline model adopts the engine's
decisions, so every decision is the transactional run's; each of their proposals says the model chose it, and
the run replays IDENTICAL. The transactional run's ledger has no trace of lanes at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coalition.bus.memory import MemoryBus
from coalition.governance.policy import Policy, default_policy, parse_policy
from coalition.ledger.base import LedgerQuery
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.replay import replay
from coalition.scenarios.runner import RunResult
from coalition.scenarios.spec import Scenario, load_scenario

pytestmark = pytest.mark.integration

AUTONOMOUS = {"finance": {"lane": "autonomous"}, "marketing": {"lane": "autonomous"}}
SHIPPED = Path(__file__).parents[2] / "packs" / "helios" / "policies" / "helios-autonomous.yaml"


def autonomous_policy() -> Policy:
    return parse_policy({**default_policy().document, "lanes": AUTONOMOUS}, source="helios+lanes")


@pytest.fixture(scope="module")
def helios() -> Scenario:
    return load_scenario("helios-launch")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "ledger.db")
    yield led
    led.close()


def run(ledger: SqliteLedger, scenario: Scenario, run_id: str, policy: Policy | None = None) -> RunResult:
    return assemble_run(scenario, bus=MemoryBus(namespace=run_id), ledger=ledger, run_id=run_id, policy=policy).run()


def proposals(ledger: SqliteLedger, run_id: str) -> list[dict[str, Any]]:
    return [e.payload for e in ledger.query(LedgerQuery(run_id=run_id, kind="proposal"))]


def decisions(ledger: SqliteLedger, run_id: str) -> list[tuple[str, str, str | None]]:
    return [(v.payload["agent"], v.payload["action"], v.outcome) for v in
            ledger.query(LedgerQuery(run_id=run_id, kind="verdict"))]  # fmt: skip


class TestOfflineAutonomousLane:
    def test_the_shipped_autonomous_policy_is_the_default_with_two_lanes(self) -> None:
        from coalition.governance.policy import load_policy

        shipped = load_policy(SHIPPED)
        assert {a: lane.lane for a, lane in shipped.lanes.items()} == {
            "finance": "autonomous",
            "marketing": "autonomous",
        }
        assert shipped.permissions == default_policy().permissions

    def test_same_decisions_the_model_chose_them_and_it_replays_identical(
        self, helios: Scenario, ledger: SqliteLedger
    ) -> None:
        transactional = run(ledger, helios, "tx")
        autonomous = run(ledger, helios, "auto", autonomous_policy())
        assert [r.passed for r in autonomous.expectations] == [r.passed for r in transactional.expectations]
        assert autonomous.expectations_passed
        assert len(decisions(ledger, "tx")) >= 50
        assert decisions(ledger, "auto") == decisions(ledger, "tx")
        tx, auto = proposals(ledger, "tx"), proposals(ledger, "auto")
        assert [(p["agent"], p["action"], p["args"]) for p in auto] == [
            (p["agent"], p["action"], p["args"]) for p in tx
        ]
        assert all("choice" not in p for p in tx)
        chosen = [p for p in auto if p["agent"] in AUTONOMOUS and "choice" in p]
        assert len(chosen) >= 8
        assert all(p["choice"]["chosen_by"] == "model" and p["choice"]["engine_args"] is None for p in chosen)
        assert all(p["choice"]["engine_action"] == p["action"] for p in chosen)
        assert all("choice" not in p for p in auto if p["agent"] not in AUTONOMOUS)
        result = replay(ledger, "auto")
        assert result.identical, result.divergence
