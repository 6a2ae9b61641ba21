"""One schema per action: governance checks arguments with the same pydantic model the executor validates with,
so whatever governance lets through (allowed or escalated to a human) the executor accepts."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from coalition.bus.messages import ActionProposed
from coalition.domain import Action, ArgumentProblem, catalog
from coalition.governance import GovernanceState, Policy, default_policy, evaluate
from coalition.scenarios.errors import ExecutionRefused
from coalition.scenarios.executor import validate_args

pytestmark = pytest.mark.unit

POLICY: Policy = default_policy()
STATE = GovernanceState.initial(POLICY).at(datetime(2025, 3, 10, 9, tzinfo=UTC))
ACTIONS: list[Action] = sorted(catalog().actions.values(), key=lambda a: a.name)

# Values an agent, a model or an attacker might put in any argument: valid ones of every kind beside the edges
# where the two schemas used to disagree (0, a non-date string, whitespace, numeric strings, booleans).
POOL: list[Any] = [
    *(0, 1, 2, 5, -1, 25, 60, 100000, 0.5, 0.1, 1e300, "0", "12.5", "-3", "nan", "", " ", "x", "TX", "CA", "AZ"),
    *("*", "T+1", "T+3", "allowed", "prohibited", "2025-01-01", "2025-13-01", "soon", True, False, None, [], ["a"]),
    *([1], {}),
]
JSON_VALUES = st.one_of(
    st.sampled_from(POOL),
    st.integers(min_value=-10, max_value=10**7),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-5, max_value=10**6).map(float),
    st.text(max_size=5),
)


@functools.cache
def _fitting(action: Action) -> dict[str, list[Any]]:
    """Per argument, the pool values its field alone accepts (so that whole proposals often get through)."""
    out: dict[str, list[Any]] = {}
    for name, field in action.args.model_fields.items():
        annotated = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
        adapter: TypeAdapter[Any] = TypeAdapter(annotated)
        fitting = []
        for value in POOL:
            try:
                adapter.validate_python(value)
            except ValidationError:
                continue
            fitting.append(value)
        out[field.alias or name] = fitting
    return out


@st.composite
def proposals(draw: st.DrawFn, action: Action) -> ActionProposed:
    fitting = _fitting(action)
    args: dict[str, Any] = {}
    for name, values in fitting.items():
        if draw(st.integers(0, 19)) == 0:  # now and then an argument is missing
            continue
        fits = values and draw(st.integers(0, 9)) > 1
        args[name] = draw(st.sampled_from(values) if fits else JSON_VALUES)
    if draw(st.integers(0, 19)) == 0:
        args["extra"] = draw(JSON_VALUES)
    agent = draw(st.sampled_from(action.proposers))
    return ActionProposed(proposal_id="p-1", agent=agent, action=action.name, args=args, rationale="property")


@pytest.mark.parametrize("action", ACTIONS, ids=[a.name for a in ACTIONS])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_what_governance_lets_through_the_executor_accepts(action: Action, data: st.DataObject) -> None:
    """Allowed or escalated ⇒ the executor's validation accepts the same arguments; denied for bad arguments ⇒
    the executor refuses them too (the same one-line problem)."""
    proposal = data.draw(proposals(action))
    verdict = evaluate(proposal, STATE, POLICY)
    if verdict.outcome != "deny":
        validate_args(proposal.action, proposal.args)  # raises ExecutionRefused if the schemas disagreed
    elif verdict.rule_ids == ("args.invalid",):
        with pytest.raises(ExecutionRefused) as refused:
            validate_args(proposal.action, proposal.args)
        assert refused.value.detail == f"invalid args: {verdict.reasons[0]}"


@pytest.mark.parametrize(
    ("agent", "action", "args", "reason"),
    [
        ("finance", "enter_market", {"region": "AZ", "sequence": 0, "investment_usd": 10}, "args.sequence"),
        ("ops", "issue_credit", {"customer_id": "c", "incident_id": "i", "tier": "t", "amount_usd": 0}, "amount"),
        ("finance", "commit_capital", {"amount_usd": 0, "purpose": "p"}, "args.amount_usd"),
        ("finance", "transfer_funds", {"amount_usd": 0, "destination": "d", "reason": "r"}, "args.amount_usd"),
        (
            "legal",
            "publish_jurisdiction_pack",
            {"region": "AZ", "status": "allowed", "obligations": [], "effective": "soon", "material": False},
            "args.effective must be a date (YYYY-MM-DD), got 'soon'",
        ),
        (
            "ops",
            "open_incident",
            {"incident_id": " ", "kind": "k", "severity": 2, "regions": [], "affected_customers": 1, "summary": "s"},
            "args.incident_id must be a non-empty",
        ),
        ("finance", "set_price", {"region": "CA", "price": True}, "args.price must be a number, got bool"),
    ],
)
def test_the_old_disagreements_are_denied_with_one_line(
    agent: str, action: str, args: dict[str, Any], reason: str
) -> None:
    """What governance once let through and the executor then refused is now denied: args.invalid, one line
    naming the action, the argument and the problem."""
    proposal = ActionProposed(proposal_id="p-1", agent=agent, action=action, args=args, rationale="edge")
    verdict = evaluate(proposal, STATE, POLICY)
    assert (verdict.outcome, verdict.rule_ids) == ("deny", ("args.invalid",))
    (line,) = verdict.reasons
    assert line.startswith(f"{action}: args.")
    assert reason in line
    assert "\n" not in line


def test_a_problem_names_action_argument_and_problem() -> None:
    """The contract's error carries its parts as fields."""
    action = catalog().actions["set_price"]
    with pytest.raises(ArgumentProblem) as problem:
        action.parse({"region": "CA", "price": "abc"})
    assert (problem.value.action, problem.value.name) == ("set_price", "price")
    assert str(problem.value) == "set_price: args.price must be a number, got 'abc'"


