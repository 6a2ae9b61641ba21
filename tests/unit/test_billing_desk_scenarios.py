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
