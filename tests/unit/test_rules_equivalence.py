"""The Helios rules written as CEL expressions in the policy decide exactly as the rules built into the code did:
same outcome, reasons, rule ids, gate, approvers, quorum and expiry, over generated proposals and states.

The built-in rules govern a policy document that writes no `rules:` (every policy recorded before rules were
data), so the same shipped document with and without its `rules:` section is compared.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalition.bus.messages import ActionProposed
from coalition.domain import catalog, load_pack
from coalition.governance import GovernanceState, Policy, default_policy, evaluate, parse_policy
from coalition.governance.rules.expression import rules_by_action
from coalition.packs.helios.learned import PricingBand, RegionPrice

pytestmark = pytest.mark.unit

AGENTS = load_pack("helios").agent_names  # the Helios policy's agents (the bus no longer lists agents)


def _kind(annotation: Any) -> str:
    if annotation is Decimal:
        return "number"
    if annotation is int:
        return "int"
    if annotation is bool:
        return "bool"
    return "str_list" if "list" in str(annotation) else "str"


# Each action's arguments and their kinds, from the pack's one argument model.
SHAPES = {
    name: {f.alias or n: _kind(f.annotation) for n, f in action.args.model_fields.items()}
    for name, action in catalog().actions.items()
}
ACTIONS = sorted(SHAPES)
WRITTEN: Policy = default_policy()
BUILT_IN: Policy = parse_policy({k: v for k, v in WRITTEN.document.items() if k != "rules"}, source="built-in")
NOW = datetime(2025, 3, 10, tzinfo=UTC)
REGIONS = ["CA", "TX", "AZ", "NY", "MA", "FL", "ZZ", "NV"]
CLAIMS = WRITTEN.limits.claims
PHRASES = [*CLAIMS.approved, *CLAIMS.banned, "GUARANTEED   Savings", "Best rates in town", "risk-free!", ""]

cents = st.decimals(min_value=Decimal(0), max_value=Decimal(600_000), places=2, allow_nan=False, allow_infinity=False)
small = st.decimals(min_value=Decimal(0), max_value=Decimal(400), places=2, allow_nan=False, allow_infinity=False)


@st.composite
def numbers(draw: st.DrawFn, kind: str, name: str) -> Any:
    """A number as an agent or a model may write it: int, float or numeric text."""
    if kind == "int" or name in ("severity",):
        top = 5 if name == "severity" else 1_000_000
        return draw(st.integers(min_value=1 if name == "severity" else 0, max_value=top))
    value = draw(small if name in ("price", "discount_pct", "floor", "ceiling", "surge_cap_pct") else cents)
    if name == "discount_pct":
        value = min(value, Decimal(100))
    if name == "reserve_ratio":
        value = draw(st.sampled_from([Decimal("0.1"), Decimal("0.25"), Decimal(1)]))
    form = draw(st.sampled_from(["int", "float", "str", "decimal-str"]))
    if form == "int" and value == value.to_integral_value():
        return int(value)
    if form == "float":
        return float(value)
    if form == "str":
        return str(value)
    return f"{value:f}"


@st.composite
def proposals(draw: st.DrawFn) -> ActionProposed:
    action = draw(st.sampled_from([*ACTIONS, "launch_campaign", "set_price", "issue_credit", "enter_market"]))
    agent = draw(st.sampled_from(AGENTS))
    if draw(st.integers(0, 9)) < 8:  # mostly an agent allowed to do it, so the limits and gates are reached
        allowed = [a for a, actions in WRITTEN.permissions.items() if action in actions]
        agent = draw(st.sampled_from(allowed)) if allowed else agent
    args: dict[str, Any] = {}
    for name, kind in SHAPES[action].items():
        if kind in ("number", "int"):
            args[name] = draw(numbers(kind, name))
        elif kind == "bool":
            args[name] = draw(st.booleans())
        elif kind == "str_list":
            args[name] = draw(st.lists(st.sampled_from(PHRASES[:-1]), max_size=3))
        elif name == "region":
            args[name] = draw(st.sampled_from(REGIONS))
        elif name == "status":
            args[name] = draw(st.sampled_from(["allowed", "restricted", "prohibited"]))
        elif name == "window":
            args[name] = draw(st.sampled_from(["T+1", "T+3"]))
        elif name == "effective":
            args[name] = draw(st.sampled_from(["2025-04-01", "soon"]))
        elif name in ("copy", "message"):
            args[name] = draw(st.sampled_from(PHRASES[:-1])) + draw(st.sampled_from(["", " today", " — risk-FREE"]))
        elif name == "customer_id":
            args[name] = draw(st.sampled_from(["C-1", "C-2", "C-3"]))
        else:
            args[name] = draw(st.sampled_from(["x", "incident-1", "Some text"]))
    if action == "change_pricing_policy" and draw(st.booleans()):
        args["ceiling"] = args["floor"] if draw(st.booleans()) else "1000"
    mutation = draw(st.integers(0, 19))
    if mutation == 0 and args:  # a missing argument
        args.pop(draw(st.sampled_from(sorted(args))))
    elif mutation == 1:  # an unknown argument
        args["extra"] = 1
    return ActionProposed(proposal_id="p", agent=agent, action=action, args=args, rationale="generated")


@st.composite
def states(draw: st.DrawFn) -> GovernanceState:
    state = GovernanceState.initial(WRITTEN).at(NOW)
    prices = {}
    for region in draw(st.lists(st.sampled_from(REGIONS), max_size=5, unique=True)):
        base = draw(st.one_of(st.none(), small))
        prices[region] = RegionPrice(draw(st.one_of(st.none(), small)), base)
    pricing = None
    if draw(st.booleans()):
        floor = draw(st.decimals(min_value=Decimal(1), max_value=Decimal(100), places=2))
        pct = draw(st.sampled_from([Decimal(0), Decimal(10), Decimal(25), Decimal("12.5"), Decimal(40), Decimal(7)]))
        pricing = PricingBand(floor, floor + draw(small) + 1, pct)
    jurisdictions = {
        r: draw(st.sampled_from(["allowed", "restricted", "prohibited"]))
        for r in draw(st.lists(st.sampled_from(REGIONS), max_size=3, unique=True))
    }
    credits = {c: draw(small) for c in draw(st.lists(st.sampled_from(["C-1", "C-2"]), max_size=2, unique=True))}
    learned = {"prices": prices, "pricing": pricing, "jurisdictions": jurisdictions}
    return dataclasses.replace(state, learned=learned, credits=credits)


def _decision(verdict: Any) -> tuple[Any, ...]:
    return (
        verdict.outcome,
        verdict.reasons,
        verdict.rule_ids,
        verdict.gate,
        verdict.approver_roles,
        verdict.approvals_required,
        verdict.expires_after,
    )


class TestWrittenRulesDecideAsTheBuiltInOnes:
    def test_the_shipped_policy_writes_its_rules(self) -> None:
        assert len(WRITTEN.rules) >= 15
        assert not BUILT_IN.rules

    @settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(proposal=proposals(), state=states())
    def test_same_verdict(self, proposal: ActionProposed, state: GovernanceState) -> None:
        assert _decision(evaluate(proposal, state, WRITTEN)) == _decision(evaluate(proposal, state, BUILT_IN))

    @pytest.mark.slow
    @settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(proposal=proposals(), state=states())
    def test_same_verdict_at_length(self, proposal: ActionProposed, state: GovernanceState) -> None:
        """The same search, longer (`make test-slow`): the suite's 800 examples stay quick."""
        assert _decision(evaluate(proposal, state, WRITTEN)) == _decision(evaluate(proposal, state, BUILT_IN))


