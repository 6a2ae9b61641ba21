"""Properties of governance over generated proposals: limits hold, budgets hold, evaluate is pure."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalition.bus.messages import (
    ActionAuthorized,
    ActionExecuted,
    ActionProposed,
    ApprovalGranted,
    EscalationResolved,
    Observation,
    VerdictIssued,
)
from coalition.governance import GovernanceState, Policy, default_policy, evaluate
from coalition.governance.money import from_double, to_decimal, usd
from coalition.governance.rules.budgets import overrun
from coalition.governance.state import _replace

pytestmark = pytest.mark.unit

POLICY: Policy = default_policy()
LIMITS = POLICY.limits
NOW = datetime(2025, 3, 10, tzinfo=UTC)
REGIONS = ["CA", "TX", "AZ", "NY", "MA", "FL", "ZZ"]
BASES = {"CA": 60, "TX": 50, "AZ": 45, "NY": 120, "MA": 150, "FL": 40}
CLAIM_POOL = [*LIMITS.claims.approved, "Best rates in town", "Risk-free switching", "Our cheapest energy yet"]
COPY_POOL = ["Power your home from the farm next door.", "Guaranteed savings every month!", "No fees ever. Really."]

money = st.decimals(min_value=Decimal(0), max_value=Decimal(400_000), places=2, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=Decimal(1), max_value=Decimal(400), places=2, allow_nan=False, allow_infinity=False)


def start_state() -> GovernanceState:
    snapshot = Observation(
        kind="market.snapshot", data={"prices": {r: {"price": b, "base_price": b} for r, b in BASES.items()}}
    )
    return GovernanceState.initial(POLICY).at(NOW).apply(snapshot)


def propose(pid: str, agent: str, action: str, args: dict[str, Any]) -> ActionProposed:
    return ActionProposed(proposal_id=pid, agent=agent, action=action, args=args, rationale="generated")


@st.composite
def limited_proposals(draw: st.DrawFn) -> ActionProposed:
    """Proposals that a hard limit may stop (prices, campaigns, credits, market entries), with random values."""
    kind = draw(st.sampled_from(["price", "campaign", "credit", "entry"]))
    region = draw(st.sampled_from(REGIONS))
    if kind == "price":
        return propose("p", "finance", "set_price", {"region": region, "price": str(draw(prices))})
    if kind == "campaign":
        args = {
            "campaign_id": "c",
            "region": region,
            "channel": "email",
            "copy": draw(st.sampled_from(COPY_POOL)),
            "claims": draw(st.lists(st.sampled_from(CLAIM_POOL), max_size=3)),
            "budget_usd": 100,
            "discount_pct": draw(st.integers(0, 60)),
        }
        return propose("p", "marketing", "launch_campaign", args)
    if kind == "credit":
        args = {"customer_id": draw(st.sampled_from(["C-1", "C-2"])), "incident_id": "i", "tier": "t"}
        return propose("p", "ops", "issue_credit", {**args, "amount_usd": str(draw(money) / 1000)})
    return propose("p", "finance", "enter_market", {"region": region, "sequence": 1, "investment_usd": 1000})


@st.composite
def prior_credits(draw: st.DrawFn) -> GovernanceState:
    """A start state in which some credits were already issued."""
    state = start_state()
    for i, amount in enumerate(draw(st.lists(st.integers(0, 250), max_size=3))):
        args = {"customer_id": "C-1", "incident_id": "i", "tier": "t", "amount_usd": amount}
        state = state.apply(
            ActionAuthorized(
                authorization_id=f"a{i}",
                proposal_id=f"c{i}",
                proposal_hash="h",
                agent="ops",
                action="issue_credit",
                args=args,
                idempotency_key=f"k{i}",
                basis="policy",
            )
        )
    return state


def breaks_a_hard_limit(p: ActionProposed, state: GovernanceState) -> str | None:
    """An independent statement of the hard limits (not the rules' code): which one p breaks, if any."""
    a = p.args
    if p.action == "set_price":
        price = to_decimal(a["price"])
        base = BASES.get(a["region"])
        if price < LIMITS.pricing.floor or price > LIMITS.pricing.ceiling:
            return "band"
        if base is None or price > Decimal(base) * (1 + LIMITS.pricing.surge_cap_pct / 100):
            return "surge cap"
    if p.action == "launch_campaign":
        text = " ".join([a["copy"], *a["claims"]]).casefold()
        if any(b.casefold() in text for b in LIMITS.claims.banned):
            return "banned claim"
        if any(c not in LIMITS.claims.approved for c in a["claims"]):
            return "unapproved claim"
        if a["discount_pct"] > LIMITS.max_discount_pct or a["region"] in LIMITS.jurisdictions.prohibited:
            return "discount or jurisdiction"
    if p.action == "issue_credit" and state.credited(a["customer_id"]) + to_decimal(a["amount_usd"]) > 250:
        return "credit"
    if p.action == "enter_market" and a["region"] not in LIMITS.jurisdictions.allowed:
        return "jurisdiction"
    return None


class TestHardLimitsHold:
    """Whatever is proposed, nothing ALLOWED crosses a hard limit."""

    @settings(max_examples=400, deadline=None)
    @given(p=limited_proposals(), state=prior_credits())
    def test_no_allowed_proposal_exceeds_a_hard_limit(self, p: ActionProposed, state: GovernanceState) -> None:
        """allow ⇒ within band, surge cap, claims library, discount, credit and jurisdiction limits."""
        verdict = evaluate(p, state, POLICY)
        broken = breaks_a_hard_limit(p, state)
        if verdict.allowed:
            assert broken is None, (p.args, verdict)
        if broken is not None:
            assert verdict.outcome == "deny"


# One step of a generated run: a proposal (agent, amount), an approval of the oldest open escalation,
# an execution report for the oldest authorization, or a day passing.
step = st.one_of(
    st.tuples(st.just("propose"), st.sampled_from(["research", "marketing", "legal"]), money),
    st.tuples(st.just("approve"), st.sampled_from(["bob", "carol", "dave", "research"]), st.just(Decimal(0))),
    st.tuples(st.just("execute"), st.sampled_from(["applied", "failed"]), st.just(Decimal(0))),
    st.tuples(st.just("day"), st.just(""), st.just(Decimal(0))),
)


class TestBudgetsHold:
    """Folding any sequence of proposals, approvals and executions: spend stays within the budget granted."""

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=st.lists(step, max_size=25))
    def test_spend_never_exceeds_budget_without_an_approved_escalation(self, steps: list[Any]) -> None:
        """committed (spent + reserved) ≤ budget + increases granted by approved escalations, every period."""
        state = start_state()
        now = NOW
        authorized: list[ActionAuthorized] = []
        granted: dict[tuple[str, str], Decimal] = {}
        for n, (kind, who, amount) in enumerate(steps):
            if kind == "propose":
                action = "run_experiment" if who == "marketing" else "commission_research"
                args: dict[str, Any] = {"topic": "t", "cost_usd": str(amount)}
                if action == "run_experiment":
                    args = {
                        "experiment_id": "e",
                        "hypothesis": "h",
                        "budget_usd": str(amount),
                        "metric": "m",
                        "stop_threshold": 1,
                    }
                p = propose(f"p{n}", who, action, args)
                verdict = evaluate(p, state, POLICY)
                state = state.apply(p).apply(
                    VerdictIssued(
                        proposal_id=p.proposal_id,
                        proposal_hash=p.proposal_hash,
                        agent=who,
                        action=action,
                        outcome=verdict.outcome,
                        reasons=list(verdict.reasons),
                        gate=verdict.gate,
                        approver_roles=list(verdict.approver_roles),
                        approvals_required=verdict.approvals_required,
                        expires_at=now + verdict.expires_after if verdict.expires_after else None,
                        policy_version=POLICY.version,
                    )
                )
                if verdict.allowed:
                    authorized.append(_authorize(p))
                    state = state.apply(authorized[-1])
            elif kind == "approve" and state.open_escalations():
                esc = state.open_escalations()[0]
                role = POLICY.approvers.get(who, ["none"])[0]
                state = state.apply(
                    ApprovalGranted(
                        proposal_id=esc.proposal_id,
                        proposal_hash=esc.proposal_hash,
                        approver=who,
                        role=role,
                        reason="ok",
                    )
                )
                esc = state.escalations[esc.proposal_id]
                if esc.status == "approved":
                    charged = to_decimal(esc.proposal.args.get("cost_usd", esc.proposal.args.get("budget_usd")))
                    limit = POLICY.budgets.agents[esc.agent].money_usd
                    over = overrun(state, esc.agent, limit, charged)
                    increase = usd(over) if over else None
                    state = state.apply(
                        EscalationResolved(
                            proposal_id=esc.proposal_id,
                            proposal_hash=esc.proposal_hash,
                            outcome="approved",
                            reason="ok",
                            budget_increase_usd=increase,
                        )
                    )
                    if increase:
                        key = (esc.agent, state.period_key())
                        granted[key] = granted.get(key, Decimal(0)) + Decimal(increase)
                    authorized.append(_authorize(esc.proposal))
                    state = state.apply(authorized[-1])
            elif kind == "execute" and authorized:
                auth = authorized.pop(0)
                state = state.apply(
                    ActionExecuted(
                        authorization_id=auth.authorization_id,
                        proposal_id=auth.proposal_id,
                        agent=auth.agent,
                        action=auth.action,
                        idempotency_key=auth.idempotency_key,
                        status=who,
                        detail="d",
                    )
                )
            elif kind == "day":
                now += timedelta(days=9)
                state = state.at(now)
            for agent, budget in POLICY.budgets.agents.items():
                for key in {k for k in (*state.spent, *state.reserved) if k[0] == agent}:
                    committed = state.spent.get(key, Decimal(0)) + state.reserved.get(key, Decimal(0))
                    assert committed <= budget.money_usd + granted.get(key, Decimal(0)), (key, committed)
                    assert state.increases.get(key, Decimal(0)) == granted.get(key, Decimal(0))
                    assert state.reserved.get(key, Decimal(0)) >= 0


