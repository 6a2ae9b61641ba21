"""A pack handler that raises fails that one action — recorded as a failed execution with the error's one-line
text, the world exactly as before — and the executor goes on with the next authorization."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import Field

from coalition.bus.canonical import content_hash
from coalition.bus.envelope import Envelope
from coalition.bus.messages import ActionAuthorized
from coalition.domain import Action, ActionArgs, ActionContext, ActionRefused, Changes, Money, Text
from coalition.packs.billing_desk.world import Desk, DeskSpec
from coalition.scenarios import Executor

pytestmark = pytest.mark.unit

WHEN = datetime(2026, 5, 4, tzinfo=UTC)


class Credit(ActionArgs):
    account_id: Text
    amount_usd: Money = Field(gt=0)


def credit_then_crash(desk: Desk, a: Credit, ctx: ActionContext) -> Changes:
    account = desk.account(a.account_id)
    account.balance_usd -= a.amount_usd  # changes the world, then a bug strikes
    desk.state.credits_usd += a.amount_usd
    desk.record("credit_then_crash", a.account_id, None)
    raise ValueError("tier 'platinum' is not in the table\nsecond line of a long message")


def credit_then_refuse(desk: Desk, a: Credit, ctx: ActionContext) -> Changes:
    desk.account(a.account_id).balance_usd -= a.amount_usd
    raise ActionRefused("refused after a change")


def credit(desk: Desk, a: Credit, ctx: ActionContext) -> Changes:
    desk.account(a.account_id).balance_usd -= a.amount_usd
    return {"credited": {"account_id": a.account_id, "amount_usd": float(a.amount_usd)}}


ACTIONS = {
    "credit_then_crash": Action("credit_then_crash", Credit, credit_then_crash),
    "credit_then_refuse": Action("credit_then_refuse", Credit, credit_then_refuse),
    "credit": Action("credit", Credit, credit),
}


@pytest.fixture
def desk() -> Desk:
    spec = DeskSpec.model_validate(
        {
            "accounts": [
                {"account_id": "A-1", "customer": "Ann", "tenure_months": 12, "monthly_usage_kwh": 500,
                 "last_login_day": 0, "fees": [{"fee_id": "F-1", "kind": "late_fee", "amount_usd": 15}]},
            ]
        }
    )  # fmt: skip
    return Desk.from_spec(spec)


def authorized(action: str, args: dict[str, Any], n: int) -> Envelope:
    message = ActionAuthorized(
        authorization_id=f"auth-{n}",
        proposal_id=f"prop-{n}",
        proposal_hash="h" * 64,
        agent="billing",
        action=action,
        args=args,
        idempotency_key=f"key-{n}-{content_hash(args)[:8]}",
        basis="policy",
    )
    return Envelope.wrap(message, id=f"env-{n}", source="governance", run_id="run-1", superstep=1, sim_time=WHEN)


def test_a_raising_handler_fails_its_action_and_changes_nothing(desk: Desk) -> None:
    executor = Executor(desk, ACTIONS)
    state = desk.state
    before = state.model_dump_json()
    executed = executor.apply(authorized("credit_then_crash", {"account_id": "A-1", "amount_usd": 40}, 1))
    assert executed.status == "failed"
    assert executed.detail == (
        "failed: the credit_then_crash handler raised ValueError: tier 'platinum' is not in the table; nothing changed"
    )
    assert "\n" not in executed.detail
    assert executed.changes == {}
    assert desk.state is state  # restored in place: the runner's reference stays the world's
    assert state.model_dump_json() == before
    assert "key-1" not in " ".join(state.applied_keys)  # not applied, so not a duplicate either


def test_the_next_action_applies_after_a_handler_raised(desk: Desk) -> None:
    executor = Executor(desk, ACTIONS)
    executor.apply(authorized("credit_then_crash", {"account_id": "A-1", "amount_usd": 40}, 1))
    executed = executor.apply(authorized("credit", {"account_id": "A-1", "amount_usd": 5}, 2))
    assert executed.status == "applied"
    assert desk.account("A-1").balance_usd == 10  # 15 owed, 5 credited; the crashed 40 left no trace
    assert desk.state.records == []


def test_only_unguarded_keys_skip_the_savepoint(desk: Desk) -> None:
    """replay --verify names the keys its run recorded as applied: those run without a savepoint (a raise there is
    a divergence already), every other key keeps it."""
    crash = authorized("credit_then_crash", {"account_id": "A-1", "amount_usd": 40}, 1)
    assert isinstance(crash.payload, ActionAuthorized)
    executor = Executor(desk, ACTIONS, unguarded={"some-other-key"})
    assert executor.apply(crash).status == "failed"
    assert desk.account("A-1").balance_usd == 15  # guarded: put back
    unguarded = Executor(desk, ACTIONS, unguarded={crash.payload.idempotency_key})
    assert unguarded.apply(crash).status == "failed"
    assert desk.account("A-1").balance_usd == -25  # no savepoint was taken: the half-done change stays


def test_a_late_refusal_is_put_right_too(desk: Desk) -> None:
    executed = Executor(desk, ACTIONS).apply(
        authorized("credit_then_refuse", {"account_id": "A-1", "amount_usd": 7}, 3)
    )
    assert executed.status == "failed"
    assert executed.detail == "refused: refused after a change; nothing changed"
    assert desk.account("A-1").balance_usd == 15


def test_a_long_error_is_one_bounded_line(desk: Desk) -> None:
    def crash(desk: Desk, a: Credit, ctx: ActionContext) -> Changes:
        raise RuntimeError("x" * 5000)

    executor = Executor(desk, {"credit": Action("credit", Credit, crash)})
    executed = executor.apply(authorized("credit", {"account_id": "A-1", "amount_usd": 1}, 4))
    assert executed.status == "failed"
    assert len(executed.detail) < 400
    assert executed.detail.startswith("failed: the credit handler raised RuntimeError: xxx")


def test_every_shipped_world_state_survives_a_savepoint() -> None:
    # the savepoint dumps and re-validates a pydantic state: every installed pack's world must round-trip
    from coalition.scenarios import load_scenario
    from coalition.scenarios.executor import savepoint

    for name in ("helios-launch", "billing-desk-retention-wave"):
        scenario = load_scenario(name)
        pack = scenario.of_pack()
        assert pack.world is not None
        world = pack.world.build(scenario.world, scenario.seed, scenario.load_policy().limits)
        before = world.state.model_dump_json()
        restore = savepoint(world)
        restore()
        assert world.state.model_dump_json() == before


def test_a_plain_state_is_put_back_too() -> None:
    # a pack whose world state is not a pydantic model (a dataclass here): deep-copied, restored attribute by attribute
    from dataclasses import dataclass, field

    @dataclass
    class State:
        day: int = 1
        applied_keys: dict[str, str] = field(default_factory=dict)
        balances: dict[str, int] = field(default_factory=lambda: {"A-1": 15})

    class Plain:
        def __init__(self) -> None:
            self.state = State()

        def snapshot(self) -> dict[str, Any]:
            return {}

        def kpis(self) -> dict[str, Any]:
            return {}

    def crash(world: Plain, a: Credit, ctx: ActionContext) -> Changes:
        world.state.balances[a.account_id] -= a.amount_usd
        world.state.day = 99
        raise RuntimeError("boom")

    world = Plain()
    state = world.state
    executed = Executor(world, {"credit": Action("credit", Credit, crash)}).apply(
        authorized("credit", {"account_id": "A-1", "amount_usd": 5}, 5)
    )
    assert executed.status == "failed"
    assert world.state is state
    assert state == State()
