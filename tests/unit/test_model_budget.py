"""Token and cost budgets (reserve before, settle after), calls per window, and the circuit breaker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from coalition.agents.facts import Facts
from coalition.agents.model_budget import ModelGuard, ModelLimits, Refusal, Reservation, period_key
from coalition.agents.narrator import Narrator
from coalition.agents.offline_model import OfflineChatModel
from coalition.agents.recording import CallLog, RecordingChatModel
from coalition.agents.testing import ScriptedModel
from coalition.bus.messages import ModelCalled, ModelStopped

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
