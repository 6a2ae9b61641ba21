"""Replay reproduces a recorded run exactly; what-if lists exactly the decisions a policy change flips;
consistency finds the same decision for every dispute across channels and days."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from coalition.bus.memory import MemoryBus
from coalition.governance.policy import load_policy, parse_policy
from coalition.ledger.entry import EntryDraft
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.consistency import consistency, variant
from coalition.scenarios.replay import ReplayError, recorded_run, replay
from coalition.scenarios.runner import Runner
from coalition.scenarios.spec import load_scenario
from coalition.scenarios.whatif import whatif

pytestmark = pytest.mark.integration
POLICY = Path(__file__).resolve().parents[2] / "governance" / "policies" / "helios.yaml"


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[SqliteLedger, str]]:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    Runner(load_scenario("price-spike"), bus=MemoryBus(namespace="p"), ledger=ledger, run_id="spike-1").run()
    yield ledger, "spike-1"
    ledger.close()


def _policy(tmp_path: Path, edit: dict[str, object]) -> Path:
    doc = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    for dotted, value in edit.items():
        *head, last = dotted.split(".")
        node = doc
        for key in head:
            node = node[key]
        node[last] = value
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


class TestReplay:
    """A recorded run re-executes from its ledger alone, entry for entry."""

    def test_recorded_run_replays_identically(self, recorded: tuple[SqliteLedger, str]) -> None:
        """Same deterministic fields everywhere, same digest, same number of entries."""
        ledger, run_id = recorded
        result = replay(ledger, run_id)
        assert result.identical
        assert result.divergence is None
        assert result.digest == result.replay_digest
        assert result.entries == result.replayed_entries > 20

    def test_recorded_human_decision_is_used(self, recorded: tuple[SqliteLedger, str]) -> None:
        """The rejection in the ledger (bob, cfo) is what the replay records again."""
        ledger, run_id = recorded
        decisions = recorded_run(ledger, run_id).decisions
        assert [(d.approver, d.decision, d.action) for d in decisions] == [("bob", "reject", "change_pricing_policy")]

    def test_an_extra_entry_is_reported_as_the_first_divergence(self, recorded: tuple[SqliteLedger, str]) -> None:
        """A ledger with one more entry than the re-execution diverges at that entry."""
        ledger, run_id = recorded
        last = list(ledger.iter_entries(run_id=run_id))[-1]
        ledger.append(
            [
                EntryDraft(
                    run_id=run_id,
                    sim_time=last.sim_time,
                    actor="system",
                    actor_kind="system",
                    kind="system",
                    rationale="an entry the run never wrote",
                )
            ]
        )
        result = replay(ledger, run_id)
        assert not result.identical
        assert result.divergence is not None
        assert result.divergence.index == result.replayed_entries
        assert result.divergence.replayed is None

    def test_unknown_run_is_a_one_line_error(self, recorded: tuple[SqliteLedger, str]) -> None:
        """No such run: ReplayError naming it."""
        with pytest.raises(ReplayError, match="no run 'nope'"):
            replay(recorded[0], "nope")


class TestWhatIf:
    """A deliberately changed policy lists exactly the decisions it should."""

    def test_raised_surge_cap_allows_both_surges(self, recorded: tuple[SqliteLedger, str], tmp_path: Path) -> None:
        """Surge cap 25% → 100%: both denied surge prices become allowed; the clamp and the policy ask vanish."""
        ledger, run_id = recorded
        result = whatif(ledger, run_id, load_policy(_policy(tmp_path, {"limits.pricing.surge_cap_pct": 100})))
        flips = [
            (c.action, c.before.outcome if c.before else None, c.after.outcome if c.after else None)
            for c in result.changes
        ]
        assert flips.count(("set_price", "deny", "allow")) == 2
        assert ("set_price", "allow", None) in flips
        assert ("change_pricing_policy", "escalate", None) in flips
        assert len(flips) == 4
        denied = next(c for c in result.changes if c.before and c.before.outcome == "deny")
        assert denied.before is not None
        assert denied.after is not None
        assert "limit.price.surge_cap" in denied.before.rule_ids
        assert "limit.price.surge_cap" not in denied.after.rule_ids
        assert result.kpi_deltas["escalations"] == -1
        assert result.kpi_deltas["revenue_usd"] != 0

    def test_lowered_severity_bound_escalates_the_small_fraud(self, tmp_path: Path) -> None:
        """Severity bound 3 → 1 in fraud-ring: only the severity-2 incident changes, allow → escalate."""
        ledger = SqliteLedger(tmp_path / "f.db")
        Runner(load_scenario("fraud-ring"), bus=MemoryBus(namespace="f"), ledger=ledger, run_id="fraud-1").run()
        other = load_policy(_policy(tmp_path, {"gates.incident_severity.severity_bound": 1}))
        result = whatif(ledger, "fraud-1", other)
        assert [(c.action, c.before.outcome if c.before else None) for c in result.changes] == [
            ("open_incident", "allow")
        ]
        after = result.changes[0].after
        assert after is not None
        assert after.outcome == "escalate"
        assert after.gate == "incident_severity"
        assert result.kpi_deltas["escalations"] == 1
        ledger.close()

    def test_same_policy_changes_nothing(self, recorded: tuple[SqliteLedger, str]) -> None:
        """Under the recorded policy itself, no decision changes and every KPI delta is zero."""
        ledger, run_id = recorded
        same = parse_policy(recorded_run(ledger, run_id).policy.model_dump(mode="json"), source="same")
        result = whatif(ledger, run_id, same)
        assert result.changes == []
        assert set(result.kpi_deltas.values()) == {0}


class TestConsistency:
    """pass^k over dispute cases arriving on other channels and days."""

    def test_variants_change_channels_and_days(self) -> None:
        """Variant 1 moves disputes to other channels; variant 0 is the scenario itself."""
        scenario = load_scenario("billing-disputes")
        assert variant(scenario, 0) is scenario
        moved = variant(scenario, 1)
        before = [e.data["channel"] for e in scenario.events]
        after = [e.data["channel"] for e in sorted(moved.events, key=lambda e: e.data["case_id"])]
        assert before != after
        assert moved.seed == scenario.seed + 1

    def test_billing_disputes_are_fully_consistent(self) -> None:
        """Every case gets the same decision and amount in all runs: pass^3 = 100%."""
        result = consistency(load_scenario("billing-disputes"), 3)
        assert result.cases == 12
        assert result.pass_k == 1.0
        assert result.differing == {}
