"""A table of proposals and the verdict the Helios policy must give each, rule by rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coalition.bus.messages import ActionAuthorized, ActionExecuted, ActionProposed, EscalationResolved, Observation
from coalition.governance import GovernanceState, Policy, default_policy, evaluate
from coalition.governance.escalation import Escalation

pytestmark = pytest.mark.unit

POLICY: Policy = default_policy()
NOW = datetime(2025, 3, 10, 9, tzinfo=UTC)

APPROVED = ["Buy directly from local solar and wind producers", "Every trade is recorded and auditable"]


def proposal(agent: str, action: str, pid: str = "p-1", **args: Any) -> ActionProposed:
    return ActionProposed(proposal_id=pid, agent=agent, action=action, args=args, rationale="because the table says")


def base_state() -> GovernanceState:
    snapshot = Observation(
        kind="market.snapshot",
        data={"prices": {"CA": {"price": 60, "base_price": 60}, "TX": {"price": 52.5, "base_price": 50}}},
    )
    return GovernanceState.initial(POLICY).at(NOW).apply(snapshot)


def executed(
    state: GovernanceState, agent: str, action: str, pid: str, outcome: str = "applied", **args: Any
) -> GovernanceState:
    """The state after governance authorized an action and the executor reported it."""
    auth = ActionAuthorized(
        authorization_id=f"a-{pid}",
        proposal_id=pid,
        proposal_hash="h",
        agent=agent,
        action=action,
        args=args,
        idempotency_key=f"k-{pid}",
        basis="policy",
    )
    done = ActionExecuted(
        authorization_id=f"a-{pid}",
        proposal_id=pid,
        agent=agent,
        action=action,
        idempotency_key=f"k-{pid}",
        status=outcome,  # type: ignore[arg-type]
        detail="done",
    )
    return state.apply(auth).apply(done)


def campaign(**over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "campaign_id": "c-1",
        "region": "CA",
        "channel": "email",
        "copy": "Power your home from the farm down the road.",
        "claims": list(APPROVED),
        "budget_usd": 5000,
        "discount_pct": 10,
    }
    args.update(over)
    return args


def entry(region: str = "CA", investment: float = 100000) -> dict[str, Any]:
    return {"region": region, "sequence": 1, "investment_usd": investment}


def pack(material: bool, region: str = "NY", status: str = "allowed") -> dict[str, Any]:
    return {
        "region": region,
        "status": status,
        "obligations": ["disclose fees"],
        "effective": "2025-04-01",
        "material": material,
    }


def incident(severity: int) -> dict[str, Any]:
    return {
        "incident_id": "inc-1",
        "kind": "meter_outage",
        "severity": severity,
        "regions": ["CA"],
        "affected_customers": 120,
        "summary": "meters down",
    }


# (agent, action, args, outcome, first rule id, gate)
TABLE: list[Any] = [
    # ---- allowed -------------------------------------------------------------------------------------
    pytest.param("finance", "set_price", {"region": "CA", "price": 70}, "allow", None, None, id="price-within-band"),
    pytest.param("finance", "set_price", {"region": "CA", "price": 75}, "allow", None, None, id="price-at-surge-cap"),
    pytest.param(
        "research",
        "commission_research",
        {"topic": "TX", "cost_usd": 5000},
        "allow",
        None,
        None,
        id="research-in-budget",
    ),
    pytest.param("marketing", "launch_campaign", campaign(), "allow", None, None, id="campaign-approved-claims"),
    pytest.param("marketing", "launch_campaign", campaign(discount_pct=20), "allow", None, None, id="discount-at-max"),
    pytest.param(
        "ops",
        "pause_settlement",
        {"region": "CA", "incident_id": "i", "reason": "outage"},
        "allow",
        None,
        None,
        id="ops-pauses-settlement",
    ),
    pytest.param(
        "ops",
        "notify_customers",
        {"incident_id": "i", "audience": "CA", "message": "m"},
        "allow",
        None,
        None,
        id="ops-notifies",
    ),
    pytest.param(
        "marketing",
        "notify_customers",
        {"incident_id": "i", "audience": "CA", "message": "m"},
        "allow",
        None,
        None,
        id="marketing-notifies",
    ),
    pytest.param(
        "ops",
        "issue_credit",
        {"customer_id": "C-1", "incident_id": "i", "tier": "major", "amount_usd": 150},
        "allow",
        None,
        None,
        id="credit-within-max",
    ),
    pytest.param("ops", "open_incident", incident(3), "allow", None, None, id="incident-at-bound"),
    pytest.param("legal", "publish_jurisdiction_pack", pack(False), "allow", None, None, id="immaterial-pack"),
    pytest.param(
        "finance",
        "commit_capital",
        {"amount_usd": 99999.99, "purpose": "meters"},
        "allow",
        None,
        None,
        id="capital-below-threshold",
    ),
    pytest.param(
        "marketing",
        "stop_experiment",
        {"experiment_id": "e", "reason": "threshold"},
        "allow",
        None,
        None,
        id="stop-experiment",
    ),
    # ---- denied: permissions -------------------------------------------------------------------------
    pytest.param(
        "marketing",
        "pause_settlement",
        {"region": "CA", "incident_id": "i", "reason": "x"},
        "deny",
        "perm.deny_by_default",
        None,
        id="marketing-cannot-pause",
    ),
    pytest.param(
        "research",
        "set_price",
        {"region": "CA", "price": 70},
        "deny",
        "perm.deny_by_default",
        None,
        id="research-cannot-price",
    ),
    pytest.param(
        "treasury",
        "notify_customers",
        {"incident_id": "i", "audience": "a", "message": "m"},
        "deny",
        "perm.deny_by_default",
        None,
        id="unknown-agent",
    ),
    pytest.param("ops", "delete_ledger", {}, "deny", "perm.unknown_action", None, id="unknown-action"),
    pytest.param(
        "ops",
        "notify_customers",
        {"incident_id": "i", "audience": "CA", "message": "Dear CA: Guaranteed   SAVINGS while we fix it."},
        "deny",
        "limit.claims.banned",
        None,
        id="notice-with-banned-claim",
    ),
    pytest.param(
        "finance",
        "rotate_credentials",
        {"system": "db", "reason": "x"},
        "deny",
        "perm.deny_by_default",
        None,
        id="finance-cannot-rotate",
    ),
    # ---- denied: arguments ---------------------------------------------------------------------------
    pytest.param(
        "finance", "set_price", {"region": "CA", "price": "abc"}, "deny", "args.invalid", None, id="price-not-a-number"
    ),
    pytest.param("finance", "set_price", {"price": 70}, "deny", "args.invalid", None, id="region-missing"),
    pytest.param(
        "finance", "set_price", {"region": "CA", "price": True}, "deny", "args.invalid", None, id="price-is-bool"
    ),
    pytest.param(
        "finance",
        "set_price",
        {"region": "CA", "price": 70, "override": True},
        "deny",
        "args.invalid",
        None,
        id="unknown-argument",
    ),
    pytest.param("ops", "open_incident", incident(7), "deny", "args.invalid", None, id="severity-out-of-range"),
    pytest.param(
        "finance",
        "change_pricing_policy",
        {"floor": 300, "ceiling": 10, "surge_cap_pct": 40},
        "deny",
        "args.invalid",
        None,
        id="pricing-band-upside-down",
    ),
    pytest.param(
        "finance",
        "change_pricing_policy",
        {"floor": 0, "ceiling": 300, "surge_cap_pct": 40},
        "deny",
        "args.invalid",
        None,
        id="pricing-floor-zero",
    ),
    pytest.param(
        "finance",
        "set_settlement_policy",
        {"window": "T+2", "reserve_ratio": 0.1},
        "deny",
        "args.invalid",
        None,
        id="window-unknown",
    ),
    pytest.param(
        "research",
        "commission_research",
        {"topic": "x", "cost_usd": -5},
        "deny",
        "args.invalid",
        None,
        id="negative-cost",
    ),
    pytest.param(
        "finance", "set_price", {"region": "CA", "price": "NaN"}, "deny", "args.invalid", None, id="price-nan"
    ),
    # ---- denied: hard limits -------------------------------------------------------------------------
    pytest.param(
        "finance",
        "set_price",
        {"region": "CA", "price": 98},
        "deny",
        "limit.price.surge_cap",
        None,
        id="price-over-surge-cap",
    ),
    pytest.param(
        "finance", "set_price", {"region": "CA", "price": 10}, "deny", "limit.price.floor", None, id="price-below-floor"
    ),
    pytest.param(
        "finance",
        "set_price",
        {"region": "CA", "price": 260},
        "deny",
        "limit.price.ceiling",
        None,
        id="price-above-ceiling",
    ),
    pytest.param(
        "finance",
        "set_price",
        {"region": "ZZ", "price": 60},
        "deny",
        "limit.price.base_unknown",
        None,
        id="price-no-base",
    ),
    pytest.param(
        "marketing",
        "launch_campaign",
        campaign(copy="Guaranteed SAVINGS for all!"),
        "deny",
        "limit.claims.banned",
        None,
        id="banned-in-copy",
    ),
    pytest.param(
        "marketing",
        "launch_campaign",
        campaign(claims=["Risk-free switching"]),
        "deny",
        "limit.claims.banned",
        None,
        id="banned-in-claim",
    ),
    pytest.param(
        "marketing",
        "launch_campaign",
        campaign(claims=["Best rates in town"]),
        "deny",
        "limit.claims.unapproved",
        None,
        id="claim-not-in-library",
    ),
    pytest.param(
        "marketing",
        "launch_campaign",
        campaign(discount_pct=25),
        "deny",
        "limit.discount",
        None,
        id="discount-over-max",
    ),
    pytest.param(
        "marketing",
        "launch_campaign",
        campaign(region="FL"),
        "deny",
        "limit.jurisdiction.prohibited",
        None,
        id="campaign-in-prohibited",
    ),
    pytest.param(
        "finance", "enter_market", entry("FL"), "deny", "limit.jurisdiction.prohibited", None, id="enter-prohibited"
    ),
    pytest.param(
        "finance", "enter_market", entry("NY"), "deny", "limit.jurisdiction.not_allowed", None, id="enter-restricted"
    ),
    pytest.param(
        "finance",
        "enter_market",
        entry("ZZ"),
        "deny",
        "limit.jurisdiction.not_allowed",
        None,
        id="enter-unknown-region",
    ),
    pytest.param(
        "finance",
        "enter_market",
        entry("FL", 900000),
        "deny",
        "limit.jurisdiction.prohibited",
        None,
        id="deny-beats-escalate",
    ),
    pytest.param(
        "ops",
        "issue_credit",
        {"customer_id": "C-1", "incident_id": "i", "tier": "x", "amount_usd": 300},
        "deny",
        "limit.credit.max",
        None,
        id="credit-over-max",
    ),
    # ---- escalated: gates, tools, budgets ------------------------------------------------------------
    pytest.param(
        "finance", "enter_market", entry("CA"), "escalate", "gate.market_entry", "market_entry", id="market-entry"
    ),
    pytest.param(
        "finance",
        "change_pricing_policy",
        {"floor": 20, "ceiling": 300, "surge_cap_pct": 40},
        "escalate",
        "gate.pricing_policy_change",
        "pricing_policy_change",
        id="pricing-policy",
    ),
    pytest.param(
        "finance",
        "set_settlement_policy",
        {"window": "T+3", "reserve_ratio": 0.15},
        "escalate",
        "gate.settlement_policy_change",
        "settlement_policy_change",
        id="settlement-policy",
    ),
    pytest.param(
        "legal",
        "publish_jurisdiction_pack",
        pack(True),
        "escalate",
        "gate.compliance_change",
        "compliance_change",
        id="material-pack",
    ),
    pytest.param(
        "finance",
        "commit_capital",
        {"amount_usd": 100000, "purpose": "fleet"},
        "escalate",
        "gate.capital_commitment",
        "capital_commitment",
        id="capital-at-threshold",
    ),
    pytest.param(
        "ops",
        "open_incident",
        incident(4),
        "escalate",
        "gate.incident_severity",
        "incident_severity",
        id="incident-over-bound",
    ),
    pytest.param(
        "finance",
        "transfer_funds",
        {"amount_usd": 1000, "destination": "x", "reason": "y"},
        "escalate",
        "tool.money_movement",
        "money_movement",
        id="money-movement",
    ),
    pytest.param(
        "ops",
        "rotate_credentials",
        {"system": "db", "reason": "leak"},
        "escalate",
        "tool.credential_change",
        "credential_change",
        id="credential-change",
    ),
    pytest.param(
        "research",
        "commission_research",
        {"topic": "x", "cost_usd": 25000},
        "escalate",
        "budget.money",
        "budget_overrun",
        id="budget-overrun",
    ),
    pytest.param(
        "marketing",
        "run_experiment",
        {"experiment_id": "e", "hypothesis": "h", "budget_usd": 60000.01, "metric": "m", "stop_threshold": 0.1},
        "escalate",
        "budget.money",
        "budget_overrun",
        id="experiment-over-budget",
    ),
    pytest.param(
        "legal",
        "request_model_budget",
        {"tokens": 2000, "cost_usd": 0, "reason": "1131 tokens short of its next call"},
        "escalate",
        "gate.model_budget",
        "budget_overrun",
        id="model-budget-request",
    ),
    pytest.param(
        "ops",
        "request_model_budget",
        {"tokens": 0, "cost_usd": 3, "reason": "0.0042 USD short"},
        "escalate",
        "gate.model_budget",
        "budget_overrun",
        id="model-cost-request",
    ),
    pytest.param(
        "legal",
        "request_model_budget",
        {"tokens": -1000, "cost_usd": 0, "reason": "r"},
        "deny",
        "args.invalid",
        None,
        id="model-budget-negative-tokens",
    ),
    pytest.param(
        "legal",
        "request_model_budget",
        {"tokens": 1000.5, "cost_usd": 0, "reason": "r"},
        "deny",
        "args.invalid",
        None,
        id="model-budget-fractional-tokens",
    ),
    pytest.param(
        "legal",
        "request_model_budget",
        {"tokens": 1000, "cost_usd": 0},
        "deny",
        "args.invalid",
        None,
        id="model-budget-without-reason",
    ),
]


class TestVerdictTable:
    """Each row: a proposal against the Helios policy and a fresh state, and the verdict it must get."""

    @pytest.mark.parametrize(("agent", "action", "args", "outcome", "rule_id", "gate"), TABLE)
    def test_row(
        self, agent: str, action: str, args: dict[str, Any], outcome: str, rule_id: str | None, gate: str | None
    ) -> None:
        """The outcome, the first rule id and the gate are the ones in the table; reasons are never empty."""
        verdict = evaluate(proposal(agent, action, **args), base_state(), POLICY)
        assert verdict.outcome == outcome, verdict.reasons
        assert verdict.reasons
        assert all(r.strip() for r in verdict.reasons)
        assert verdict.policy_version == POLICY.version
        if rule_id is not None:
            assert verdict.rule_ids[0] == rule_id
        assert verdict.gate == gate
        if outcome == "escalate":
            assert verdict.approver_roles
            assert verdict.approvals_required >= 1
            assert verdict.expires_after
        else:
            assert verdict.approvals_required == 0
            assert verdict.expires_after is None


class TestReasons:
    """Reasons say what was checked with the numbers involved."""

    def test_surge_cap_reason_shows_the_arithmetic(self) -> None:
        """base × (1 + cap) = limit, in cents."""
        verdict = evaluate(proposal("finance", "set_price", region="CA", price=98), base_state(), POLICY)
        assert verdict.reasons == ("price 98.00 exceeds surge cap: base 60.00 × 1.25 = 75.00",)

    def test_permission_reason_lists_what_the_agent_may_do(self) -> None:
        """A deny by default says who may not and what they may."""
        verdict = evaluate(
            proposal("marketing", "pause_settlement", region="CA", incident_id="i", reason="x"), base_state(), POLICY
        )
        assert verdict.reasons[0].startswith("marketing may not pause_settlement (deny by default; marketing may: ")

    def test_budget_reason_names_the_overrun(self) -> None:
        """Committed, asked and the overrun, for the period."""
        verdict = evaluate(proposal("research", "commission_research", topic="x", cost_usd=25000), base_state(), POLICY)
        assert "overrun 5000.00" in verdict.reasons[0]
        assert "2025-03" in verdict.reasons[0]

    def test_allow_lists_the_rules_checked(self) -> None:
        """An allow carries the ids of every rule it passed."""
        verdict = evaluate(proposal("finance", "set_price", region="CA", price=70), base_state(), POLICY)
        assert verdict.rule_ids == ("perm.deny_by_default", "args.shape", "limit.price")


class TestGateDetails:
    """Escalations carry the gate's roles, four-eyes quorum and expiry."""

    @pytest.mark.parametrize(
        ("agent", "action", "args", "required", "hours"),
        [
            pytest.param("finance", "enter_market", entry("CA", 250000), 1, 72, id="entry-at-four-eyes-threshold"),
            pytest.param("finance", "enter_market", entry("CA", 250000.01), 2, 72, id="entry-above-threshold"),
            pytest.param(
                "finance", "commit_capital", {"amount_usd": 600000, "purpose": "p"}, 2, 72, id="capital-large"
            ),
            pytest.param(
                "finance",
                "transfer_funds",
                {"amount_usd": 60000, "destination": "d", "reason": "r"},
                2,
                24,
                id="transfer-large",
            ),
            pytest.param(
                "ops", "rotate_credentials", {"system": "s", "reason": "r"}, 2, 8, id="credentials-always-two"
            ),
            pytest.param("ops", "open_incident", incident(5), 1, 4, id="incident"),
            pytest.param(
                "research", "commission_research", {"topic": "x", "cost_usd": 50000.01}, 2, 24, id="overrun-above-25k"
            ),
            pytest.param(
                "finance",
                "request_model_budget",
                {"tokens": 0, "cost_usd": 25000.01, "reason": "r"},
                2,
                24,
                id="model-budget-above-25k",
            ),
        ],
    )
    def test_quorum_and_expiry(self, agent: str, action: str, args: dict[str, Any], required: int, hours: int) -> None:
        """approvals_required and expires_after come from the gate and the amount at stake."""
        verdict = evaluate(proposal(agent, action, **args), base_state(), POLICY)
        assert verdict.outcome == "escalate"
        assert verdict.approvals_required == required
        assert verdict.expires_after == timedelta(hours=hours)

    @pytest.mark.parametrize("agent", ["research", "finance", "marketing", "legal", "ops"])
    def test_every_agent_may_ask_for_more_model_budget_and_it_always_escalates(self, agent: str) -> None:
        """request_model_budget is granted to all five; however small, a human decides (gate budget_overrun)."""
        args = {"tokens": 1, "cost_usd": 0, "reason": "r"}
        verdict = evaluate(proposal(agent, "request_model_budget", **args), base_state(), POLICY)
        assert (verdict.outcome, verdict.gate, verdict.rule_ids) == (
            "escalate",
            "budget_overrun",
            ("gate.model_budget",),
        )
        assert verdict.approver_roles == ("cfo", "board")
        assert verdict.reasons == (
            f"model budget: {agent} asks to raise its model budget by 1 tokens and 0.00 USD per period; "
            "a human decides how much more an agent may spend on models",
        )

    def test_a_gate_and_a_budget_overrun_escalate_together(self) -> None:
        """Market entry over finance's budget: the gate leads, the budget reason is kept."""
        verdict = evaluate(proposal("finance", "enter_market", **entry("CA", 600000)), base_state(), POLICY)
        assert verdict.gate == "market_entry"
        assert verdict.rule_ids == ("gate.market_entry", "budget.money")
        assert verdict.approver_roles == ("board",)
        assert len(verdict.reasons) == 2

    def test_the_strictest_of_two_gates_sets_the_bar(self) -> None:
        """A 200k entry needs one board member, but its 100k overrun of finance's budget needs four eyes: two."""
        state = executed(base_state(), "finance", "enter_market", "f0", **entry("TX", 400000))
        verdict = evaluate(proposal("finance", "enter_market", **entry("CA", 200000)), state, POLICY)
        assert verdict.rule_ids == ("gate.market_entry", "budget.money")
        assert verdict.approvals_required == 2
        assert verdict.approver_roles == ("board",)  # the only role that may answer both gates
        assert verdict.expires_after == min(
            POLICY.gates["market_entry"].expires_after_hours, POLICY.gates["budget_overrun"].expires_after_hours
        ) * timedelta(hours=1)


