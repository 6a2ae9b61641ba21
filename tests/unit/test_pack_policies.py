"""A policy and a scenario belong to one pack: the pack's agents, actions, gates (as data), world and observation
kinds, and the policy sections the pack adds (the billing desk's eligibility tables, compiled at load). Anything of
another pack is one line naming the pack it belongs to."""

from __future__ import annotations

import copy
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalition.domain import catalog
from coalition.governance import PolicyError, default_policy
from coalition.governance.policy import parse_policy
from coalition.scenarios import ScenarioError, parse_scenario
from coalition.scenarios.spec import list_library, load_scenario

pytestmark = pytest.mark.unit

DESK = catalog().pack("billing-desk")
assert DESK.policy is not None
DESK_POLICY: dict[str, Any] = yaml.safe_load(DESK.policy.read_text(encoding="utf-8"))
DESK_SCENARIO = Path(str(DESK.scenarios)) / "outage-compensation.yaml"


def desk_policy(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(DESK_POLICY)
    change(data)
    return data


def policy_error(data: dict[str, Any]) -> str:
    with pytest.raises(PolicyError) as problem:
        parse_policy(data, source="desk.yaml")
    message = str(problem.value)
    assert "\n" not in message
    return message


def scenario_error(text: str) -> str:
    with pytest.raises(ScenarioError) as problem:
        parse_scenario(text, file="s.yaml")
    message = str(problem.value)
    assert "\n" not in message
    return message


class TestPackPolicies:
    def test_the_desks_default_policy_is_its_packs_with_gates_as_data(self) -> None:
        policy = default_policy("billing-desk")
        assert policy.pack_name == "billing-desk"
        assert set(policy.all_gates()) == {
            "case_escalation",
            "refund_approval",
            "cancellation_approval",
            "budget_overrun",
        }
        assert policy.gate("case_escalation").approver_roles == ["cx_lead", "compliance_officer"]
        assert "pricing" not in policy.limits.model_dump()  # no price band: the desk sells no energy

    def test_the_helios_policy_keeps_its_version(self) -> None:
        """Gates as data and `pack:` change nothing a recorded run depends on: the document's hash."""
        assert default_policy().version == "fe99c15d7c5f149b6fcab9bea057dc864d86bc4dcf32c59580a0420143a7b4e7"
        assert "pack" not in default_policy().model_dump()

    def test_gate_parameters_stay_numbers_in_a_policy_rebuilt_from_its_json_dump(self) -> None:
        """A gate's parameters are data (extra keys); dumped as JSON they are decimal text, and read back they are
        numbers again, or the capital and incident rules would compare a number with a string and never fire."""
        rebuilt = parse_policy(default_policy().model_dump(mode="json"), source="dump")
        assert rebuilt.gate("capital_commitment").model_extra == {"threshold_usd": Decimal("100000")}
        assert rebuilt.gate("incident_severity").model_extra == {"severity_bound": Decimal("3")}
        assert rebuilt.gate("market_entry").approver_roles == ["board"]

    def test_a_rule_on_another_packs_action_is_refused(self) -> None:
        data = desk_policy(lambda d: d["rules"][0]["actions"].append("issue_credit"))
        assert policy_error(data) == (
            "desk.yaml: rules[0].actions: action 'issue_credit' belongs to pack helios, not billing-desk"
        )

    def test_another_packs_state_fields_are_unknown(self) -> None:
        """What governance learns of Helios's market (`state.prices`, its pack's state field) is Helios's: a desk
        rule reading it is refused at load, naming the fields a desk policy may read."""
        data = desk_policy(lambda d: d["rules"][0].update(when="size(state.prices) > 0"))
        message = policy_error(data)
        assert message.startswith("desk.yaml: rules[0].when: unknown state field state.prices (known: ")
        assert "credits, spend, open_escalations" in message

    def test_a_permission_for_another_packs_action_is_refused(self) -> None:
        data = desk_policy(lambda d: d["permissions"]["billing"].append("request_model_budget"))
        assert "permissions.billing: action 'request_model_budget' belongs to pack helios" in policy_error(data)

    def test_a_budget_for_another_packs_agent_is_refused(self) -> None:
        data = desk_policy(lambda d: d["budgets"]["agents"].update(finance={"money_usd": 1}))
        assert "budgets.agents.finance: unknown agent of pack helios, not billing-desk" in policy_error(data)

    def test_an_unknown_pack_is_one_line(self) -> None:
        data = desk_policy(lambda d: d.update(pack="billing_desk"))
        assert "desk.yaml: pack: is not installed (installed packs: billing-desk, helios)" in policy_error(data)

    def test_a_section_the_pack_does_not_add_is_an_unknown_key(self) -> None:
        data = desk_policy(lambda d: d.update(eligibilty=d["eligibility"]))
        assert policy_error(data) == "desk.yaml: eligibilty: unknown key (pack billing-desk adds: eligibility)"
        helios = yaml.safe_load(Path(str(catalog().pack("helios").policy)).read_text(encoding="utf-8"))
        helios["eligibility"] = DESK_POLICY["eligibility"]
        assert "eligibility: unknown key" in policy_error(helios)

    def test_the_packs_section_is_checked_at_load(self) -> None:
        """A misspelt limit in an eligibility table is one line when the policy loads, not at the first case."""

        def misspell(d: dict[str, Any]) -> None:
            d["eligibility"]["fee_waiver"][0]["when"] = "case.days_late <= limits.fees.grace_dayz"

        message = policy_error(desk_policy(misspell))
        assert message.startswith("desk.yaml: eligibility.fee_waiver[0].when: "), message

    def test_a_desk_policy_without_rules_is_refused(self) -> None:
        """The rules built into the code are Helios's: another pack's policy writes its own."""
        data = desk_policy(lambda d: d.pop("rules"))
        assert "rules: a policy of pack billing-desk writes its rules (none are built in)" in policy_error(data)

    def test_limits_are_typed_by_their_own_packs_model(self) -> None:
        """Helios's typed limit sections (its price band's checks) are Helios's: the desk's `limits.pricing` is a
        named limit like any other, while a Helios policy's inverted band is still refused where it is."""
        data = desk_policy(lambda d: d["limits"].update(pricing={"floor": 300, "ceiling": 250, "surge_cap_pct": 1}))
        assert parse_policy(data, source="desk.yaml").limits.model_dump()["pricing"]["floor"] == 300
        helios = copy.deepcopy(default_policy().document)
        helios["limits"]["pricing"].update(floor=300, ceiling=250)
        assert "limits.pricing: floor 300 must be below ceiling 250" in policy_error(helios)

    def test_the_budget_overrun_gate_is_required(self) -> None:
        data = desk_policy(lambda d: d["gates"].pop("budget_overrun"))
        assert "gates: 'budget_overrun' is required" in policy_error(data)


class TestPackScenarios:
    def test_a_desk_scenario_is_validated_by_the_desks_world(self) -> None:
        scenario = load_scenario("billing-desk-outage-compensation")
        assert scenario.pack_name == "billing-desk"
        assert type(scenario.world).__name__ == "DeskSpec"
        assert scenario.load_policy().pack_name == "billing-desk"
        assert scenario.events[0].recipients == ["billing", "outreach"]  # the desk's routing of `outage`

    def test_the_library_holds_every_packs_scenarios(self) -> None:
        names = list_library()
        assert "price-spike" in names  # the default pack's names are unchanged
        assert {n for n in names if n.startswith("billing-desk-")} >= {
            "billing-desk-outage-compensation",
            "billing-desk-regulator-escalation",
            "billing-desk-retention-wave",
            "billing-desk-disputes-across-channels",
        }

    def test_another_packs_event_kind_is_refused(self) -> None:
        doc = yaml.safe_load(DESK_SCENARIO.read_text(encoding="utf-8"))
        doc["events"].append({"day": 1, "kind": "meter.outage", "data": {"region": "TX"}})
        message = scenario_error(yaml.safe_dump(doc))
        assert message.startswith(
            "s.yaml: events[3].kind: unknown observation kind 'meter.outage' (kinds of pack billing-desk: case, outage"
        ), message

    def test_an_event_to_another_packs_agent_is_refused(self) -> None:
        doc = yaml.safe_load(DESK_SCENARIO.read_text(encoding="utf-8"))
        doc["events"][0]["to"] = ["ops"]
        message = scenario_error(yaml.safe_dump(doc))
        assert message.startswith("s.yaml: events[0].to[0]: agent 'ops' is not one of pack billing-desk's"), message

    def test_a_desk_scenario_naming_a_helios_policy_is_refused(self, tmp_path: Path) -> None:
        doc = yaml.safe_load(DESK_SCENARIO.read_text(encoding="utf-8"))
        helios = Path(str(catalog().pack("helios").policy))
        doc["policy"] = str(helios)
        with pytest.raises(ScenarioError) as problem:
            parse_scenario(yaml.safe_dump(doc), file="s.yaml", source=tmp_path / "s.yaml")
        assert str(problem.value).startswith(
            "s.yaml: policy: policy 'helios' governs pack helios, not this scenario's pack billing-desk"
        )

    def test_a_bad_desk_world_names_its_field(self) -> None:
        doc = yaml.safe_load(DESK_SCENARIO.read_text(encoding="utf-8"))
        doc["world"]["accounts"][1]["tenure_months"] = -1
        message = scenario_error(yaml.safe_dump(doc))
        assert message.startswith("s.yaml: world.accounts[1].tenure_months: "), message
