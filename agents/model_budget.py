"""Limits on an agent's paid model calls: token and cost budgets per period, calls per window, a circuit breaker.

Governance owns the numbers (the policy's `budgets.agents.<name>.llm_tokens / llm_cost_usd` and the period);
the runner hands them to each agent's `ModelGuard`. Before a call an estimate is *reserved* (prompt tokens +
the maximum answer); after it the reservation is *settled* at the real usage. A call that would take the
period over budget is not made; what it lacked (`Shortfall`) becomes the agent's request for more
(`budget_request`), which governance escalates. Everything runs on simulated time, so the same run stops at
the same call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Literal

from coalition.agents.facts import Facts
from coalition.bus.messages import ModelStopReason

Period = Literal["run", "day", "week", "month"]
REQUEST_ACTION = "request_model_budget"
TOKEN_STEP = 1000  # a request for more tokens is the shortfall rounded up to whole thousands
COST_STEP = Decimal(1)  # … and for more dollars, to whole US dollars


def period_key(period: Period, now: datetime) -> str:
    """The name of the budget period `now` falls in (spend starts again from zero in a new one)."""
    if period == "run":
        return "run"
    if period == "day":
        return now.date().isoformat()
    if period == "week":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{now.year}-{now.month:02d}"


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """One agent's limits; None = unlimited. Rate limit and breaker defaults are deliberately loose."""

    tokens: int | None = None
    cost_usd: Decimal | None = None
    period: Period = "month"
    calls_per_window: int | None = 200
    window: timedelta = timedelta(days=1)
    breaker_threshold: int = 3  # consecutive provider errors that open the circuit
    breaker_cooldown: timedelta = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Reservation:
    """An estimate held against the budget until the call is settled."""

    period: str
    tokens: int
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call is not made."""

    reason: ModelStopReason
    detail: str
    period: str
    short_tokens: int = 0  # a budget refusal: how far over each budget the call would have gone
    short_cost_usd: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Shortfall:
    """What a call refused for budget lacked, in its period: the basis of a request for more budget."""

    period: str
    tokens: int
    cost_usd: Decimal


def request_key(period: str) -> str:
    """The dedupe key of an agent's request for more model budget: one request per budget period."""
    return f"{REQUEST_ACTION}:{period}"


@dataclass(frozen=True, slots=True)
class BudgetRequest:
    """The engine's request for more model budget (a `request_model_budget` proposal) and the facts to word it."""

    period: str
    tokens: int
    cost_usd: Decimal
    reason: str

    def args(self) -> dict[str, object]:
        return {"tokens": self.tokens, "cost_usd": float(self.cost_usd), "reason": self.reason}

    def facts(self) -> Facts:
        return Facts(
            intent="request",
            decision=f"ask for {self.tokens} more model tokens and {self.cost_usd} more USD of model spend",
            reasons=[self.reason],
            figures={"tokens": str(self.tokens), "cost_usd": str(self.cost_usd), "period": self.period},
            rules=["budgets are governance's: a human decides how much more an agent may spend on models"],
        )