def _authorize(p: ActionProposed) -> ActionAuthorized:
    return ActionAuthorized(
        authorization_id=f"a-{p.proposal_id}",
        proposal_id=p.proposal_id,
        proposal_hash=p.proposal_hash,
        agent=p.agent,
        action=p.action,
        args=p.args,
        idempotency_key=f"k-{p.proposal_id}",
        basis="policy",
    )


any_proposal = st.builds(
    propose,
    st.just("p"),
    st.sampled_from(["research", "finance", "marketing", "legal", "ops", "sales"]),
    st.sampled_from([*POLICY.permissions["finance"], *POLICY.permissions["ops"], "launch_campaign", "nope"]),
    st.dictionaries(
        st.sampled_from(["region", "price", "amount_usd", "severity", "cost_usd", "material", "claims", "copy"]),
        st.one_of(
            st.integers(-10, 10**6), st.text(max_size=8), st.booleans(), st.lists(st.text(max_size=5), max_size=2)
        ),
        max_size=6,
    ),
)


class TestEvaluateIsPure:
    """evaluate is a function of (proposal, state, policy) only."""

    @settings(max_examples=300, deadline=None)
    @given(p=st.one_of(any_proposal, limited_proposals()))
    def test_same_inputs_same_verdict_and_state_untouched(self, p: ActionProposed) -> None:
        """Twice the same verdict; the state compares equal to a deep copy taken before; never an exception."""
        state = start_state()
        before = copy.deepcopy(state)
        first = evaluate(p, state, POLICY)
        second = evaluate(p, state, POLICY)
        assert first == second
        assert state == before
        assert first.reasons
        assert first.outcome in ("allow", "deny", "escalate")

    def test_a_freshly_loaded_policy_gives_the_same_verdicts(self) -> None:
        """Another Policy object with the same content decides identically."""
        other = default_policy()
        assert other is not POLICY
        p = propose("p", "finance", "set_price", {"region": "CA", "price": 98})
        assert evaluate(p, start_state(), other) == evaluate(p, start_state(), POLICY)


