"""The policy file: the shipped Helios policy, content-hash versions, and one-line errors for bad files."""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalition.governance import PolicyError, default_policy, load_policy
from coalition.governance.policy import parse_policy

pytestmark = pytest.mark.unit

HELIOS_TEXT = resources.files("coalition.packs.helios").joinpath("policies/helios.yaml").read_text(encoding="utf-8")
HELIOS: dict[str, Any] = yaml.safe_load(HELIOS_TEXT)


def write(tmp_path: Path, data: Any, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(HELIOS)
    change(data)
    return data


class TestHeliosPolicy:
    """The shipped policy loads, covers what the design asks, and documents its assumptions."""

    def test_default_policy_loads(self) -> None:
        """default_policy() reads the packaged helios.yaml."""
        policy = default_policy()
        assert policy.name == "helios"
        assert policy.limits.pricing.surge_cap_pct == 25

    def test_every_agent_has_a_budget_and_permissions(self) -> None:
        """All five agents have a money budget and an explicit tool list."""
        policy = default_policy()
        agents = {"research", "finance", "marketing", "legal", "ops"}
        assert set(policy.budgets.agents) == agents
        assert set(policy.permissions) == agents

    def test_only_ops_may_pause_settlement(self) -> None:
        """The seed's example: Ops can pause settlement; Marketing cannot."""
        policy = default_policy()
        holders = [agent for agent, actions in policy.permissions.items() if "pause_settlement" in actions]
        assert holders == ["ops"]

    def test_gates_and_high_impact_tools_are_all_there(self) -> None:
        """Seven gates plus money movement and credential change, each with roles and an expiry."""
        gates = default_policy().all_gates()
        assert set(gates) == {
            "market_entry",
            "pricing_policy_change",
            "compliance_change",
            "capital_commitment",
            "incident_severity",
            "settlement_policy_change",
            "budget_overrun",
            "money_movement",
            "credential_change",
        }
        assert all(g.approver_roles and g.expires_after_hours > 0 for g in gates.values())

    def test_approver_directory_matches_the_brief(self) -> None:
        """alice risk officer, bob cfo, carol and dave board, erin compliance, frank ops lead."""
        assert default_policy().approvers == {
            "alice": ["risk_officer"],
            "bob": ["cfo"],
            "carol": ["board"],
            "dave": ["board"],
            "erin": ["compliance_officer"],
            "frank": ["ops_lead"],
        }

    def test_open_thresholds_are_marked_as_assumptions(self) -> None:
        """Numbers the source leaves open carry an ASSUMPTION comment with a reason."""
        marks = [line for line in HELIOS_TEXT.splitlines() if "# ASSUMPTION:" in line]
        assert len(marks) >= 15
        assert all(len(line.split("# ASSUMPTION:", 1)[1].strip()) > 10 for line in marks)


class TestVersion:
    """A policy's version is the hash of its parsed content, not of its bytes."""

    def test_version_is_a_full_sha256_with_a_short_form(self) -> None:
        """64 hex characters, and a 16-character prefix."""
        policy = default_policy()
        assert len(policy.version) == 64
        int(policy.version, 16)
        assert policy.short_version == policy.version[:16]

    def test_same_content_same_version_whatever_the_formatting(self, tmp_path: Path) -> None:
        """Comments, key order and number spelling do not change the version."""
        reformatted = write(tmp_path, yaml.safe_dump(HELIOS, sort_keys=True, default_flow_style=True))
        assert load_policy(reformatted).version == default_policy().version

    def test_any_change_changes_the_version(self, tmp_path: Path) -> None:
        """One threshold moved by one unit gives another version."""

        def bump(d: dict[str, Any]) -> None:
            d["limits"]["pricing"]["surge_cap_pct"] = 26

        assert load_policy(write(tmp_path, mutated(bump))).version != default_policy().version


def _unknown_key(d: dict[str, Any]) -> None:
    d["limits"]["pricing"]["surge_cap"] = 10


def _wrong_type(d: dict[str, Any]) -> None:
    d["budgets"]["agents"]["research"]["money_usd"] = "a lot"


def _missing(d: dict[str, Any]) -> None:
    del d["gates"]["market_entry"]["approver_roles"]


def _unknown_action(d: dict[str, Any]) -> None:
    d["permissions"]["finance"].append("set_prices")


def _unknown_agent(d: dict[str, Any]) -> None:
    d["permissions"]["treasury"] = ["notify_customers"]


def _band_inverted(d: dict[str, Any]) -> None:
    d["limits"]["pricing"]["floor"] = 300


def _quorum_impossible(d: dict[str, Any]) -> None:
    d["gates"]["compliance_change"]["approvals_required"] = 3


def _agent_as_approver(d: dict[str, Any]) -> None:
    d["approvers"]["finance"] = ["cfo"]


def _bad_list_item(d: dict[str, Any]) -> None:
    d["limits"]["claims"]["approved"][2] = {"text": "not a string"}


def _tier_above_max(d: dict[str, Any]) -> None:
    d["limits"]["credit_tiers"]["severe"] = 999


def _tool_unknown_action(d: dict[str, Any]) -> None:
    d["high_impact_tools"]["money_movement"]["actions"] = ["wire_money"]


def _gate_named_draft_review(d: dict[str, Any]) -> None:
    """A gate under the assistive lane's name: approving an escalation there would authorize nothing (it is taken
    for a draft, and the agent, in no assistive lane, never proposes a final), and --amend would be accepted."""
    d["gates"]["draft_review"] = d["gates"]["market_entry"]
    d["tiers"] = {"actions": {"set_price": {"tier": "always-human", "gate": "draft_review"}}}


class TestPolicyErrors:
    """A malformed policy file gives ONE line: '<file>: <a.b[2].c>: <what is wrong>'."""

    @pytest.mark.parametrize(
        ("change", "field", "says"),
        [
            pytest.param(_unknown_key, "limits.pricing.surge_cap", "unknown key", id="unknown-key"),
            pytest.param(_wrong_type, "budgets.agents.research.money_usd", "'a lot'", id="wrong-type"),
            pytest.param(_missing, "gates.market_entry.approver_roles", "required key is missing", id="missing"),
            pytest.param(_unknown_action, "permissions.finance", "unknown action 'set_prices'", id="unknown-action"),
            pytest.param(_unknown_agent, "permissions.treasury", "unknown agent", id="unknown-agent"),
            pytest.param(_band_inverted, "limits.pricing", "floor 300 must be below ceiling 250", id="band-inverted"),
            pytest.param(_quorum_impossible, "gates.compliance_change", "needs 3 distinct approvers", id="quorum"),
            pytest.param(_agent_as_approver, "approvers.finance", "an agent cannot be an approver", id="agent"),
            pytest.param(_bad_list_item, "limits.claims.approved[2]", "valid string", id="list-index"),
            pytest.param(_tier_above_max, "limits", "exceeds max_credit_usd", id="tier-above-max"),
            pytest.param(
                _tool_unknown_action, "high_impact_tools.money_movement.actions", "'wire_money'", id="tool-action"
            ),
            pytest.param(_gate_named_draft_review, "gates.draft_review", "reserved", id="reserved-gate"),
        ],
    )
    def test_malformed_field(
        self, tmp_path: Path, change: Callable[[dict[str, Any]], None], field: str, says: str
    ) -> None:
        """The message names the file, the field path and what is wrong, on one line."""
        path = write(tmp_path, mutated(change))
        with pytest.raises(PolicyError) as caught:
            load_policy(path)
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"{path}: {field}: ")
        assert says in message
        assert caught.value.field_path == field

    def test_yaml_syntax_error_names_the_line(self, tmp_path: Path) -> None:
        """A YAML syntax error gives its line and column."""
        path = write(tmp_path, "name: helios\nbudgets:\n  period: [month\n")
        with pytest.raises(PolicyError) as caught:
            load_policy(path)
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"{path}: line 4, column 1: invalid YAML")

    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that does not exist is a PolicyError too, not an OSError traceback."""
        with pytest.raises(PolicyError, match=r"nope\.yaml: \(file\): No such file"):
            load_policy(tmp_path / "nope.yaml")

    def test_not_a_mapping(self, tmp_path: Path) -> None:
        """A YAML list at the top is refused with a clear reason."""
        with pytest.raises(PolicyError, match=r": \(root\): expected a mapping of policy sections, got list"):
            load_policy(write(tmp_path, "- a\n- b\n"))

    def test_several_problems_report_the_first_and_a_count(self, tmp_path: Path) -> None:
        """Two problems: the first is shown, the rest counted."""

        def two(d: dict[str, Any]) -> None:
            _unknown_key(d)
            _wrong_type(d)

        with pytest.raises(PolicyError, match=r"\(and 1 more problem\)$"):
            load_policy(write(tmp_path, mutated(two)))


class TestVersionOfACopy:
    """A policy changed through model_copy is versioned by its new content, never by the original's."""

    def test_copy_with_an_update_gets_the_hash_of_its_content(self) -> None:
        original = default_policy()
        limits = original.limits.model_copy(update={"max_discount_pct": original.limits.max_discount_pct + 1})
        changed = original.model_copy(update={"limits": limits})
        assert changed.version != original.version
        assert changed.version == parse_policy(changed.model_dump(mode="json"), source="copy").version
        assert original.model_copy().version == original.version
