"""The executor: each action's effect, idempotency, and refusal of anything governance did not authorize."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from coalition.bus.canonical import content_hash
from coalition.bus.envelope import Envelope
from coalition.bus.messages import ActionAuthorized, Observation
from coalition.domain import catalog, load_pack
from coalition.governance.policy import action_names, default_policy, load_policy
from coalition.packs.helios.world import World, WorldState
from coalition.scenarios import Executor, load_scenario

pytestmark = pytest.mark.unit

WHEN = datetime(2025, 3, 3, tzinfo=UTC)


@pytest.fixture
def world() -> World:
    scenario = load_scenario("helios-launch")
    return World.from_spec(scenario.world, scenario.seed, scenario.load_policy().limits.pricing)


def authorized(
    action: str, args: dict[str, Any], *, key: str = "", agent: str = "finance", source: str = "governance"
) -> Envelope:
    message = ActionAuthorized(
        authorization_id=f"auth-{action}",
        proposal_id=f"prop-{action}",
        proposal_hash="h" * 64,
        agent=agent,
        action=action,
        args=args,
        idempotency_key=key or f"key-{action}-{content_hash(args)[:8]}",
        basis="policy",
    )
    return Envelope.wrap(message, id=f"env-{action}", source=source, run_id="run-1", superstep=1, sim_time=WHEN)


Check = Callable[[WorldState], bool]

CASES: list[tuple[str, str, dict[str, Any], Check]] = [
    (
        "research",
        "commission_research",
        {"topic": "elasticity", "cost_usd": 1200},
        lambda s: s.research[0].amount_usd == Decimal("1200.00") and s.spent_by_agent["research"] == Decimal("1200.00"),
    ),
    ("finance", "set_price", {"region": "TX", "price": 64.25}, lambda s: s.regions["TX"].price == Decimal("64.25")),
    (
        "finance",
        "change_pricing_policy",
        {"floor": 25, "ceiling": 200, "surge_cap_pct": 20},
        lambda s: (
            (s.pricing_policy.floor, s.pricing_policy.ceiling, s.pricing_policy.surge_cap_pct)
            == (Decimal("25.00"), Decimal("200.00"), Decimal("20"))
        ),
    ),
    (
        "finance",
        "enter_market",
        {"region": "CA", "sequence": 1, "investment_usd": 150000},
        lambda s: (
            s.regions["CA"].active and s.regions["CA"].entry_sequence == 1 and s.cash_usd == Decimal("4850000.00")
        ),
    ),
    (
        "finance",
        "set_settlement_policy",
        {"window": "T+3", "reserve_ratio": 0.2},
        lambda s: s.settlement.window == "T+3" and s.settlement.reserve_ratio == Decimal("0.2"),
    ),
    (
        "finance",
        "commit_capital",
        {"amount_usd": 750000, "purpose": "storage"},
        lambda s: s.capital_commitments[0].amount_usd == Decimal("750000.00") and s.cash_usd == Decimal("4250000.00"),
    ),
    (
        "marketing",
        "launch_campaign",
        {
            "campaign_id": "c1",
            "region": "TX",
            "channel": "social",
            "copy": "Buy local",
            "claims": ["Buy directly from local solar and wind producers"],
            "budget_usd": 25000,
            "discount_pct": 10,
        },
        lambda s: s.campaigns["c1"].reach == 10000 and s.regions["TX"].demand_mw == Decimal("210.000"),
    ),
    (
        "marketing",
        "run_experiment",
        {"experiment_id": "e1", "hypothesis": "h", "budget_usd": 500, "metric": "signups", "stop_threshold": 0.05},
        lambda s: s.experiments["e1"].status == "running" and s.experiments["e1"].reach == 200,
    ),
    (
        "legal",
        "publish_jurisdiction_pack",
        {
            "region": "NM",
            "status": "restricted",
            "obligations": ["register"],
            "effective": "2025-06-01",
            "material": True,
        },
        lambda s: s.regions["NM"].status == "restricted" and s.jurisdiction_packs["NM"].obligations == ["register"],
    ),
    (
        "ops",
        "pause_settlement",
        {"region": "*", "incident_id": "inc-1", "reason": "outage"},
        lambda s: all(r.settlement_paused for r in s.regions.values()),
    ),
    (
        "ops",
        "open_incident",
        {
            "incident_id": "inc-1",
            "kind": "meter_outage",
            "severity": 4,
            "regions": ["TX"],
            "affected_customers": 36,
            "summary": "meters down",
        },
        lambda s: s.incidents["inc-1"].status == "open" and s.incidents["inc-1"].severity == 4,
    ),
    (
        "ops",
        "issue_credit",
        {"customer_id": "TX-B0001", "incident_id": "inc-1", "tier": "moderate", "amount_usd": 75},
        lambda s: s.customers["TX-B0001"].credits_usd == Decimal("75.00") and s.totals.credits_usd == Decimal("75.00"),
    ),
    (
        "ops",
        "notify_customers",
        {"incident_id": "inc-1", "audience": "TX", "message": "We are on it"},
        lambda s: s.notifications[0].fields["audience"] == "TX",
    ),
    (
        "ops",
        "freeze_account",
        {"account_id": "TX-B0007", "incident_id": "inc-2", "reason": "wash trading"},
        lambda s: "TX-B0007" in s.frozen_accounts,
    ),
    (
        "ops",
        "rotate_credentials",
        {"system": "meter-gateway", "reason": "leak"},
        lambda s: s.credential_rotations[0].fields["system"] == "meter-gateway",
    ),
    (
        "finance",
        "transfer_funds",
        {"amount_usd": 1000, "destination": "escrow", "reason": "deposit"},
        lambda s: s.transfers[0].amount_usd == Decimal("1000.00") and s.cash_usd == Decimal("4999000.00"),
    ),
    (
        "legal",
        "request_model_budget",
        {"tokens": 2000, "cost_usd": 1, "reason": "short of its next call"},
        lambda s: (
            (s.model_budget_grants[0].agent, s.model_budget_grants[0].tokens, s.model_budget_grants[0].cost_usd)
            == ("legal", 2000, Decimal("1.00"))
        ),
    ),
]


class TestEffects:
    """Each action changes exactly what it says, and reports the change."""

    @pytest.mark.parametrize(("agent", "action", "args", "check"), CASES, ids=[c[1] for c in CASES])
    def test_action_applies(self, world: World, agent: str, action: str, args: dict[str, Any], check: Check) -> None:
        """The authorization is applied, the world shows it, and `changes` is not empty."""
        result = Executor(world).apply(authorized(action, args, agent=agent))
        assert result.status == "applied", result.detail
        assert result.changes
        assert check(world.state)

    def test_every_declared_action_is_permitted_to_its_proposers(self) -> None:
        """Governance's vocabulary is the packs' declarations, and a policy Helios ships lets each proposer Helios
        declares propose its action: the default policy for the agents it governs, helios-partnerships.yaml for
        the sales and liquidity agents it adds (another installed pack's actions are its own policy's business)."""
        assert action_names() == set(catalog().actions)
        default = default_policy().permissions
        helios = load_pack("helios")
        assert helios.policy is not None
        widest = load_policy(helios.policy.parent / "helios-partnerships.yaml").permissions
        for action in helios.actions:
            assert action.proposers, action.name
            for agent in action.proposers:
                assert action.name in widest[agent], (agent, action.name)
                if agent in default:
                    assert action.name in default[agent], (agent, action.name)

    def test_a_model_budget_grant_is_recorded_and_moves_no_cash(self, world: World) -> None:
        """request_model_budget: the grant is on record (agent, proposal, amounts, day); cash and spend unchanged."""
        before = world.snapshot()
        args = {"tokens": 2000, "cost_usd": 0.5, "reason": "1131 tokens short"}
        result = Executor(world).apply(authorized("request_model_budget", args, agent="legal"))
        assert result.changes == {"model_budget": {"agent": "legal", "tokens": 2000, "cost_usd": 0.5}}
        (grant,) = world.state.model_budget_grants
        assert (grant.proposal_id, grant.reason, grant.day) == ("prop-request_model_budget", "1131 tokens short", 0)
        after = world.snapshot()
        assert after["cash_usd"] == before["cash_usd"]
        assert after["spent_by_agent"] == before["spent_by_agent"] == {}
        assert after["totals"] == before["totals"]

    def test_set_price_reports_old_and_new(self, world: World) -> None:
        """changes = {"price": {"region", "old", "new"}}."""
        result = Executor(world).apply(authorized("set_price", {"region": "TX", "price": 72.5}))
        assert result.changes == {"price": {"region": "TX", "old": 58.0, "new": 72.5}}

    def test_an_incident_may_name_no_region(self, world: World) -> None:
        """A fraud incident concerns accounts: an empty region list is accepted."""
        args = {"incident_id": "f", "kind": "fraud", "severity": 2, "regions": [], "affected_customers": 2}
        result = Executor(world).apply(authorized("open_incident", {**args, "summary": "wash trades"}, agent="ops"))
        assert result.status == "applied"
        assert world.state.incidents["f"].regions == []

    def test_stop_experiment_after_run(self, world: World) -> None:
        """A running experiment stops with its reason."""
        executor = Executor(world)
        run = {"experiment_id": "e1", "hypothesis": "h", "budget_usd": 500, "metric": "m", "stop_threshold": 1}
        executor.apply(authorized("run_experiment", run, agent="marketing"))
        result = executor.apply(authorized("stop_experiment", {"experiment_id": "e1", "reason": "threshold"}))
        assert result.status == "applied"
        assert world.state.experiments["e1"].status == "stopped"

    def test_resume_settlement_resolves_the_incident(self, world: World) -> None:
        """Resuming a paused region closes the incident it was paused for."""
        executor = Executor(world)
        incident = {"incident_id": "i", "kind": "k", "severity": 2, "regions": ["TX"], "affected_customers": 1}
        executor.apply(authorized("open_incident", {**incident, "summary": "s"}, agent="ops"))
        executor.apply(authorized("pause_settlement", {"region": "TX", "incident_id": "i", "reason": "r"}))
        result = executor.apply(authorized("resume_settlement", {"region": "TX", "incident_id": "i"}))
        assert result.status == "applied"
        assert not world.state.regions["TX"].settlement_paused
        assert world.state.incidents["i"].status == "resolved"


class TestIdempotency:
    """A repeated idempotency key is reported as a duplicate and changes nothing."""

    def test_same_key_twice_changes_once(self, world: World) -> None:
        """Two credits with one key: 75 USD credited once."""
        executor = Executor(world)
        args = {"customer_id": "TX-B0001", "incident_id": "i", "tier": "moderate", "amount_usd": 75}
        first = executor.apply(authorized("issue_credit", args, key="k-1", agent="ops"))
        after_first = world.snapshot()
        second = executor.apply(authorized("issue_credit", args, key="k-1", agent="ops"))
        assert (first.status, second.status) == ("applied", "duplicate")
        assert second.changes == {}
        assert world.snapshot() == after_first
        assert world.state.customers["TX-B0001"].credits_usd == Decimal("75.00")

    def test_keys_survive_a_snapshot_restore(self, world: World) -> None:
        """The dedupe record is part of the world, so a restored world still refuses the replay."""
        Executor(world).apply(authorized("set_price", {"region": "TX", "price": 60}, key="k-2"))
        restored = World.restore(world.snapshot())
        assert Executor(restored).apply(authorized("set_price", {"region": "TX", "price": 60}, key="k-2")).status == (
            "duplicate"
        )


class TestRefusals:
    """Anything not authorized by governance, or not applicable, fails with a clear detail and no change."""

    def test_refuses_a_source_other_than_governance(self, world: World) -> None:
        """An agent forging an authorization gets nothing."""
        before = world.snapshot()
        result = Executor(world).apply(authorized("set_price", {"region": "TX", "price": 99}, source="agent:finance"))
        assert result.status == "failed"
        assert result.detail == "refused: authorization came from 'agent:finance', not governance"
        assert world.snapshot() == before

    def test_refuses_an_envelope_that_is_not_an_authorization(self, world: World) -> None:
        """An observation handed to the executor is refused."""
        envelope = Envelope.wrap(
            Observation(kind="news"), id="env-x", source="governance", run_id="r", superstep=1, sim_time=WHEN
        )
        result = Executor(world).apply(envelope)
        assert result.status == "failed"
        assert result.detail == "refused: envelope env-x is 'observation', not an action.authorized"

    @pytest.mark.parametrize(
        ("action", "args", "detail"),
        [
            ("set_price", {"region": "TX"}, "invalid args: set_price: args.price is required"),
            (
                "set_price",
                {"region": "TX", "price": -3},
                "invalid args: set_price: args.price input should be greater than 0, got -3",
            ),
            (
                "set_price",
                {"region": "TX", "price": 60, "note": "x"},
                "invalid args: set_price: args.note is not an argument of set_price (expected region, price)",
            ),
            (
                "open_incident",
                {
                    "incident_id": "i",
                    "kind": "k",
                    "severity": 9,
                    "regions": ["TX"],
                    "affected_customers": 1,
                    "summary": "s",
                },
                "invalid args: open_incident: args.severity input should be less than or equal to 5, got 9",
            ),
            (
                "change_pricing_policy",
                {"floor": 90, "ceiling": 50, "surge_cap_pct": 10},
                "invalid args: change_pricing_policy: args.ceiling must be above the floor (90.00), got 50.00",
            ),
            (
                "set_settlement_policy",
                {"window": "T+2", "reserve_ratio": 0.1},
                "invalid args: set_settlement_policy: args.window input should be 'T+1' or 'T+3', got 'T+2'",
            ),
            ("launch_rocket", {}, "unknown action 'launch_rocket'"),
            ("set_price", {"region": "ZZ", "price": 60}, "unknown region 'ZZ'"),
            (
                "issue_credit",
                {"customer_id": "nobody", "incident_id": "i", "tier": "t", "amount_usd": 5},
                "unknown customer 'nobody'",
            ),
            (
                "enter_market",
                {"region": "TX", "sequence": 1, "investment_usd": 0},
                "region TX is already an active market",
            ),
            (
                "commit_capital",
                {"amount_usd": 9000000, "purpose": "p"},
                "capital commitment of 9000000.00 USD exceeds cash on hand (5000000.00 USD)",
            ),
            ("resume_settlement", {"region": "TX", "incident_id": "i"}, "settlement is not paused in 'TX'"),
            ("stop_experiment", {"experiment_id": "e9", "reason": "r"}, "unknown experiment 'e9'"),
            (
                "request_model_budget",
                {"tokens": -1, "cost_usd": 0, "reason": "r"},
                "invalid args: request_model_budget: args.tokens input should be greater than or equal to 0, got -1",
            ),
            (
                "request_model_budget",
                {"tokens": 10, "cost_usd": 0},
                "invalid args: request_model_budget: args.reason is required",
            ),
        ],
    )
    def test_refusal_leaves_the_world_unchanged(
        self, world: World, action: str, args: dict[str, Any], detail: str
    ) -> None:
        """Bad args, unknown actions and impossible effects: status failed, one-line detail, same world."""
        before = world.snapshot()
        result = Executor(world).apply(authorized(action, args))
        assert result.status == "failed"
        assert result.detail == f"refused: {detail}; nothing changed"
        assert world.snapshot() == before

    def test_a_failed_key_can_be_retried(self, world: World) -> None:
        """A refusal records no idempotency key: once the cause is gone, the same key applies."""
        executor = Executor(world)
        resume = authorized("resume_settlement", {"region": "TX", "incident_id": "i"}, key="k-3")
        assert executor.apply(resume).status == "failed"
        executor.apply(authorized("pause_settlement", {"region": "TX", "incident_id": "i", "reason": "r"}))
        assert executor.apply(resume).status == "applied"