def _round_up(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def budget_request(agent: str, shortfalls: Sequence[Shortfall]) -> BudgetRequest | None:
    """What to ask for after budget refusals: the largest shortfall of the first period, rounded up.

    Deterministic and decided here, never by a model: tokens up to whole thousands, dollars up to whole USD.
    """
    if not shortfalls:
        return None
    period = shortfalls[0].period
    same = [s for s in shortfalls if s.period == period]
    tokens = int(_round_up(Decimal(max(s.tokens for s in same)), Decimal(TOKEN_STEP)))
    cost = _round_up(max(s.cost_usd for s in same), COST_STEP)
    short = [f"{max(s.tokens for s in same)} tokens"] if tokens else []
    short += [f"{max(s.cost_usd for s in same)} USD"] if cost else []
    reason = (
        f"{agent}'s model budget for {period} is {' and '.join(short)} short of its next call; "
        f"{len(same)} call{'s' if len(same) > 1 else ''} fell back to the engine's wording"
    )
    return BudgetRequest(period, tokens, cost, reason)


@dataclass
class _Spend:
    tokens: int = 0
    cost_usd: Decimal = Decimal(0)


class ModelGuard:
    """Per-agent reservations and their settling, a sliding window of calls and a consecutive-error breaker."""

    def __init__(self, agent: str, limits: ModelLimits | None = None) -> None:
        self.agent = agent
        self.limits = limits or ModelLimits()
        self._spent: dict[str, _Spend] = {}
        self._held: dict[str, _Spend] = {}
        self._calls: deque[datetime] = deque()
        self._errors = 0
        self._open_until: datetime | None = None

    def spent(self, now: datetime) -> tuple[int, Decimal]:
        """Settled tokens and dollars of the period `now` falls in."""
        spend = self._spent.get(period_key(self.limits.period, now), _Spend())
        return spend.tokens, spend.cost_usd

    def raise_limits(self, tokens: int = 0, cost_usd: Decimal = Decimal(0)) -> None:
        """Governance granted more budget (an executed request_model_budget): the per-period limits grow by that
        much from now on, this period and the next (an agent still short in a new period asks again)."""
        limits = self.limits
        self.limits = ModelLimits(
            tokens=None if limits.tokens is None else limits.tokens + tokens,
            cost_usd=None if limits.cost_usd is None else limits.cost_usd + cost_usd,
            period=limits.period,
            calls_per_window=limits.calls_per_window,
            window=limits.window,
            breaker_threshold=limits.breaker_threshold,
            breaker_cooldown=limits.breaker_cooldown,
        )

    def reserve(self, now: datetime, tokens: int, cost_usd: Decimal) -> Reservation | Refusal:
        """Hold an estimate, or say why the call must not be made (breaker, rate limit, budget — in that order)."""
        limits = self.limits
        key = period_key(limits.period, now)
        if self._open_until is not None:
            if now < self._open_until:
                return Refusal(
                    "circuit_open",
                    f"circuit open after {self._errors} consecutive provider errors "
                    f"until {self._open_until.isoformat()}",
                    key,
                )
            self._open_until = None  # half-open: one call may try; a failure re-opens it
        while self._calls and now - self._calls[0] >= limits.window:
            self._calls.popleft()
        if limits.calls_per_window is not None and len(self._calls) >= limits.calls_per_window:
            return Refusal(
                "rate_limit",
                f"{len(self._calls)} calls in the last {limits.window} (limit {limits.calls_per_window})",
                key,
            )
        spent = self._spent.get(key, _Spend())
        held = self._held.get(key, _Spend())
        short_tokens = 0 if limits.tokens is None else max(0, spent.tokens + held.tokens + tokens - limits.tokens)
        over = Decimal(0) if limits.cost_usd is None else spent.cost_usd + held.cost_usd + cost_usd - limits.cost_usd
        short_cost = max(Decimal(0), over)
        if short_tokens:
            detail = (
                f"{spent.tokens} tokens spent + {held.tokens} held + {tokens} estimated > {limits.tokens} "
                f"token budget for {key}"
            )
            return Refusal("budget", detail, key, short_tokens, short_cost)
        if short_cost:
            detail = (
                f"{spent.cost_usd} USD spent + {held.cost_usd} held + {cost_usd} estimated > {limits.cost_usd} "
                f"USD model budget for {key}"
            )
            return Refusal("budget", detail, key, short_tokens, short_cost)
        held.tokens += tokens
        held.cost_usd += cost_usd
        self._held[key] = held
        self._calls.append(now)
        return Reservation(key, tokens, cost_usd)

    def settle(self, reservation: Reservation, tokens: int, cost_usd: Decimal) -> None:
        """Release the estimate and charge what the call really used (0 for a call that failed before an answer)."""
        held = self._held[reservation.period]
        held.tokens -= reservation.tokens
        held.cost_usd -= reservation.cost_usd
        spent = self._spent.setdefault(reservation.period, _Spend())
        spent.tokens += tokens
        spent.cost_usd += cost_usd

    def succeeded(self) -> None:
        self._errors = 0

    def failed(self, now: datetime) -> bool:
        """Count a provider error; True when this one opened the circuit."""
        self._errors += 1
        if self._errors >= self.limits.breaker_threshold and self._open_until is None:
            self._open_until = now + self.limits.breaker_cooldown
            return True
        return False