class TestBothLayoutsDecideAlike:
    """The written rules run over a flat environment (`args__price`, cheaper to hand to CEL) and fall back to the
    nested one (`args.price`) for anything unusual; both must reach the same findings, reasons included."""

    def test_every_shipped_action_runs_flat(self) -> None:
        rules = rules_by_action(WRITTEN, ACTIONS)
        assert rules
        assert all(r.runs_flat for r in rules.values())

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(proposal=proposals(), state=states())
    def test_same_findings(self, proposal: ActionProposed, state: GovernanceState) -> None:
        rules = rules_by_action(WRITTEN, ACTIONS).get(proposal.action)
        if rules is None:
            return
        flat = rules.flat_findings(proposal, state)
        if flat is not None:
            assert flat == rules.nested_findings(proposal, state)

    def test_the_flat_layout_decides_the_usual_proposal(self) -> None:
        """A fallback that always fired would pass the test above and make nothing faster."""
        state = GovernanceState.initial(WRITTEN).at(NOW)
        proposal = ActionProposed(
            proposal_id="p",
            agent="finance",
            action="commit_capital",
            args={"amount_usd": "250000.50", "purpose": "m"},
            rationale="r",
        )
        rules = rules_by_action(WRITTEN, ACTIONS)["commit_capital"]
        assert rules.flat_findings(proposal, state) == rules.nested_findings(proposal, state) != []

    def test_a_rule_reading_args_whole_runs_nested(self) -> None:
        doc = {**WRITTEN.document, "rules": [*WRITTEN.document["rules"]]}
        doc["rules"].append(
            {"id": "limit.any", "actions": ["commit_capital"], "when": "size(args) > 5", "outcome": "deny",
             "reason": "too many arguments"}
        )  # fmt: skip
        policy = parse_policy(doc, source="whole-args")
        rules = rules_by_action(policy, ACTIONS)["commit_capital"]
        proposal = ActionProposed(
            proposal_id="p",
            agent="finance",
            action="commit_capital",
            args={"amount_usd": 10, "purpose": "m"},
            rationale="r",
        )
        assert not rules.runs_flat
        assert rules.flat_findings(proposal, GovernanceState.initial(policy).at(NOW)) is None
        assert evaluate(proposal, GovernanceState.initial(policy).at(NOW), policy).outcome == "allow"

    def test_a_reason_looping_over_a_let_runs_flat(self) -> None:
        """The banned-claims reason reads `hits` inside a filter: flat, it is computed once, as a variable."""
        proposal = ActionProposed(
            proposal_id="p",
            agent="marketing",
            action="launch_campaign",
            args={
                "campaign_id": "c",
                "region": "CA",
                "channel": "email",
                "copy": "Buy now",
                "claims": [CLAIMS.approved[0], f"  {CLAIMS.banned[1].upper()}  today"],
                "budget_usd": 5000,
                "discount_pct": 10,
            },
            rationale="r",
        )
        state = GovernanceState.initial(WRITTEN).at(NOW)
        rules = rules_by_action(WRITTEN, ACTIONS)["launch_campaign"]
        flat = rules.flat_findings(proposal, state)
        assert flat is not None
        assert flat == rules.nested_findings(proposal, state)
        assert flat[0].reason.endswith(f"contains the banned phrase {CLAIMS.banned[1]!r}")


