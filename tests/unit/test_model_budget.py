"""Token and cost budgets (reserve before, settle after), calls per window, and the circuit breaker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from coalition.agents.base import AgentOutput, AgentStepContext
from coalition.agents.facts import Facts
from coalition.agents.model_budget import (
    ModelGuard,
    ModelLimits,
    Refusal,
    Reservation,
    Shortfall,
    budget_request,
    period_key,
)
from coalition.agents.narrator import Narrator
from coalition.agents.offline_model import MODEL_ID, OfflineChatModel
from coalition.agents.recording import CallLog, RecordingChatModel
from coalition.agents.testing import Envelopes, ScriptedModel
from coalition.bus.clock import IdFactory
from coalition.bus.envelope import Envelope
from coalition.bus.messages import ActionProposed, ModelCalled, ModelStopped
from coalition.packs.helios.agents.legal.agent import LegalAgent

pytestmark = pytest.mark.unit

DAY = datetime(2026, 3, 2, tzinfo=UTC)
FACTS = Facts(intent="inform", decision="keep the TX price at 58 USD/MWh")


def guarded(inner: ScriptedModel, limits: ModelLimits) -> Narrator:
    model = RecordingChatModel(
        inner=inner,
        model_id="anthropic:claude-haiku-4-5",
        params={"temperature": 0, "max_tokens": 100},
        log=CallLog("legal"),
    )
    speaker = Narrator(model, agent="legal", guard=ModelGuard("legal", limits), fallback=OfflineChatModel())
    speaker.at(DAY)
    return speaker


class TestBudget:
    """Reservations and settlements."""

    def test_reserve_holds_then_settle_charges_the_real_usage(self) -> None:
        """A reservation counts against the budget until settled at the smaller real figure."""
        guard = ModelGuard("ops", ModelLimits(tokens=1000, cost_usd=Decimal("1")))
        held = guard.reserve(DAY, 600, Decimal("0.4"))
        assert isinstance(held, Reservation)
        assert isinstance(guard.reserve(DAY, 600, Decimal("0.1")), Refusal)  # 600 held + 600 > 1000
        guard.settle(held, 150, Decimal("0.05"))
        assert guard.spent(DAY) == (150, Decimal("0.05"))
        assert isinstance(guard.reserve(DAY, 600, Decimal("0.1")), Reservation)

    def test_cost_budget_refuses_with_the_figures(self) -> None:
        """The refusal names spent, held, estimate and limit."""
        guard = ModelGuard("ops", ModelLimits(cost_usd=Decimal("0.10")))
        refusal = guard.reserve(DAY, 10, Decimal("0.11"))
        assert isinstance(refusal, Refusal)
        assert refusal.reason == "budget"
        assert "0.11 estimated > 0.10 USD model budget for 2026-03" in refusal.detail

    def test_spend_restarts_each_period(self) -> None:
        """Month period: a new month starts from zero; day/week/run keys are as documented."""
        guard = ModelGuard("ops", ModelLimits(tokens=100, period="month"))
        held = guard.reserve(DAY, 100, Decimal(0))
        assert isinstance(held, Reservation)
        guard.settle(held, 100, Decimal(0))
        assert isinstance(guard.reserve(DAY + timedelta(days=3), 1, Decimal(0)), Refusal)
        assert isinstance(guard.reserve(datetime(2026, 4, 1, tzinfo=UTC), 100, Decimal(0)), Reservation)
        assert [period_key(p, DAY) for p in ("run", "day", "week", "month")] == [
            "run",
            "2026-03-02",
            "2026-W10",
            "2026-03",
        ]

    def test_raising_limits_lets_the_call_through(self) -> None:
        """An approved budget increase grows the limit by that much."""
        guard = ModelGuard("ops", ModelLimits(tokens=10))
        assert isinstance(guard.reserve(DAY, 50, Decimal(0)), Refusal)
        guard.raise_limits(tokens=40)
        assert isinstance(guard.reserve(DAY, 50, Decimal(0)), Reservation)


class TestRateAndBreaker:
    """Calls per window and consecutive provider errors."""

    def test_rate_limit_counts_calls_in_a_sliding_window(self) -> None:
        """Two calls per hour: the third in the hour is refused, one an hour later is allowed."""
        guard = ModelGuard("ops", ModelLimits(calls_per_window=2, window=timedelta(hours=1)))
        assert all(isinstance(guard.reserve(DAY, 1, Decimal(0)), Reservation) for _ in range(2))
        refusal = guard.reserve(DAY, 1, Decimal(0))
        assert isinstance(refusal, Refusal)
        assert refusal.reason == "rate_limit"
        assert isinstance(guard.reserve(DAY + timedelta(hours=1), 1, Decimal(0)), Reservation)

    def test_breaker_opens_after_threshold_and_half_opens_after_cooldown(self) -> None:
        """Three failures open it; during the cooldown every call is refused; afterwards one may try."""
        guard = ModelGuard("ops", ModelLimits(breaker_threshold=3, breaker_cooldown=timedelta(hours=6)))
        assert [guard.failed(DAY) for _ in range(3)] == [False, False, True]
        refusal = guard.reserve(DAY + timedelta(hours=1), 1, Decimal(0))
        assert isinstance(refusal, Refusal)
        assert refusal.reason == "circuit_open"
        assert isinstance(guard.reserve(DAY + timedelta(hours=6), 1, Decimal(0)), Reservation)
        assert guard.failed(DAY + timedelta(hours=6)) is True  # a failed trial re-opens it


class TestNarratorUnderLimits:
    """The narrator never calls past a limit; each stop is recorded and the engine's wording is used."""

    def test_over_budget_call_is_not_made(self) -> None:
        """Token budget smaller than one estimate: the model is never called, a budget stop is recorded."""
        inner = ScriptedModel(responses=["never used"])
        speaker = guarded(inner, ModelLimits(tokens=50))
        text = speaker.rationale("legal", FACTS)
        (stop,) = speaker.drain()
        assert inner.calls == []
        assert text.fallback
        assert isinstance(stop, ModelStopped)
        assert stop.reason == "budget"
        assert stop.period == "2026-03"
        assert stop.estimate_tokens > 50

    def test_budget_is_charged_until_it_runs_out(self) -> None:
        """Calls are settled at real usage; once the period's tokens are used up, calls stop."""
        inner = ScriptedModel(responses=["First answer."] * 10)
        speaker = guarded(inner, ModelLimits(tokens=400))
        for _ in range(4):
            speaker.rationale("legal", FACTS)
        records = speaker.drain()
        called = [r for r in records if isinstance(r, ModelCalled)]
        stops = [r for r in records if isinstance(r, ModelStopped)]
        assert called
        assert stops
        assert all(s.reason == "budget" for s in stops)
        tokens, cost = speaker.guard.spent(DAY)
        assert tokens == sum(c.input_tokens + c.output_tokens for c in called)
        assert cost == sum(Decimal(c.cost_usd) for c in called) > 0

    def test_repeated_provider_errors_open_the_breaker(self) -> None:
        """Three failures, then calls are refused as circuit_open without reaching the provider."""
        inner = ScriptedModel(responses=[])
        speaker = guarded(inner, ModelLimits(breaker_threshold=3))
        for _ in range(5):
            assert speaker.rationale("legal", FACTS).fallback
        reasons = [r.reason for r in speaker.drain() if isinstance(r, ModelStopped)]
        assert reasons == ["provider_error"] * 3 + ["circuit_open"] * 2
        assert len(inner.calls) == 3


