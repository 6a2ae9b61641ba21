"""Every billing-desk scenario: its file is well formed, and the pack's agents and handlers meet each of its
proposal expectations (the drill: tests/unit/billing_desk_drill.py)."""

from __future__ import annotations

from typing import Any

import pytest
from billing_desk_drill import SCENARIOS, drill, load, matches

pytestmark = pytest.mark.unit

NAMES = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))


def test_the_library_has_at_least_four_scenarios_of_this_pack() -> None:
    assert len(NAMES) >= 4
    assert all(load(name)["pack"] == "billing-desk" for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_expectations_hold(name: str) -> None:
    doc = load(name)
    result = drill(doc)
    checked = 0
    for expectation in doc["expectations"]:
        count: dict[str, Any] | None = expectation.get("count")
        if count is None or count["match"]["kind"] != "proposal":
            continue  # governance's verdicts and the final world: checked by governed runs (tests/e2e)
        match = count["match"]
        seen = sum(1 for p in result.proposals if matches(p, match))
        assert seen == count["equals"], f"{expectation['id']}: {seen} proposals, expected {count['equals']}"
        checked += 1
    assert checked >= 5
    assert all(e.status == "applied" for e in result.executions), [e.detail for e in result.executions]


def test_outage_world_effects() -> None:
    result = drill(load("outage-compensation"))
    desk = result.desk.state
    assert desk.credits_usd == 300  # 5 × 60, the complaint did not pay twice
    assert desk.outreach == {"wave:OUT-1": ["O-202", "O-204", "O-201", "O-203", "O-205"]}


def test_escalations_record_their_trigger_in_the_world() -> None:
    result = drill(load("regulator-escalation"))
    assert result.desk.state.escalated_cases == {
        "C-4001": "escalation/regulatory.regulator_named",
        "C-4002": "escalation/regulatory.unauthorised_transfer",
        "C-4003": "escalation/sentiment.below_floor",
        "C-4004": "escalation/journey.too_long",
    }


def test_injected_instructions_change_no_decision_and_are_screened() -> None:
    """C-4005 carries injected instructions, C-4006 is its polite twin (same facts): the same decision, and the
    injected text never reaches a model unscreened."""
    result = drill(load("regulator-escalation"))
    by_case = {
        case: sorted(
            (p.action, {k: v for k, v in p.args.items() if k not in ("case_id", "account_id", "message")})
            for p in result.proposals
            if p.args.get("case_id") == case
        )
        for case in ("C-4005", "C-4006")
    }
    assert by_case["C-4005"] == by_case["C-4006"] == [("notify_customer", {"rule": "fee_waiver/not_eligible"})]
    screened = [r for r in result.control if type(r).__name__ == "ContentScreened"]
    assert screened, "the customer's text was not screened"
    assert any(getattr(r, "verdict", None) == "flagged" for r in screened)


CHANNELS = ("phone", "chat", "email", "app")
WORDING = frozenset({"message"})


def variant(doc: dict[str, Any], index: int) -> dict[str, Any]:
    """As `coalition consistency` varies a scenario: seed + index, each case through another channel, up to two
    days later (never past the last day)."""
    events = []
    for n, event in enumerate(doc["events"]):
        if event["kind"] != "case":
            events.append(event)
            continue
        data = dict(event["data"])
        data["channel"] = CHANNELS[(CHANNELS.index(data["channel"]) + index + n) % len(CHANNELS)]
        events.append({**event, "day": min(doc["days"] - 1, event["day"] + (index + n) % 3), "data": data})
    events.sort(key=lambda e: e["day"])
    return {**doc, "seed": doc["seed"] + index, "events": events}


def decisions_by_case(doc: dict[str, Any]) -> dict[str, list[str]]:
    """Each case (or outage) → its proposals without wording, sorted."""
    out: dict[str, list[str]] = {}
    for p in drill(doc).proposals:
        case = str(p.args.get("case_id") or p.args.get("outage_id") or p.args.get("account_id"))
        args = {k: v for k, v in p.args.items() if k not in WORDING}
        out.setdefault(case, []).append(f"{p.agent} {p.action} {sorted(args.items())}")
    return {case: sorted(items) for case, items in out.items()}


@pytest.mark.parametrize("name", ["disputes-across-channels", "regulator-escalation", "retention-wave"])
def test_pass_k_is_100_percent_across_channels_and_days(name: str) -> None:
    """pass^4: every case gets the same decisions in four variants (channels, days and seeds changed)."""
    doc = load(name)
    runs = [decisions_by_case(variant(doc, index)) for index in range(4)]
    cases = {case for run in runs for case in run}
    assert len(cases) >= 6
    differing = {case for case in cases if any(run.get(case) != runs[0].get(case) for run in runs[1:])}
    assert differing == set()
    assert any(variant(doc, 1)["events"][i] != doc["events"][i] for i in range(len(doc["events"])))


def test_a_policy_brief_carrying_tables_changes_the_agents_decisions() -> None:
    """The agents take their tables from a `policy.brief` that carries them (a run under another policy file),
    and a brief whose tables do not compile is rejected as unusable input, one line, naming the path."""
    import yaml

    from coalition.agents.base import AgentStepContext
    from coalition.agents.narrator import Narrator
    from coalition.agents.offline_model import OfflineChatModel
    from coalition.agents.testing import Envelopes
    from coalition.bus.clock import IdFactory
    from coalition.bus.messages import ActionProposed
    from coalition.packs.billing_desk.agents import BillingAgent
    from coalition.packs.billing_desk.rules import default_policy_text
    from coalition.packs.billing_desk.world import Desk, DeskSpec

    doc = load("disputes-across-channels")
    desk = Desk.from_spec(DeskSpec.model_validate(doc["world"]))
    case = next(e for e in doc["events"] if e["data"]["case_id"] == "C-1005")  # a verified 400 USD overcharge

    def credit_under(policy: dict[str, Any]) -> tuple[list[Any], list[str]]:
        agent = BillingAgent(Narrator(OfflineChatModel(seed=1), agent="billing"))
        env = Envelopes()
        inbox = [
            env.observation("policy.brief", policy, to=["billing"]),
            env.observation("accounts.snapshot", desk.snapshot(), to=["billing"]),
            env.observation("case", case["data"], to=["billing"], text=case["text"]),
        ]
        ctx = AgentStepContext(agent="billing", superstep=1, sim_time=env.sim_time, ids=IdFactory("1", "agent:billing"))
        out = agent.run(inbox, ctx)
        credits = [
            m.message.args["amount_usd"]
            for m in out.messages
            if isinstance(m.message, ActionProposed) and m.message.action == "credit_account"
        ]
        return credits, [r.reason for r in out.rejected]

    policy = yaml.safe_load(default_policy_text())
    assert credit_under(policy) == ([150.0], [])
    policy["limits"]["max_credit_usd"] = 90
    assert credit_under(policy) == ([90.0], [])
    policy["eligibility"]["billing_error"][1]["when"] = "case.overcharge_usd > limits.nope"
    credits, rejected = credit_under(policy)
    assert credits == [150.0]  # a new agent: the tables in force (the default) stay
    assert len(rejected) == 1
    assert "eligibility.billing_error[1].when: unknown name limits.nope" in rejected[0]


def test_a_case_about_an_action_settled_days_ago_is_answered_the_same_day() -> None:
    """The outage complaint moved to the last day (as a consistency variant moves it): its credit was applied on
    day 1, so the answer has nothing to wait for and is proposed at once (it was parked until a step that never
    came: the complaint went unanswered and pass^4 of outage-compensation was 67 %)."""
    doc = load("outage-compensation")
    doc["events"] = [{**e, "day": 3} if e["kind"] == "case" else e for e in doc["events"]]
    result = drill(doc)
    answers = [p for p in result.proposals if p.action == "notify_customer"]
    assert [(p.args["case_id"], p.args["rule"]) for p in answers] == [("C-2001", "outage_tier/major")]
    assert sum(1 for p in result.proposals if p.action == "credit_account") == 5  # no second credit
