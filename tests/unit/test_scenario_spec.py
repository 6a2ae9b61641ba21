"""The scenario file format: the shipped library loads, and every kind of mistake is one exact line."""

from __future__ import annotations

import copy
import shutil
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalition.domain import catalog
from coalition.scenarios import ScenarioError, list_library, load_scenario, parse_scenario, scenario_hash
from coalition.scenarios.spec import data_models, generated_kinds, observation_kinds

AGENTS = ", ".join(catalog().agent_names)  # every installed pack's agents (helios and billing-desk)

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "name": "tiny",
    "description": "A small scenario for tests.",
    "seed": 7,
    "start": date(2025, 3, 3),
    "days": 10,
    "world": {
        "cash_usd": 100000,
        "regions": [
            {"code": "TX", "name": "Texas", "active": True, "base_price": 58, "supply_mw": 10, "demand_mw": 12},
            {"code": "CA", "name": "California", "base_price": 72, "supply_mw": 10, "demand_mw": 12},
        ],
    },
    "events": [
        {
            "day": 1,
            "kind": "supply.shock",
            "data": {"region": "TX", "supply_change_pct": -40, "demand_change_pct": 5, "cause": "heat"},
        },
        {"day": 2, "kind": "capital.need", "data": {"amount_usd": 750000, "purpose": "storage"}},
    ],
    "board": {
        "decisions": [
            {
                "match": {
                    "gate": "market_entry",
                    "agent": "finance",
                    "action": "enter_market",
                    "args": {"region": "CA"},
                },
                "decision": "approve",
                "approvers": [{"name": "carol", "role": "board"}],
                "reason": "go",
            }
        ]
    },
    "expectations": [
        {
            "id": "entry",
            "description": "escalated",
            "count": {"match": {"kind": "verdict", "gate": "market_entry"}, "min": 1},
        }
    ],
}


def write(tmp_path: Path, doc: Any, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def error_of(tmp_path: Path, doc: Any) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, doc))
    message = str(info.value)
    assert "\n" not in message
    return message


