"""Approval tiers in the policy (governance/tiers.py): validation at load, the seeded sample draw, and
always-human turning governance's allow into an escalation through the tier's gate."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalition.bus.messages import ActionProposed, Observation
from coalition.governance import GovernanceState, PolicyError, default_policy, evaluate
from coalition.governance.policy import Policy, parse_policy
from coalition.governance.tiers import sample_draw

pytestmark = pytest.mark.unit

HELIOS: dict[str, Any] = yaml.safe_load(
    resources.files("coalition.packs.helios").joinpath("policies/helios.yaml").read_text(encoding="utf-8")
)
SHIPPED = Path(__file__).parents[2] / "packs" / "helios" / "policies" / "helios-tiers.yaml"


def with_tiers(tiers: Any) -> dict[str, Any]:
    data = copy.deepcopy(HELIOS)
    data["tiers"] = tiers
    return data


def problem(tiers: Any) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(with_tiers(tiers), source="p.yaml")
    return str(caught.value)


def proposal(agent: str, action: str, pid: str = "p-1", **args: Any) -> ActionProposed:
    return ActionProposed(proposal_id=pid, agent=agent, action=action, args=args, rationale="because")


def state(policy: Policy) -> GovernanceState:
    snapshot = Observation(
        kind="market.snapshot", data={"prices": {"TX": {"price": 58, "base_price": 58}}, "active_markets": ["TX"]}
    )
    return GovernanceState.initial(policy).apply(snapshot)


class TestValidation:
    """A bad tiers section is one line naming where, at load."""

    @pytest.mark.parametrize(
        ("tiers", "where", "why"),
        [
            (
                {"actions": {"mint_money": {"tier": "sampled", "rate": 0.1}}},
                "tiers.actions.mint_money",
                "unknown action",
            ),
            ({"agents": {"cfo": {"set_price": "auto"}}}, "tiers.agents.cfo", "unknown agent"),
            ({"agents": {"marketing": {"set_price": "auto"}}}, "tiers.agents.marketing.set_price", "not permitted"),
            ({"actions": {"set_price": {"tier": "sampled", "rate": 0}}}, "tiers.actions.set_price", "greater than 0"),
            ({"actions": {"set_price": {"tier": "sampled", "rate": 1.5}}}, "tiers.actions.set_price", "less than or"),
            ({"actions": {"set_price": {"tier": "sampled"}}}, "tiers.actions.set_price", "names its rate"),
            ({"actions": {"set_price": {"tier": "auto", "rate": 0.5}}}, "tiers.actions.set_price", "sampled tier only"),
            ({"actions": {"set_price": "always-human"}}, "tiers.actions.set_price", "names the gate"),
            (
                {"actions": {"set_price": {"tier": "always-human", "gate": "nope"}}},
                "tiers.actions.set_price.gate",
                "unknown gate",
            ),
            ({"actions": {"set_price": "sometimes"}}, "tiers.actions.set_price", "tier"),
            ({"action": {}}, "tiers.action", "unknown key"),
        ],
    )
    def test_bad_section_names_the_path(self, tiers: Any, where: str, why: str) -> None:
        line = problem(tiers)
        assert where in line, line
        assert why in line, line
        assert "\n" not in line

    def test_rate_one_and_agent_override_load(self) -> None:
        policy = parse_policy(
            with_tiers(
                {
                    "actions": {"notify_customers": {"tier": "sampled", "rate": 1}},
                    "agents": {"ops": {"notify_customers": "auto"}},
                }
            ),
            source="p.yaml",
        )
        assert policy.tiers.of("marketing", "notify_customers").tier == "sampled"
        assert policy.tiers.of("ops", "notify_customers").tier == "auto"
        assert policy.tiers.of("finance", "set_price").tier == "auto"

    def test_no_tiers_keeps_the_policy_version(self) -> None:
        """A policy without tiers (the golden ledger's) hashes as before: the model dump has no `tiers` key."""
        policy = default_policy()
        assert "tiers" not in policy.model_dump(mode="json")
        rebuilt = Policy.model_validate(policy.model_dump(mode="json"))
        assert "tiers" not in rebuilt.model_dump(mode="json")

    def test_the_shipped_tiers_policy_uses_sampled_and_always_human(self) -> None:
        data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
        policy = parse_policy(data, source=str(SHIPPED))
        kinds = {tier.tier for _, _, _, tier in policy.tiers.named()}
        assert {"sampled", "always-human"} <= kinds


class TestSampleDraw:
    """Whether a proposal is drawn depends on the run's seed and its id only."""

    def test_same_inputs_same_draw_and_the_seed_matters(self) -> None:
        assert sample_draw(5001, "p-1") == sample_draw(5001, "p-1")
        assert sample_draw(5001, "p-1") != sample_draw(5002, "p-1")
        assert sample_draw(5001, "p-1") != sample_draw(5001, "p-2")

    def test_the_share_drawn_follows_the_rate(self) -> None:
        draws = [sample_draw(7, f"p-{i}") for i in range(4000)]
        assert all(0 <= d < 1 for d in draws)
        share = sum(d < 0.1 for d in draws) / len(draws)
        assert 0.08 < share < 0.12


class TestAlwaysHuman:
    """always-human escalates what governance would allow, through the tier's gate; a deny stays a deny."""

    POLICY = parse_policy(
        with_tiers(
            {
                "actions": {"freeze_account": {"tier": "always-human", "gate": "incident_severity"}},
                "agents": {"finance": {"set_price": {"tier": "always-human", "gate": "pricing_policy_change"}}},
            }
        ),
        source="p.yaml",
    )

    def test_an_allowed_action_escalates_through_the_gate(self) -> None:
        p = proposal("ops", "freeze_account", account_id="TX-B1", incident_id="i-1", reason="wash trades")
        verdict = evaluate(p, state(self.POLICY), self.POLICY)
        assert verdict.outcome == "escalate"
        assert verdict.gate == "incident_severity"
        assert "tier.always_human" in verdict.rule_ids
        assert verdict.approver_roles == tuple(self.POLICY.gates["incident_severity"].approver_roles)
        plain = evaluate(p, state(default_policy()), default_policy())
        assert plain.outcome == "allow"

    def test_a_denied_action_stays_denied(self) -> None:
        over_cap = proposal("finance", "set_price", region="TX", price=140)
        assert evaluate(over_cap, state(self.POLICY), self.POLICY).outcome == "deny"

    def test_the_per_agent_tier_applies_to_that_agent_only(self) -> None:
        in_band = proposal("finance", "set_price", region="TX", price=60)
        verdict = evaluate(in_band, state(self.POLICY), self.POLICY)
        assert (verdict.outcome, verdict.gate) == ("escalate", "pricing_policy_change")
        notice = proposal("ops", "notify_customers", audience="all", message="hello", incident_id="i-1")
        assert evaluate(notice, state(self.POLICY), self.POLICY).outcome == "allow"
