"""The sales (H9) and liquidity (H10) agents in their library scenarios, partner-deals and market-balance: each
holds its expectations and replays IDENTICAL; where they meet the rest — a human rejecting the big deal, a run
under the shipped helios.yaml (which grants them nothing), a scenario of the five agents (where they stay idle),
a bad pipeline in a scenario file — they behave."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coalition.bus.memory import MemoryBus
from coalition.governance import default_policy
from coalition.governance.policy import Policy
from coalition.ledger.base import LedgerQuery
from coalition.ledger.digest import run_digest
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios import ScenarioError, parse_scenario
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.replay import replay
from coalition.scenarios.runner import DayProgress, RunnerOptions, RunResult
from coalition.scenarios.spec import Scenario, load_scenario

pytestmark = pytest.mark.integration

NEW = ("partner-deals", "market-balance")


def run(
    ledger: SqliteLedger,
    scenario: Scenario,
    run_id: str,
    policy: Policy | None = None,
    options: RunnerOptions | None = None,
    bus: str = "",
) -> RunResult:
    namespace = bus or run_id
    return assemble_run(
        scenario, bus=MemoryBus(namespace=namespace), ledger=ledger, run_id=run_id, policy=policy, options=options
    ).run()


class _Interrupt(Exception):
    """Raised from the progress callback to stop a run mid-way, as Ctrl-C would."""


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteLedger]:
    with SqliteLedger(tmp_path_factory.mktemp("sales") / "ledger.db") as opened:
        yield opened


@pytest.fixture(scope="module")
def results(ledger: SqliteLedger) -> dict[str, RunResult]:
    return {name: run(ledger, load_scenario(name), name) for name in NEW}


class TestTheScenarios:
    @pytest.mark.parametrize("name", NEW)
    def test_expectations_hold(self, results: dict[str, RunResult], name: str) -> None:
        result = results[name]
        assert result.expectations
        assert [r.detail for r in result.expectations if not r.passed] == []

    @pytest.mark.parametrize("name", NEW)
    def test_replays_identical(self, results: dict[str, RunResult], ledger: SqliteLedger, name: str) -> None:
        outcome = replay(ledger, name)
        assert outcome.identical, outcome.divergence

    def test_the_board_rejecting_the_big_deal_leaves_it_unsigned_and_gives_its_hours_back(
        self, ledger: SqliteLedger
    ) -> None:
        """Rejected, the utility's 150 integration hours are free again: the installer's second pitch fits."""
        text = (Path(str(load_scenario("partner-deals").source))).read_text(encoding="utf-8")
        scenario = parse_scenario(
            text.replace("decision: approve", "decision: reject"), source=load_scenario("partner-deals").source
        )
        result = run(ledger, scenario, "partner-deals-rejected")
        failed = {r.id for r in result.expectations if not r.passed}
        assert failed == {"board-approves", "utility-on-its-template", "no-yes-beyond-ops-capacity"}
        signed = [
            e.payload.get("changes", {}).get("partnership", {}).get("partner_id")
            for e in ledger.iter_entries(run_id="partner-deals-rejected")
            if e.kind == "execution"
        ]
        assert signed == ["sunvalley-coop", "brightroof"]

    def test_a_run_cut_after_the_boards_decision_resumes_to_the_same_ledger(
        self, results: dict[str, RunResult], ledger: SqliteLedger
    ) -> None:
        """Resumed, sales rebuilds what its live deals hold from the start: the re-pitch is still no "yes"."""

        def stop_on_day_2(progress: DayProgress) -> None:
            if progress.day == 2 and not progress.waiting_for_human:
                raise _Interrupt

        scenario = load_scenario("partner-deals")
        with pytest.raises(_Interrupt):
            run(ledger, scenario, "partner-deals-cut", options=RunnerOptions(on_day=stop_on_day_2), bus="cut-1")
        assert (
            0
            < ledger.count(LedgerQuery(run_id="partner-deals-cut"))
            < ledger.count(LedgerQuery(run_id="partner-deals"))
        )
        resumed = run(ledger, scenario, "partner-deals-cut", bus="cut-2")
        assert all(r.passed for r in resumed.expectations)
        assert run_digest(ledger, "partner-deals-cut") == run_digest(ledger, "partner-deals")

    def test_under_the_shipped_policy_the_new_agents_may_do_nothing(self, ledger: SqliteLedger) -> None:
        result = run(ledger, load_scenario("partner-deals"), "partner-deals-helios", policy=default_policy())
        verdicts = [e for e in ledger.iter_entries(run_id="partner-deals-helios") if e.kind == "verdict"]
        assert verdicts
        assert {e.payload["outcome"] for e in verdicts} == {"deny"}
        assert all("perm.deny_by_default" in e.rule_ids for e in verdicts)
        assert not any(r.passed for r in result.expectations if r.id == "both-deals-signed")


class TestIdleElsewhere:
    def test_in_a_scenario_of_the_five_agents_they_add_nothing(self, ledger: SqliteLedger) -> None:
        """price-spike schedules none of their kinds: no entry is theirs, and the brief goes to the five only."""
        run(ledger, load_scenario("price-spike"), "price-spike")
        entries = list(ledger.iter_entries(run_id="price-spike"))
        assert entries
        assert not [e for e in entries if e.actor in ("agent:sales", "agent:liquidity")]
        assert not [e for e in entries if "sales" in str(e.payload.get("to", "")) or "liquidity" in e.actor]
        briefs = [e for e in entries if e.payload.get("kind") == "policy.brief"]
        assert [sorted(e.payload["to"]) for e in briefs] == [["finance", "legal", "marketing", "ops", "research"]]


class TestBadInput:
    def test_a_bad_pipeline_is_one_line_naming_where(self) -> None:
        source = load_scenario("partner-deals").source
        text = Path(str(source)).read_text(encoding="utf-8").replace("regulatory_drag: 0.2,", "regulatory_drag: 2,")
        with pytest.raises(ScenarioError) as problem:
            parse_scenario(text, file="partner-deals.yaml", source=source)
        message = str(problem.value)
        assert "\n" not in message
        assert "regulatory_drag" in message
        assert "events" in message