class TestShortfalls:
    """A budget refusal says how far over each budget the call would have gone; the request rounds it up."""

    def test_a_refusal_carries_both_shortfalls(self) -> None:
        """Tokens and dollars are measured even when the token budget is the one named in the detail."""
        guard = ModelGuard("ops", ModelLimits(tokens=100, cost_usd=Decimal("0.01")))
        refusal = guard.reserve(DAY, 1231, Decimal("0.015"))
        assert isinstance(refusal, Refusal)
        assert (refusal.short_tokens, refusal.short_cost_usd) == (1131, Decimal("0.005"))

    def test_rate_limit_refusals_are_not_shortfalls(self) -> None:
        """More budget would not help a rate limit: no shortfall is taken from it."""
        speaker = guarded(ScriptedModel(responses=[]), ModelLimits(calls_per_window=0))
        speaker.rationale("legal", FACTS)
        assert speaker.take_shortfalls() == []

    def test_request_is_the_largest_shortfall_of_the_period_rounded_up(self) -> None:
        """Tokens up to whole thousands, dollars up to whole USD; only the first period counts."""
        request = budget_request(
            "legal",
            [
                Shortfall("2025-05", 1106, Decimal(0)),
                Shortfall("2025-05", 1076, Decimal("0.0042")),
                Shortfall("2025-06", 9000, Decimal(9)),
            ],
        )
        assert request is not None
        assert (request.period, request.tokens, request.cost_usd) == ("2025-05", 2000, Decimal(1))
        assert request.args() == {"tokens": 2000, "cost_usd": 1.0, "reason": request.reason}
        assert request.reason == (
            "legal's model budget for 2025-05 is 1106 tokens and 0.0042 USD short of its next call; "
            "2 calls fell back to the engine's wording"
        )
        assert budget_request("legal", []) is None


CHANGE: dict[str, Any] = {
    "region": "NY",
    "status": "restricted",
    "obligations": ["disclose fees"],
    "effective": "2026-04-01",
    "material": True,
}