class TestDoublesAsDecimals:
    """money.from_double: what a double computed by a rule's expression is shown as in a reason."""

    @pytest.mark.parametrize(
        ("double", "shown"),
        [
            (30.42 * 1.25, "38.025"),  # 38.025000000000006: the arithmetic's error is dropped
            (1.0 + 57.0 / 100.0, "1.57"),  # 1.5699999999999998
            (0.1 + 0.2, "0.3"),
            (38.025, "38.025"),  # at most 15 digits: as written
            (60.0, "60.0"),
            (123456789012345.67, "123456789012345.67"),  # beyond 10^12 left as it is: its cents are its own
            (1e300, "1E+300"),
        ],
    )
    def test_shown(self, double: float, shown: str) -> None:
        assert str(from_double(double)) == shown

    def test_money_rounds_half_even_after(self) -> None:
        assert usd(from_double(30.42 * 1.25)) == "38.02"
        assert usd(from_double(30.46 * 1.25)) == "38.08"  # 38.075 → 38.08 (half-even goes up from 7)
        # 998877537.59 × 1.9722 is 1969986279.634998 exactly; cut to 15 digits it became a half cent shown as .64
        assert usd(from_double(998877537.59 * 1.9722)) == "1969986279.63"


class TestJsonNumbersAsDecimals:
    """money.to_decimal of a JSON number with a fraction (a float): the decimal it is written as, within the bound."""

    @given(st.floats(allow_nan=True, allow_infinity=True))
    def test_a_float_reads_as_its_shortest_decimal_or_is_refused(self, value: float) -> None:
        """Any float, NaN, infinities and those near ±1e15 included: its repr as a Decimal when finite and at most
        1e15 in size, else ValueError (a float read through its binary expansion, Decimal(value), fails this)."""
        written = Decimal(str(value))
        if written.is_finite() and abs(written) <= Decimal("1e15"):
            read = to_decimal(value)
            assert (str(read), read.as_tuple()) == (str(written), written.as_tuple())
        else:
            with pytest.raises(ValueError, match="must be"):
                to_decimal(value)

    @pytest.mark.parametrize("value", [1e15, -1e15, 1e15 - 0.125, 0.1, -0.0, 5e-324])
    def test_at_the_bound_and_beside_it(self, value: float) -> None:
        assert str(to_decimal(value)) == str(Decimal(str(value)))
        for beyond in (1.0000000000000002e15, -1.0000000000000002e15):
            with pytest.raises(ValueError, match="between"):
                to_decimal(beyond)


class TestStateReplace:
    """The state's own replace (every message folded derives a new state with it) is dataclasses.replace."""

    def test_each_field_changed_alone_keeps_every_other(self) -> None:
        base = GovernanceState.initial(POLICY, run_id="run-1").at(NOW)
        for field in dataclasses.fields(GovernanceState):
            marker = object()
            assert _replace(base, **{field.name: marker}) == dataclasses.replace(base, **{field.name: marker})
        assert _replace(base) == base
        assert _replace(base) is not base

    def test_a_name_of_no_field_is_refused(self) -> None:
        with pytest.raises(TypeError, match="nope"):
            _replace(GovernanceState(), nope=1)