@pytest.mark.parametrize(
    ("agent", "action", "args", "reason"),
    [
        # just under the 100,000 capital gate: rounding it afterwards would have committed 100,000.00 ungated
        ("finance", "commit_capital", {"amount_usd": 99999.999, "purpose": "p"}, "whole cents"),
        ("finance", "commit_capital", {"amount_usd": "99999.995", "purpose": "p"}, "whole cents"),
        ("finance", "set_price", {"region": "TX", "price": 64.255}, "whole cents"),
    ],
)
def test_an_amount_is_never_rounded_after_governance_saw_it(
    agent: str, action: str, args: dict[str, Any], reason: str
) -> None:
    """Sub-cent amounts are refused by both (args.invalid), never decided on one value and applied at another."""
    proposal = ActionProposed(proposal_id="p-1", agent=agent, action=action, args=args, rationale="edge")
    verdict = evaluate(proposal, STATE, POLICY)
    assert (verdict.outcome, verdict.rule_ids) == ("deny", ("args.invalid",))
    assert reason in verdict.reasons[0]
    with pytest.raises(ExecutionRefused, match="whole cents"):
        validate_args(action, args)


def test_a_number_is_applied_as_governance_compared_it() -> None:
    """Rules compare numbers as doubles: a discount of 20.0000000000000001 passes a 20% limit as 20.0, so the
    executor applies 20.0 — the value governance allowed — not the digits beyond a double."""
    args = {
        "campaign_id": "c",
        "region": "TX",
        "channel": "email",
        "copy": "Buy directly from local solar and wind producers",
        "claims": ["Buy directly from local solar and wind producers"],
        "budget_usd": 100,
        "discount_pct": "20.0000000000000001",
    }
    proposal = ActionProposed(proposal_id="p-1", agent="marketing", action="launch_campaign", args=args, rationale="e")
    assert evaluate(proposal, STATE, POLICY).outcome == "allow"
    applied = catalog().actions["launch_campaign"].parse(args)
    assert str(applied.discount_pct) == "20.0"  # type: ignore[attr-defined]
