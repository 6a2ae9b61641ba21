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
        count: dict[str, Any] = expectation["count"]
        match = count["match"]
        assert match["kind"] == "proposal", expectation["id"]
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
