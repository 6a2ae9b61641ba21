"""Replay reproduces a recorded run exactly; what-if lists exactly the decisions a policy change flips;
consistency finds the same decision for every dispute across channels and days; an audit slice is never empty."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from coalition.bus.memory import MemoryBus
from coalition.domain import catalog
from coalition.governance.policy import load_policy, parse_policy
from coalition.ledger.digest import digest_of, history_fields, run_digest
from coalition.ledger.entry import EntryDraft
from coalition.ledger.history import run_history
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.audit import AuditError, audit_slice, write_audit
from coalition.scenarios.consistency import consistency, variant
from coalition.scenarios.replay import ReplayError, recorded_run, replay
from coalition.scenarios.spec import AgentSettings, load_scenario
from coalition.scenarios.whatif import whatif

pytestmark = pytest.mark.integration
POLICY = Path(__file__).resolve().parents[2] / "packs" / "helios" / "policies" / "helios.yaml"


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[SqliteLedger, str]]:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    assemble_run(load_scenario("price-spike"), bus=MemoryBus(namespace="p"), ledger=ledger, run_id="spike-1").run()
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

    def test_fields_read_from_stored_bodies_are_the_entries_fields(self, tmp_path: Path) -> None:
        """What a replay compares and digests, read from SQLite's stored bodies, equals each entry model's
        deterministic fields in history order (decisions moved to their points included), digest included."""
        with SqliteLedger(tmp_path / "chaos.db") as ledger:
            assemble_run(load_scenario("chaos-week"), bus=MemoryBus(namespace="c"), ledger=ledger, run_id="chaos").run()
            fields = history_fields(ledger, "chaos")
            assert any(f["kind"] == "approval" for f in fields)
            assert fields == [e.deterministic_fields() for e in run_history(ledger, "chaos")]
            assert digest_of(fields) == run_digest(ledger, "chaos")

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
        assemble_run(load_scenario("fraud-ring"), bus=MemoryBus(namespace="f"), ledger=ledger, run_id="fraud-1").run()
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

    def test_kpis_and_deltas_are_decimal_money_to_the_cent(
        self, recorded: tuple[SqliteLedger, str], tmp_path: Path
    ) -> None:
        """Money KPIs and their deltas are Decimals quantized to cents; counts are whole; JSON has numbers."""
        ledger, run_id = recorded
        result = whatif(ledger, run_id, load_policy(_policy(tmp_path, {"limits.pricing.surge_cap_pct": 100})))
        for kpis in (result.kpis_before, result.kpis_after, result.kpi_deltas):
            assert all(isinstance(v, Decimal) for v in kpis.values())
            assert all(kpis[k].as_tuple().exponent == -2 for k in ("revenue_usd", "cash_usd", "reserves_usd"))
            assert all(kpis[k] == int(kpis[k]) for k in ("incidents", "escalations"))
        revenue = result.kpi_deltas["revenue_usd"]
        assert revenue == result.kpis_after["revenue_usd"] - result.kpis_before["revenue_usd"]
        doc = result.to_json()
        assert doc["kpi_deltas"]["revenue_usd"] == float(revenue)
        assert doc["kpi_deltas"]["escalations"] == -1
        assert isinstance(doc["kpi_deltas"]["escalations"], int)
        assert doc["narrated_by"] == "offline"


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

    def test_a_scenario_naming_paid_models_is_narrated_offline(self) -> None:
        """Every agent on openai in the scenario file, no key anywhere: the variants run offline, pass^2 = 100%."""
        scenario = load_scenario("billing-disputes")
        paid = scenario.model_copy(
            update={"agents": {agent: AgentSettings(model="openai:gpt-4o-mini") for agent in catalog().agent_names}}
        )
        result = consistency(paid, 2)
        assert result.cases == 12
        assert result.pass_k == 1.0
        assert result.to_json()["narrated_by"] == "offline"

    def test_billing_disputes_are_fully_consistent(self) -> None:
        """Every case gets the same decision and amount in all runs: pass^3 = 100%."""
        result = consistency(load_scenario("billing-disputes"), 3)
        assert result.cases == 12
        assert result.pass_k == 1.0
        assert result.differing == {}


class TestAudit:
    """An audit package is never empty: an empty time range and an unknown incident are both AuditErrors."""

    def test_an_empty_time_range_is_an_error_and_nothing_is_written(
        self, recorded: tuple[SqliteLedger, str], tmp_path: Path
    ) -> None:
        """A range after the run: AuditError naming the run, the range and the run's span; no package written."""
        ledger, run_id = recorded
        later = datetime(2030, 1, 1, tzinfo=UTC)
        with pytest.raises(AuditError, match=r"no entry of run 'spike-1' falls between 2030-01-01 00:00 and its end"):
            audit_slice(ledger, run_id, start=later)
        out = tmp_path / "package"
        with pytest.raises(AuditError, match="the run spans"):
            write_audit(ledger, run_id, out, start=later, end=later)
        assert not out.exists()

    def test_an_unknown_incident_is_an_error_and_nothing_is_written(
        self, recorded: tuple[SqliteLedger, str], tmp_path: Path
    ) -> None:
        """An incident no entry mentions: AuditError naming it; no package written."""
        ledger, run_id = recorded
        out = tmp_path / "package.zip"
        with pytest.raises(AuditError, match="no entry of run 'spike-1' mentions incident 'nope'"):
            write_audit(ledger, run_id, out, incident="nope")
        assert not out.exists()

    def test_a_range_inside_the_run_is_written(self, recorded: tuple[SqliteLedger, str], tmp_path: Path) -> None:
        """The whole run's range: every entry of the run is in the package."""
        ledger, run_id = recorded
        package = write_audit(ledger, run_id, tmp_path / "all")
        assert package.entries == len(list(ledger.iter_entries(run_id=run_id))) > 0
        assert package.verified