def edited(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at a dotted path (list indexes as numbers) replaced."""
    doc = copy.deepcopy(BASE)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = doc
    for part in parents:
        node = node[part]
    node[last] = value
    return doc


class TestLibrary:
    """The shipped scenarios load by bare name and hash stably."""

    def test_helios_launch_loads_by_name(self) -> None:
        """A bare name resolves in packs/helios/scenarios/."""
        scenario = load_scenario("helios-launch")
        assert scenario.name == "helios-launch"
        assert scenario.days == 90
        assert scenario.last_day == 89
        assert scenario.policy_path is None
        assert scenario.load_policy().name == "helios"
        assert "helios-launch" in list_library()

    def test_helios_launch_covers_the_issue(self) -> None:
        """Every observation kind the issue asks for is scheduled, and every gate has a scripted answer but one."""
        scenario = load_scenario("helios-launch")
        kinds = {e.kind for e in scenario.events}
        assert kinds >= {
            "market.signals",
            "supply.shock",
            "growth.goal",
            "meter.outage",
            "customer.complaints",
            "meter.restored",
            "capital.need",
            "budget.pressure",
            "settlement.mismatch",
            "regulatory.change",
        }
        gates = {d.match.gate for d in scenario.board.decisions}
        assert "settlement_policy_change" not in gates
        assert {d.decision for d in scenario.board.decisions} == {"approve", "reject"}
        assert any(len(d.approvers) >= 2 for d in scenario.board.decisions)

    def test_hash_ignores_formatting_but_not_content(self, tmp_path: Path) -> None:
        """Same parsed content → same hash; one changed value → another hash."""
        a = load_scenario(write(tmp_path, BASE, "a.yaml"))
        b = parse_scenario(yaml.safe_dump(BASE, sort_keys=True, default_flow_style=True))
        c = load_scenario(write(tmp_path, edited("seed", 8), "c.yaml"))
        assert scenario_hash(a) == scenario_hash(b)
        assert scenario_hash(a) != scenario_hash(c)

    def test_relative_policy_resolves_next_to_the_file(self, tmp_path: Path) -> None:
        """policy: is a path relative to the scenario file."""
        shipped = resources.files("coalition.packs.helios").joinpath("policies/helios.yaml")
        (tmp_path / "policies").mkdir()
        shutil.copyfile(str(shipped), tmp_path / "policies" / "mine.yaml")
        scenario = load_scenario(write(tmp_path, {**BASE, "policy": "policies/mine.yaml"}, "ok.yaml"))
        assert scenario.policy_path == tmp_path / "policies" / "mine.yaml"
        assert scenario.load_policy().name == "helios"

    def test_the_policy_checked_at_load_is_the_one_a_run_governs_with(self, tmp_path: Path) -> None:
        """Read and compiled once per loaded scenario (a run's second parse was ~5% of a process); a copy that
        names another policy file reads that one."""
        shipped = resources.files("coalition.packs.helios").joinpath("policies/helios.yaml")
        (tmp_path / "policies").mkdir()
        shutil.copyfile(str(shipped), tmp_path / "policies" / "mine.yaml")
        shutil.copyfile(str(shipped), tmp_path / "policies" / "other.yaml")
        scenario = load_scenario(write(tmp_path, {**BASE, "policy": "policies/mine.yaml"}, "ok.yaml"))
        assert scenario.load_policy() is scenario.load_policy()
        assert parse_scenario(yaml.safe_dump(BASE)).load_policy().name == "helios"  # the pack's default, once too
        other = scenario.model_copy(update={"policy": "policies/other.yaml"})
        assert other.load_policy() is not scenario.load_policy()
        assert other.load_policy().name == "helios"

    def test_helpers(self) -> None:
        """date_of gives midnight UTC; events_on keeps file order; recipients default from the kind."""
        scenario = parse_scenario(yaml.safe_dump(BASE))
        assert scenario.date_of(2) == datetime(2025, 3, 5, tzinfo=UTC)
        assert [e.kind for e in scenario.events_on(1)] == ["supply.shock"]
        assert scenario.events[0].recipients == ["finance", "ops"]


class TestErrors:
    """Each kind of mistake gives one line: file, path in the document, problem."""

    def test_yaml_syntax_error_names_the_line(self, tmp_path: Path) -> None:
        """A broken YAML document points at the line and column."""
        message = error_of(tmp_path, "name: tiny\nseed: [1, 2\ndays: 3\n")
        # libyaml's wording ("did not find expected …") or the pure-Python parser's ("expected …, but got ':'")
        assert message.startswith("bad.yaml: line 3, column 5: invalid YAML: ")
        assert "expected ',' or ']'" in message

    def test_top_level_must_be_a_mapping(self, tmp_path: Path) -> None:
        """A list at the top is not a scenario."""
        assert error_of(tmp_path, "- 1\n- 2\n") == "bad.yaml: (top): expected a mapping of scenario keys, got list"

    def test_unknown_top_level_key(self, tmp_path: Path) -> None:
        """Typos are not ignored; the allowed keys are listed."""
        assert error_of(tmp_path, {**BASE, "colour": "blue"}) == (
            "bad.yaml: colour: unknown key (allowed: name, description, seed, start, days, pack, policy, world, "
            "events, board, expectations, agents)"
        )

    def test_unknown_nested_key(self, tmp_path: Path) -> None:
        """An unknown key inside an event names the event."""
        doc = edited("events.1.colour", "blue")
        assert error_of(tmp_path, doc) == (
            "bad.yaml: events[1].colour: unknown key (allowed: day, kind, subject, to, data, text, document)"
        )

    def test_missing_key(self, tmp_path: Path) -> None:
        """A required key that is absent."""
        doc = copy.deepcopy(BASE)
        del doc["seed"]
        assert error_of(tmp_path, doc) == "bad.yaml: seed: is required"

    def test_bad_date(self, tmp_path: Path) -> None:
        """A date that does not exist."""
        assert error_of(tmp_path, edited("start", "2025-13-01")) == (
            "bad.yaml: start: '2025-13-01' is not a valid date (use YYYY-MM-DD)"
        )

    def test_event_day_after_the_last_day(self, tmp_path: Path) -> None:
        """Days run 0..days-1."""
        assert (
            error_of(tmp_path, edited("events.1.day", 120)) == "bad.yaml: events[1].day: 120 is after the last day (9)"
        )

    def test_negative_day(self, tmp_path: Path) -> None:
        """Days start at 0."""
        assert error_of(tmp_path, edited("events.0.day", -1)) == (
            "bad.yaml: events[0].day: input should be greater than or equal to 0 (got -1)"
        )

    def test_days_out_of_range(self, tmp_path: Path) -> None:
        """A scenario has at least one day."""
        assert (
            error_of(tmp_path, edited("days", 0))
            == "bad.yaml: days: input should be greater than or equal to 1 (got 0)"
        )

    def test_unknown_observation_kind(self, tmp_path: Path) -> None:
        """Kinds come from docs/design.md."""
        message = error_of(tmp_path, edited("events.0.kind", "alien.invasion"))
        assert message.startswith(
            "bad.yaml: events[0].kind: unknown observation kind 'alien.invasion' (kinds of pack helios: "
        )

    def test_generated_kind_cannot_be_scheduled(self, tmp_path: Path) -> None:
        """market.snapshot comes from the world every day."""
        assert error_of(tmp_path, edited("events.0.kind", "market.snapshot")) == (
            "bad.yaml: events[0].kind: 'market.snapshot' is emitted by the world itself and cannot be scheduled"
        )

    def test_missing_event_data(self, tmp_path: Path) -> None:
        """Each kind carries the data of its row in docs/design.md."""
        assert error_of(tmp_path, edited("events.1.data", {"purpose": "storage"})) == (
            "bad.yaml: events[1].data.amount_usd: is required"
        )

    def test_unknown_region_in_event(self, tmp_path: Path) -> None:
        """Event regions must be in the world."""
        assert error_of(tmp_path, edited("events.0.data.region", "ZZ")) == (
            "bad.yaml: events[0].data.region: unknown region 'ZZ' (the world has CA, TX)"
        )

    def test_unknown_agent_in_to(self, tmp_path: Path) -> None:
        """Recipients are the five agents."""
        assert error_of(tmp_path, edited("events.0.to", ["finance", "treasury"])) == (
            f"bad.yaml: events[0].to[1]: unknown agent 'treasury' (agents: {AGENTS})"
        )

    def test_unknown_agent_in_settings(self, tmp_path: Path) -> None:
        """Per-agent settings name real agents."""
        assert error_of(tmp_path, {**BASE, "agents": {"hr": {"model": "offline"}}}) == (
            f"bad.yaml: agents.hr: unknown agent 'hr' (agents: {AGENTS})"
        )

    def test_unknown_model(self, tmp_path: Path) -> None:
        """Models are offline or provider-qualified."""
        assert error_of(tmp_path, {**BASE, "agents": {"finance": {"model": "gpt"}}}) == (
            "bad.yaml: agents.finance.model: unknown model 'gpt' (use offline, openai:<model> or anthropic:<model>)"
        )

    def test_unknown_action_in_board(self, tmp_path: Path) -> None:
        """Board matches use the executor's action names."""
        assert error_of(tmp_path, edited("board.decisions.0.match.action", "buy_bitcoin")) == (
            "bad.yaml: board.decisions[0].match.action: unknown action 'buy_bitcoin' "
            "(see the action table of docs/design.md)"
        )

    def test_unknown_action_in_expectation(self, tmp_path: Path) -> None:
        """Expectation matches use the executor's action names."""
        doc = edited("expectations.0.count.match.action", "set_prices")
        assert error_of(tmp_path, doc) == (
            "bad.yaml: expectations[0].count.match.action: unknown action 'set_prices' "
            "(see the action table of docs/design.md)"
        )

    @pytest.mark.parametrize(
        ("change", "says"),
        [
            (
                {"document": {"kind": "news_article", "title": "t", "text": "prose"}, "text": "also text"},
                "events[0].text: an event with a document carries its prose in document.text, not text",
            ),
            (
                {"document": {"kind": "tweet", "title": "t", "text": "prose"}},
                "events[0].document.kind: 'tweet' is not one of",
            ),
            ({"document": {"kind": "news_article", "title": "t"}}, "events[0].document.text: is required"),
        ],
    )
    def test_a_bad_document_is_one_line(self, tmp_path: Path, change: dict[str, Any], says: str) -> None:
        doc = copy.deepcopy(BASE)
        doc["events"][0].update(change)
        assert says in error_of(tmp_path, doc)

    @pytest.mark.parametrize(
        ("decision", "says"),
        [
            ({"decision": "amend"}, "board.decisions[0].args: an amend names the arguments it changes"),
            ({"decision": "approve", "args": {"price": 1}}, "only an amend changes arguments"),
            (  # another action's argument: refused at run time, the draft left to expire — now at load
                {"decision": "amend", "args": {"price": 70}},
                "board.decisions[0].args.price: 'price' is not an argument of enter_market (expected region, ",
            ),
        ],
    )
    def test_an_amend_names_its_arguments_and_only_an_amend_has_any(
        self, tmp_path: Path, decision: dict[str, Any], says: str
    ) -> None:
        doc = copy.deepcopy(BASE)
        doc["board"]["decisions"][0].update(decision)
        assert says in error_of(tmp_path, doc)

    def test_bad_decision(self, tmp_path: Path) -> None:
        """approve, reject or amend (an assistive draft), nothing else."""
        assert error_of(tmp_path, edited("board.decisions.0.decision", "maybe")) == (
            "bad.yaml: board.decisions[0].decision: 'maybe' is not one of 'approve', 'reject' or 'amend'"
        )

    def test_unknown_gate(self, tmp_path: Path) -> None:
        """Gates come from the policy."""
        message = error_of(tmp_path, edited("board.decisions.0.match.gate", "vibes"))
        assert message.startswith("bad.yaml: board.decisions[0].match.gate: unknown gate 'vibes' (gates: market_entry,")

    def test_unknown_approver(self, tmp_path: Path) -> None:
        """Approvers come from the policy's directory."""
        assert error_of(tmp_path, edited("board.decisions.0.approvers.0.name", "zoe")) == (
            "bad.yaml: board.decisions[0].approvers[0].name: 'zoe' is not in the policy's approver directory "
            "(alice, bob, carol, dave, erin, frank)"
        )

    def test_approver_without_the_role(self, tmp_path: Path) -> None:
        """An approver acts only in a role they hold."""
        assert error_of(tmp_path, edited("board.decisions.0.approvers.0.role", "cfo")) == (
            "bad.yaml: board.decisions[0].approvers[0].role: 'carol' does not hold the role 'cfo' (holds board)"
        )

    def test_same_approver_twice(self, tmp_path: Path) -> None:
        """Four-eyes needs two people, not one person twice."""
        doc = edited("board.decisions.0.approvers", [{"name": "carol", "role": "board"}] * 2)
        assert error_of(tmp_path, doc) == (
            "bad.yaml: board.decisions[0].approvers[1].name: 'carol' is listed twice (four-eyes needs distinct people)"
        )

    def test_expectation_needs_exactly_one_check(self, tmp_path: Path) -> None:
        """count, order or world: one of them."""
        doc = edited("expectations.0.world", {"path": "cash_usd", "op": ">=", "value": 0})
        assert (
            error_of(tmp_path, doc)
            == "bad.yaml: expectations[0]: give exactly one of count, order, world (got count, world)"
        )

    def test_duplicate_expectation_id(self, tmp_path: Path) -> None:
        """Ids identify results."""
        doc = copy.deepcopy(BASE)
        doc["expectations"].append(copy.deepcopy(doc["expectations"][0]))
        assert error_of(tmp_path, doc) == "bad.yaml: expectations[1].id: 'entry' is used twice"

    def test_description_is_one_paragraph(self, tmp_path: Path) -> None:
        """A blank line inside the description."""
        assert error_of(tmp_path, edited("description", "One.\n\nTwo.")) == (
            "bad.yaml: description: must be one paragraph (no blank lines)"
        )

    def test_policy_not_found(self, tmp_path: Path) -> None:
        """A policy path that does not exist."""
        message = error_of(tmp_path, {**BASE, "policy": "nope.yaml"})
        assert message == f"bad.yaml: policy: 'nope.yaml' not found (looked for {tmp_path / 'nope.yaml'})"

    def test_file_not_found(self, tmp_path: Path) -> None:
        """A path to nothing."""
        with pytest.raises(ScenarioError) as info:
            load_scenario(tmp_path / "missing.yaml")
        assert str(info.value) == f"missing.yaml: file not found ({tmp_path / 'missing.yaml'})"

    def test_unknown_library_name(self) -> None:
        """A bare name that is not in the library lists what is."""
        with pytest.raises(ScenarioError) as info:
            load_scenario("helios-lunch")
        assert str(info.value).startswith("helios-lunch.yaml: no such scenario in the library (available: ")

    def test_bad_world_value(self, tmp_path: Path) -> None:
        """World values are checked too (a reserve ratio above one)."""
        doc = edited("world.settlement", {"window": "T+1", "reserve_ratio": 1.5})
        assert error_of(tmp_path, doc) == (
            "bad.yaml: world.settlement.reserve_ratio: input should be less than or equal to 1 (got 1.5)"
        )

    def test_the_world_has_no_price_band_of_its_own(self, tmp_path: Path) -> None:
        """The band is the policy's limits.pricing; a second copy in the world is refused, saying where to go."""
        doc = edited("world.pricing_policy", {"floor": 20, "ceiling": 250, "surge_cap_pct": 25})
        assert error_of(tmp_path, doc) == (
            "bad.yaml: world.pricing_policy: the price band is the policy's limits.pricing (one band for "
            "governance, agents and KPIs): remove this key, or point `policy:` at a policy file with another band"
        )


def event_error(tmp_path: Path, kind: str, data: dict[str, Any]) -> str:
    """The load error of BASE with its first event replaced by one of `kind` with `data`."""
    return error_of(tmp_path, edited("events.0", {"day": 1, "kind": kind, "data": data}))


SHOCK: dict[str, Any] = {"region": "TX", "supply_change_pct": -40}
DISPUTE: dict[str, Any] = {
    "case_id": "case-1",
    "customer_id": "TX-B0001",
    "channel": "phone",
    "kind": "outage_credit",
    "amount_usd": 40,
    "facts": {"lost_kwh": 1500},
}


class TestEventData:
    """Event data is checked against the agents' own payload models at load time: one line, never a crash mid-run."""

    def test_not_a_number(self, tmp_path: Path) -> None:
        """A word where a number belongs."""
        assert event_error(tmp_path, "supply.shock", {**SHOCK, "supply_change_pct": "steep"}) == (
            "bad.yaml: events[0].data.supply_change_pct: input should be a valid decimal (got 'steep')"
        )

    @pytest.mark.parametrize(("value", "shown"), [(float("nan"), "nan"), (float("inf"), "inf")])
    def test_not_a_finite_number(self, tmp_path: Path, value: float, shown: str) -> None:
        """YAML's .nan and .inf are numbers no money or percentage can be."""
        assert event_error(tmp_path, "supply.shock", {**SHOCK, "demand_change_pct": value}) == (
            f"bad.yaml: events[0].data.demand_change_pct: input should be a finite number (got {shown})"
        )

    def test_number_out_of_range(self, tmp_path: Path) -> None:
        """Supply cannot fall by more than all of it."""
        assert event_error(tmp_path, "supply.shock", {**SHOCK, "supply_change_pct": -150}) == (
            "bad.yaml: events[0].data.supply_change_pct: input should be greater than or equal to -100 (got -150)"
        )

    def test_wrong_container(self, tmp_path: Path) -> None:
        """A single account where a list is expected."""
        trades = {"accounts": "acct-1", "pattern": "wash trading", "value_usd": 900}
        assert event_error(tmp_path, "suspicious.trades", trades) == (
            "bad.yaml: events[0].data.accounts: input should be a valid list (got 'acct-1')"
        )

    def test_not_one_of_the_allowed_words(self, tmp_path: Path) -> None:
        """A regulatory status outside allowed / restricted / prohibited."""
        change = {"region": "CA", "status": "maybe", "effective": "2025-03-10"}
        assert event_error(tmp_path, "regulatory.change", change) == (
            "bad.yaml: events[0].data.status: 'maybe' is not one of 'allowed', 'restricted' or 'prohibited'"
        )

    def test_not_a_date(self, tmp_path: Path) -> None:
        """An effective date that is not a date."""
        change = {"region": "CA", "status": "allowed", "effective": "soon"}
        assert event_error(tmp_path, "regulatory.change", change) == (
            "bad.yaml: events[0].data.effective: 'soon' is not a valid date (use YYYY-MM-DD)"
        )

    def test_bad_value_inside_a_list(self, tmp_path: Path) -> None:
        """A customer of an outage with negative energy lost; the path names the list item."""
        outage = {"region": "TX", "hours": 4, "customers": [{"id": "TX-B0001", "lost_kwh": -5}]}
        assert event_error(tmp_path, "meter.outage", outage) == (
            "bad.yaml: events[0].data.customers[0].lost_kwh: input should be greater than or equal to 0 (got -5)"
        )

    def test_unreadable_dispute_fact(self, tmp_path: Path) -> None:
        """Dispute facts are raw for ops (unreadable = verification missing) but must be right in a scenario."""
        assert event_error(tmp_path, "dispute", {**DISPUTE, "facts": {"lost_kwh": "lots"}}) == (
            "bad.yaml: events[0].data.facts.lost_kwh: input should be a valid decimal (got 'lots')"
        )

    def test_fractional_dispute_fact(self, tmp_path: Path) -> None:
        """Days late are whole days."""
        facts = {"days_late": 4.5, "waivers_last_12_months": 0}
        assert event_error(tmp_path, "dispute", {**DISPUTE, "kind": "late_fee", "facts": facts}) == (
            "bad.yaml: events[0].data.facts.days_late: input should be a valid integer, got a number with a "
            "fractional part (got 4.5)"
        )

    def test_nan_from_yaml_text(self, tmp_path: Path) -> None:
        """The review's case as written by hand: `.nan` in the file itself."""
        text = yaml.safe_dump(edited("events.0", {"day": 1, "kind": "supply.shock", "data": SHOCK}), sort_keys=False)
        text = text.replace("supply_change_pct: -40", "supply_change_pct: .nan")
        assert ".nan" in text
        assert error_of(tmp_path, text) == (
            "bad.yaml: events[0].data.supply_change_pct: input should be a finite number (got nan)"
        )

    def test_every_schedulable_kind_has_a_model(self) -> None:
        """No kind a scenario may schedule goes unchecked."""
        assert set(data_models()) == set(observation_kinds()) - generated_kinds()

    def test_the_library_values_stay_as_written(self) -> None:
        """Checking does not rewrite the data (the observation and its evidence id are what the file says)."""
        scenario = load_scenario("billing-disputes")
        assert scenario.events[0].data["amount_usd"] == 35
        assert isinstance(scenario.events[0].data["amount_usd"], int)


class TestAgentSettings:
    """A model left out is "not set"; an explicit one is a choice."""

    def test_model_left_out_is_none(self) -> None:
        """So that COALITION_LLM, not a silent "offline", applies to the agent."""
        scenario = parse_scenario(yaml.safe_dump({**BASE, "agents": {"finance": {}, "ops": {"model": "offline"}}}))
        assert (scenario.agents["finance"].model, scenario.agents["ops"].model) == (None, "offline")
