"""The Helios policy with the sales and liquidity agents (packs/helios/policies/helios-partnerships.yaml): its CEL
rules deny a deal off legal's templates or above finance's maximum, send a large commitment to a human, and keep a
liquidity offer within the incentive cap, the per-offer limit and liquidity's budget. The shipped helios.yaml grants
neither agent anything, so its version and every run it governs are unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest
import yaml

from coalition.bus.messages import ActionProposed
from coalition.governance import GovernanceState, Policy, default_policy, evaluate
from coalition.governance.policy import load_policy

pytestmark = pytest.mark.unit

POLICY: Policy = load_policy(
    str(resources.files("coalition.packs.helios").joinpath("policies/helios-partnerships.yaml"))
)
NOW = datetime(2025, 6, 2, 9, tzinfo=UTC)


def verdict(agent: str, action: str, policy: Policy = POLICY, **args: Any) -> tuple[str, str | None, tuple[str, ...]]:
    proposal = ActionProposed(proposal_id="p-1", agent=agent, action=action, args=args, rationale="r")
    v = evaluate(proposal, GovernanceState.initial(policy).at(NOW), policy)
    return v.outcome, v.gate, v.rule_ids


def deal(**over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "partner_id": "lonestar-power",
        "region": "TX",
        "template": "utility-ppa-v3",
        "commitment_usd": 80000,
        "volume_mwh": 5000,
        "integration_hours": 150,
        "score": 75,
    }
    return {**args, **over}


def offer(**over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "offer_id": "TX-producers-w1",
        "region": "TX",
        "side": "producers",
        "incentive_pct": 10,
        "targets": 6,
        "budget_usd": 1500,
    }
    return {**args, **over}


class TestPartnershipRules:
    def test_a_small_deal_on_a_template_is_allowed(self) -> None:
        outcome, _, rules = verdict("sales", "sign_partnership", **deal())
        assert outcome == "allow"
        assert "limit.partnership" in rules

    @pytest.mark.parametrize(("amount", "outcome"), [(249999.99, "allow"), (250000, "escalate"), (1000000, "escalate")])
    def test_a_large_commitment_escalates_from_the_threshold(self, amount: float, outcome: str) -> None:
        got, gate, _ = verdict("sales", "sign_partnership", **deal(commitment_usd=amount))
        assert (got, gate) == (outcome, "partnership_commitment" if outcome == "escalate" else None)

    def test_four_eyes_above_750k(self) -> None:
        proposal = ActionProposed(
            proposal_id="p", agent="sales", action="sign_partnership", args=deal(commitment_usd=800000), rationale="r"
        )
        assert evaluate(proposal, GovernanceState.initial(POLICY).at(NOW), POLICY).approvals_required == 2

    def test_off_template_is_denied_whatever_sales_believed(self) -> None:
        assert verdict("sales", "sign_partnership", **deal(template="bespoke-msa")) == (
            "deny",
            None,
            ("limit.partnership.template",),
        )

    def test_above_finances_maximum_is_denied_not_escalated(self) -> None:
        outcome, _, rules = verdict("sales", "sign_partnership", **deal(commitment_usd=1000000.01))
        assert (outcome, rules) == ("deny", ("limit.partnership.commitment",))

    def test_only_sales_may_sign(self) -> None:
        assert verdict("finance", "sign_partnership", **deal())[0] == "deny"


class TestLiquidityRules:
    def test_an_offer_within_the_limits_is_allowed(self) -> None:
        assert verdict("liquidity", "make_liquidity_offer", **offer())[0] == "allow"

    def test_an_incentive_above_the_pricing_limit_is_denied(self) -> None:
        assert verdict("liquidity", "make_liquidity_offer", **offer(incentive_pct=15.01))[2] == (
            "limit.liquidity.incentive",
        )

    def test_an_offer_above_the_per_offer_limit_is_denied(self) -> None:
        assert verdict("liquidity", "make_liquidity_offer", **offer(budget_usd=15000.01))[2] == (
            "limit.liquidity.offer",
        )

    def test_a_bad_side_is_one_line_naming_the_argument(self) -> None:
        proposal = ActionProposed(
            proposal_id="p", agent="liquidity", action="make_liquidity_offer", args=offer(side="sellers"), rationale="r"
        )
        v = evaluate(proposal, GovernanceState.initial(POLICY).at(NOW), POLICY)
        assert v.outcome == "deny"
        assert "side" in v.reasons[0]
        assert "\n" not in v.reasons[0]


class TestTheShippedPolicyIsUnchanged:
    def test_helios_yaml_grants_the_new_agents_nothing(self) -> None:
        """Under the default policy the new actions are denied by default (deny-by-default permissions)."""
        policy = default_policy()
        assert "sales" not in policy.permissions
        assert "liquidity" not in policy.permissions
        assert verdict("sales", "sign_partnership", policy, **deal())[0] == "deny"
        assert verdict("liquidity", "make_liquidity_offer", policy, **offer())[0] == "deny"

    def test_the_partnership_policy_is_helios_yaml_plus_the_new_agents(self) -> None:
        base = default_policy()
        assert POLICY.pack_name == base.pack_name == "helios"
        assert {k: v for k, v in POLICY.permissions.items() if k not in ("sales", "liquidity")} == base.permissions
        assert set(POLICY.all_gates()) - set(base.all_gates()) == {"partnership_commitment"}

    def test_it_is_helios_yaml_plus_the_additions_and_nothing_else(self) -> None:
        """The copy does not drift: take the additions away and helios.yaml is what is left."""
        folder = resources.files("coalition.packs.helios").joinpath("policies")
        base = yaml.safe_load(folder.joinpath("helios.yaml").read_text(encoding="utf-8"))
        ours = yaml.safe_load(folder.joinpath("helios-partnerships.yaml").read_text(encoding="utf-8"))
        for section in ("budgets", "permissions"):
            agents = ours[section]["agents"] if section == "budgets" else ours[section]
            del agents["sales"], agents["liquidity"]
        del ours["limits"]["partnerships"], ours["limits"]["liquidity"], ours["gates"]["partnership_commitment"]
        ours["holds"]["dependency_keys"].remove("partner_id")
        added = ("limit.partnership.", "limit.liquidity.", "gate.partnership_commitment")
        ours["rules"] = [r for r in ours["rules"] if not r["id"].startswith(added)]
        ours["description"] = base["description"]
        assert ours == base