class TestStateDependentRules:
    """Limits and budgets read the state folded from what already happened."""

    def test_spend_counts_against_the_budget(self) -> None:
        """15,000 spent of 20,000: 5,000 more fits, 5,000.01 escalates."""
        state = executed(base_state(), "research", "commission_research", "r1", topic="a", cost_usd=15000)
        fits = evaluate(proposal("research", "commission_research", topic="b", cost_usd=5000), state, POLICY)
        over = evaluate(proposal("research", "commission_research", topic="b", cost_usd=5000.01), state, POLICY)
        assert (fits.outcome, over.outcome) == ("allow", "escalate")

    def test_reservations_count_before_execution(self) -> None:
        """An authorized but unexecuted action already holds its budget."""
        auth = ActionAuthorized(
            authorization_id="a",
            proposal_id="r1",
            proposal_hash="h",
            agent="research",
            action="commission_research",
            args={"topic": "a", "cost_usd": 15000},
            idempotency_key="k",
            basis="policy",
        )
        state = base_state().apply(auth)
        assert state.committed("research") == 15000
        verdict = evaluate(proposal("research", "commission_research", topic="b", cost_usd=6000), state, POLICY)
        assert verdict.outcome == "escalate"

    def test_a_failed_execution_releases_its_reservation(self) -> None:
        """Nothing was spent, so the budget is whole again."""
        state = executed(
            base_state(), "research", "commission_research", "r1", outcome="failed", topic="a", cost_usd=15000
        )
        assert state.committed("research") == 0

    def test_budgets_start_again_in_a_new_period(self) -> None:
        """The month's spend does not count in the next month."""
        state = executed(base_state(), "research", "commission_research", "r1", topic="a", cost_usd=20000)
        april = state.at(datetime(2025, 4, 1, tzinfo=UTC))
        assert evaluate(proposal("research", "commission_research", topic="b", cost_usd=20000), april, POLICY).allowed

    def test_an_approved_overrun_raises_the_budget(self) -> None:
        """The resolution's budget increase is added to the period's budget."""
        state = base_state()
        p = proposal("research", "commission_research", "big", topic="x", cost_usd=25000)
        state = state.apply(p)
        esc = Escalation(
            proposal=p,
            proposal_hash=p.proposal_hash,
            gate="budget_overrun",
            approver_roles=("cfo",),
            approvals_required=1,
            expires_at=None,
        )
        state = GovernanceState(**{**_fields(state), "escalations": {"big": esc}})
        state = state.apply(
            EscalationResolved(
                proposal_id="big",
                proposal_hash=p.proposal_hash,
                outcome="approved",
                reason="ok",
                budget_increase_usd="5000.00",
            )
        )
        assert state.increase("research") == 5000
        assert evaluate(p, state, POLICY).allowed

    def test_credits_accumulate_per_customer(self) -> None:
        """200 already credited to C-1: 50 more fits, 51 does not; another customer is unaffected."""
        state = executed(
            base_state(), "ops", "issue_credit", "c1", customer_id="C-1", incident_id="i", tier="major", amount_usd=200
        )
        args = {"incident_id": "i", "tier": "minor"}
        assert evaluate(
            proposal("ops", "issue_credit", customer_id="C-1", amount_usd=50, **args), state, POLICY
        ).allowed
        deny = evaluate(proposal("ops", "issue_credit", customer_id="C-1", amount_usd=51, **args), state, POLICY)
        assert deny.rule_ids == ("limit.credit.max",)
        assert "already credited 200.00" in deny.reasons[0]
        assert evaluate(
            proposal("ops", "issue_credit", customer_id="C-2", amount_usd=250, **args), state, POLICY
        ).allowed

    def test_a_new_base_price_moves_the_surge_cap(self) -> None:
        """After a snapshot with base 80, 98 is within 80 × 1.25 = 100."""
        snapshot = Observation(kind="market.snapshot", data={"prices": {"CA": {"price": 80, "base_price": 80}}})
        state = base_state().apply(snapshot)
        assert evaluate(proposal("finance", "set_price", region="CA", price=98), state, POLICY).allowed

    def test_an_executed_pricing_policy_change_is_the_band_in_force(self) -> None:
        """Once a new band is executed, the old ceiling no longer applies."""
        state = executed(
            base_state(), "finance", "change_pricing_policy", "pp", floor=20, ceiling=300, surge_cap_pct=400
        )
        state = state.apply(
            Observation(kind="market.snapshot", data={"prices": {"CA": {"price": 60, "base_price": 60}}})
        )
        assert evaluate(proposal("finance", "set_price", region="CA", price=260), state, POLICY).allowed

    def test_a_published_pack_changes_a_jurisdiction(self) -> None:
        """NY allowed by a pack → entry escalates; CA prohibited by a pack → entry denied."""
        state = executed(base_state(), "legal", "publish_jurisdiction_pack", "j1", **pack(True, "NY", "allowed"))
        state = executed(state, "legal", "publish_jurisdiction_pack", "j2", **pack(True, "CA", "prohibited"))
        assert evaluate(proposal("finance", "enter_market", **entry("NY")), state, POLICY).outcome == "escalate"
        deny = evaluate(proposal("finance", "enter_market", **entry("CA")), state, POLICY)
        assert deny.reasons == ("region CA is prohibited by a published jurisdiction pack",)

    def test_settlement_pause_and_resume_are_tracked(self) -> None:
        """Paused regions follow pause/resume executions."""
        state = executed(base_state(), "ops", "pause_settlement", "s1", region="CA", incident_id="i", reason="r")
        assert state.learned["settlement"].paused == frozenset({"CA"})
        state = executed(state, "ops", "resume_settlement", "s2", region="CA", incident_id="i")
        assert state.learned["settlement"].paused == frozenset()

    def test_a_zero_reserve_ratio_is_kept(self) -> None:
        """Settlement policy T+1 with reserve ratio 0 replaces an observed 0.2."""
        snapshot = Observation(kind="market.snapshot", data={"settlement": {"window": "T+3", "reserve_ratio": 0.2}})
        state = executed(
            base_state().apply(snapshot), "finance", "set_settlement_policy", "s", window="T+1", reserve_ratio=0
        )
        settlement = state.learned["settlement"]
        assert (settlement.window, settlement.reserve_ratio) == ("T+1", 0)


def _fields(state: GovernanceState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in state.__dataclass_fields__}