class LegalUnderBudget:
    """The legal agent on a paid (scripted) model with a token budget smaller than one call."""

    def __init__(self, tokens: int = 50) -> None:
        self.model = ScriptedModel(responses=["Worded by the paid model."] * 20)
        self.speaker = guarded(self.model, ModelLimits(tokens=tokens))
        self.agent = LegalAgent(self.speaker)
        self.env = Envelopes(sim_time=DAY)
        self.step = 0

    def run(self, inbox: list[Envelope], when: datetime = DAY) -> AgentOutput:
        self.step += 1
        ctx = AgentStepContext("legal", self.step, when, IdFactory("s").child("agent:legal"))
        return self.agent.run(inbox, ctx)

    def change(self, region: str) -> Envelope:
        return self.env.observation("regulatory.change", {**CHANGE, "region": region}, ["legal"])


def proposals(output: AgentOutput) -> list[ActionProposed]:
    return [o.message for o in output.messages if isinstance(o.message, ActionProposed)]


def requests(output: AgentOutput) -> list[ActionProposed]:
    return [p for p in proposals(output) if p.action == "request_model_budget"]


class TestAskingForMoreBudget:
    """A budget stop makes the agent ask governance for more, once per period; an executed grant raises its limits."""

    def test_a_budget_stop_proposes_one_request_for_the_shortfall(self) -> None:
        """Both wordings refused: the pack is proposed as usual, plus one request worded by the engine."""
        legal = LegalUnderBudget()
        out = legal.run([legal.change("NY")])
        pack, request = proposals(out)
        assert pack.action == "publish_jurisdiction_pack"
        assert request.action == "request_model_budget"
        assert request.args["tokens"] == 1000  # each estimate is a few hundred tokens over the 50-token budget
        assert request.args["cost_usd"] == 0.0
        assert "for 2026-03 is" in request.args["reason"]
        assert request.evidence == pack.evidence  # it cites the input whose wording was refused
        assert request.model is not None
        assert (request.model.model_id, request.model.fallback, request.model.calls) == (MODEL_ID, True, [])
        stops = [o.message for o in out.messages if isinstance(o.message, ModelStopped)]
        assert len(stops) == 2  # the pack and the notice; the request itself never asks the paid model
        assert legal.model.calls == []

    def test_no_second_request_while_pending_or_after_a_rejection_in_the_period(self) -> None:
        """Pending, then rejected: later stops in the same period fall back without asking again."""
        legal = LegalUnderBudget()
        (request,) = requests(legal.run([legal.change("NY")]))
        assert requests(legal.run([legal.change("MA")])) == []
        legal.run([legal.env.verdict(request, "escalate", gate="budget_overrun")])
        legal.run([legal.env.resolution(request, "rejected")])
        out = legal.run([legal.change("OR")])
        assert requests(out) == []
        assert len(proposals(out)) == 1
        assert legal.speaker.guard.limits.tokens == 50

    def test_a_new_period_asks_again(self) -> None:
        """An expired request in March does not stop the agent from asking in April."""
        legal = LegalUnderBudget()
        (request,) = requests(legal.run([legal.change("NY")]))
        legal.run([legal.env.resolution(request, "expired")])
        april = datetime(2026, 4, 1, tzinfo=UTC)
        (again,) = requests(legal.run([legal.change("MA")], when=april))
        assert "for 2026-04 is" in again.args["reason"]
        assert again.proposal_id != request.proposal_id

    def test_the_execution_of_an_approved_request_raises_the_limits_once(self) -> None:
        """Approved and applied: the guard's tokens grow by the request; later calls reach the model."""
        legal = LegalUnderBudget()
        (request,) = requests(legal.run([legal.change("NY")]))
        legal.run([legal.env.resolution(request, "approved")])
        assert legal.speaker.guard.limits.tokens == 50
        legal.run([legal.env.execution(request, "applied")])
        assert legal.speaker.guard.limits.tokens == 1050
        legal.run([legal.env.execution(request, "duplicate")])
        legal.run([legal.env.execution(request, "applied")])  # redelivered: granted once only
        assert legal.speaker.guard.limits.tokens == 1050
        out = legal.run([legal.change("MA")])
        assert len(legal.model.calls) == 2
        assert requests(out) == []
        (pack,) = proposals(out)
        assert pack.model is not None
        assert not pack.model.fallback

    def test_a_failed_execution_grants_nothing(self) -> None:
        """Only an applied execution raises the limits."""
        legal = LegalUnderBudget()
        (request,) = requests(legal.run([legal.change("NY")]))
        legal.run([legal.env.execution(request, "failed")])
        assert legal.speaker.guard.limits.tokens == 50

    def test_requests_are_deterministic(self) -> None:
        """Two agents on the same inputs make byte-identical requests."""
        first, second = LegalUnderBudget(), LegalUnderBudget()
        assert requests(first.run([first.change("NY")])) == requests(second.run([second.change("NY")]))