class TestNumbersInReasonsAsTheBuiltInRulesShowThem:
    """CEL computes in doubles, the built-in rules in decimals: a reason shows the decimal a double stands for (its
    error beyond 15 significant digits dropped), so both say the same amount to the cent."""

    @staticmethod
    def _surge_reasons(base: str, price: int, pricing: PricingBand | None) -> tuple[str, str]:
        state = GovernanceState.initial(WRITTEN).at(NOW)
        learned = {"prices": {"CA": RegionPrice(Decimal(base), Decimal(base))}, "pricing": pricing, "jurisdictions": {}}
        state = dataclasses.replace(state, learned=learned)
        proposal = ActionProposed(
            proposal_id="p", agent="finance", action="set_price", args={"region": "CA", "price": price}, rationale="r"
        )
        written, built_in = evaluate(proposal, state, WRITTEN), evaluate(proposal, state, BUILT_IN)
        assert written.rule_ids == built_in.rule_ids == ("limit.price.surge_cap",)
        return written.reasons[0], built_in.reasons[0]

    def test_a_surge_cap_on_a_half_cent_rounds_half_even(self) -> None:
        """30.42 × 1.25 is 38.025 (38.02 half-even); as doubles, 38.025000000000006 (which rounded to 38.03)."""
        written, built_in = self._surge_reasons("30.42", 40, None)
        assert written == built_in == "price 40.00 exceeds surge cap: base 30.42 × 1.25 = 38.02"

    def test_a_surge_factor_shows_its_decimal(self) -> None:
        """1 + 57/100 is 1.5699999999999998 as a double, 1.57 as a decimal."""
        band = PricingBand(Decimal(1), Decimal(300), Decimal(57))
        written, built_in = self._surge_reasons("10", 20, band)
        assert written == built_in == "price 20.00 exceeds surge cap: base 10.00 × 1.57 = 15.70"


class TestTheFlatEnvironmentLivesOn:
    """The flat layout keeps its CEL environment between proposals (a state value that did not change is not handed
    over again): one per thread, so threads deciding the same action at once cannot read each other's arguments."""

    def test_threads_deciding_one_action_at_once(self) -> None:
        state = GovernanceState.initial(WRITTEN).at(NOW)
        learned = {"prices": {"CA": RegionPrice(Decimal(60), Decimal(60))}, "pricing": None, "jurisdictions": {}}
        state = dataclasses.replace(state, learned=learned)
        cases = {price: evaluate(_set_price(price), state, WRITTEN) for price in (70, 98, 10)}  # allow, cap, floor
        assert [v.outcome for v in cases.values()] == ["allow", "deny", "deny"]
        wrong: list[tuple[int, Any]] = []

        def decide(price: int) -> None:
            proposal = _set_price(price)
            for _ in range(1500):
                verdict = evaluate(proposal, state, WRITTEN)
                if verdict != cases[price]:
                    wrong.append((price, verdict))

        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
        try:
            threads = [threading.Thread(target=decide, args=(price,)) for price in cases]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(interval)
        assert wrong == []

    def test_a_state_value_that_changed_is_handed_over_again(self) -> None:
        """Same proposal, the region's base price changing between calls: each verdict reads its own state."""
        proposal = _set_price(80)
        base = GovernanceState.initial(WRITTEN).at(NOW)
        for price, outcome in [(60, "deny"), (70, "allow"), (60, "deny"), (60.0, "deny"), (70, "allow")]:
            learned = {"prices": {"CA": RegionPrice(Decimal(price), Decimal(price))}, "jurisdictions": {}}
            state = dataclasses.replace(base, learned={**learned, "pricing": None})
            assert evaluate(proposal, state, WRITTEN).outcome == outcome


def _set_price(price: int) -> ActionProposed:
    return ActionProposed(
        proposal_id="p", agent="finance", action="set_price", args={"region": "CA", "price": price}, rationale="r"
    )
