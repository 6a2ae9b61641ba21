"""The billing desk's world: customer accounts (tenure, usage, login history, sentiment, churn risk), their fees,
outages, the cases customers open through any channel, and what the desk did about them.

The scenario's `world:` section is a `DeskSpec`; `Desk.from_spec` builds day 0. Only the executor changes the
world, through the handlers in effects.py; agents see it through observations (cases, outages, the daily
`accounts.snapshot`)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coalition.domain import ActionRefused

CENT = Decimal("0.01")
FeeKind = Literal["late_fee", "reconnection_fee", "paper_bill_fee", "early_exit_fee"]
Channel = Literal["phone", "chat", "email", "app"]
CaseKind = Literal["fee_dispute", "billing_error", "cancellation", "outage_complaint", "churn_signal"]


def cents(value: Decimal | int | float | str) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)


class _Spec(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class FeeSpec(_Spec):
    fee_id: str = Field(min_length=1)
    kind: FeeKind
    amount_usd: Decimal = Field(gt=0, le=100_000)


class AccountSpec(_Spec):
    """An account on day 0. `last_login_day` may be negative (before the scenario starts)."""

    account_id: str = Field(min_length=1)
    customer: str = Field(min_length=1)
    region: str = "US"
    tenure_months: int = Field(ge=0, le=1200)
    monthly_usage_kwh: Decimal = Field(ge=0, le=10_000_000)
    last_login_day: int = Field(ge=-3650, le=3650)
    sentiment: Decimal = Field(default=Decimal(0), ge=-1, le=1)
    churn_risk: Decimal = Field(default=Decimal(0), ge=0, le=1)
    waivers_12m: int = Field(default=0, ge=0, le=1000)
    vulnerable: bool = False  # a registered medical or hardship need (outreach comes first)
    contract_months_left: int = Field(default=0, ge=0, le=600)
    early_exit_fee_usd: Decimal = Field(default=Decimal(0), ge=0, le=100_000)
    fees: list[FeeSpec] = Field(default_factory=list)


class DeskSpec(_Spec):
    """The `world:` section of a billing-desk scenario."""

    accounts: list[AccountSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> DeskSpec:
        ids = [a.account_id for a in self.accounts]
        if len(set(ids)) != len(ids):
            raise ValueError(f"account ids must be unique, got {sorted(ids)}")
        fees = [f.fee_id for a in self.accounts for f in a.fees]
        if len(set(fees)) != len(fees):
            raise ValueError(f"fee ids must be unique, got {sorted(fees)}")
        return self


class _State(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", validate_assignment=True)


class Fee(_State):
    fee_id: str
    account_id: str
    kind: FeeKind
    amount_usd: Decimal
    waived_day: int | None = None


class Account(_State):
    account_id: str
    customer: str
    region: str
    tenure_months: int
    monthly_usage_kwh: Decimal
    last_login_day: int
    sentiment: Decimal
    churn_risk: Decimal
    waivers_12m: int
    vulnerable: bool
    contract_months_left: int
    early_exit_fee_usd: Decimal
    balance_usd: Decimal = Decimal(0)  # what the customer owes (fees not waived, less credits)
    credited_usd: Decimal = Decimal(0)
    cancelled_day: int | None = None
    retention_tier: str | None = None
    discount_pct: Decimal = Decimal(0)
    discount_months: int = 0
    last_reengaged_day: int | None = None


class Record(_State):
    """Something the desk did for a customer: a credit, a notice, an escalation, an outreach wave."""

    action: str
    day: int
    account_id: str | None = None
    case_id: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class DeskState(_State):
    day: int = 0
    accounts: dict[str, Account] = Field(default_factory=dict)
    fees: dict[str, Fee] = Field(default_factory=dict)
    records: list[Record] = Field(default_factory=list)
    escalated_cases: dict[str, str] = Field(default_factory=dict)  # case id → trigger
    outreach: dict[str, list[str]] = Field(default_factory=dict)  # wave id → accounts in contact order
    credits_usd: Decimal = Decimal(0)
    waived_usd: Decimal = Decimal(0)
    applied_keys: dict[str, str] = Field(default_factory=dict)  # idempotency key → proposal id (the executor's)


class Desk:
    """The billing desk's world (the executor's port: `state` with `day` and `applied_keys`)."""

    def __init__(self, state: DeskState) -> None:
        self._state = state

    @classmethod
    def from_spec(cls, spec: DeskSpec, seed: int = 0, limits: Any = None) -> Desk:
        """Day 0 as the scenario describes it (the seed and limits change nothing: the desk has no randomness)."""
        state = DeskState()
        for a in spec.accounts:
            fees = {
                f.fee_id: Fee(fee_id=f.fee_id, account_id=a.account_id, kind=f.kind, amount_usd=cents(f.amount_usd))
                for f in a.fees
            }
            state.fees.update(fees)
            state.accounts[a.account_id] = Account(
                **a.model_dump(exclude={"fees"}),
                balance_usd=cents(sum((f.amount_usd for f in fees.values()), Decimal(0))),
            )
        return cls(state)

    @property
    def state(self) -> DeskState:
        return self._state

    @property
    def day(self) -> int:
        return self._state.day

    def advance_day(self, day: int) -> dict[str, int]:
        if day < self._state.day:
            raise ValueError(f"the desk is on day {self._state.day}; it cannot go back to day {day}")
        days, self._state.day = day - self._state.day, day
        return {"days": days}

    def account(self, account_id: str) -> Account:
        found = self._state.accounts.get(account_id)
        if found is None:
            raise ActionRefused(f"unknown account {account_id!r}")
        return found

    def open_account(self, account_id: str) -> Account:
        account = self.account(account_id)
        if account.cancelled_day is not None:
            raise ActionRefused(f"account {account_id} was cancelled on day {account.cancelled_day}")
        return account

    def fee(self, fee_id: str, account_id: str) -> Fee:
        fee = self._state.fees.get(fee_id)
        if fee is None or fee.account_id != account_id:
            raise ActionRefused(f"account {account_id} has no fee {fee_id!r}")
        return fee

    def record(self, action: str, account_id: str | None, case_id: str | None, **detail: Any) -> None:
        self._state.records.append(
            Record(action=action, day=self._state.day, account_id=account_id, case_id=case_id, detail=detail)
        )

    def snapshot(self) -> dict[str, Any]:
        """The `accounts.snapshot` observation's data: what agents may know of every account today."""
        return {
            "day": self._state.day,
            "accounts": [
                {
                    "account_id": a.account_id,
                    "tenure_months": a.tenure_months,
                    "monthly_usage_kwh": float(a.monthly_usage_kwh),
                    "last_login_day": a.last_login_day,
                    "sentiment": float(a.sentiment),
                    "churn_risk": float(a.churn_risk),
                    "waivers_12m": a.waivers_12m,
                    "vulnerable": a.vulnerable,
                    "contract_months_left": a.contract_months_left,
                    "early_exit_fee_usd": float(a.early_exit_fee_usd),
                    "fees": [
                        {
                            "fee_id": f.fee_id,
                            "kind": f.kind,
                            "amount_usd": float(f.amount_usd),
                            "waived": f.waived_day is not None,
                        }
                        for f in sorted(self._state.fees.values(), key=lambda f: f.fee_id)
                        if f.account_id == a.account_id
                    ],
                    "cancelled": a.cancelled_day is not None,
                    "last_reengaged_day": a.last_reengaged_day,
                }
                for a in sorted(self._state.accounts.values(), key=lambda a: a.account_id)
            ],
        }

    def kpis(self) -> dict[str, Any]:
        s = self._state
        return {
            "credits_usd": float(s.credits_usd),
            "waived_usd": float(s.waived_usd),
            "escalated_cases": len(s.escalated_cases),
            "cancellations": sum(1 for a in s.accounts.values() if a.cancelled_day is not None),
            "retention_offers": sum(1 for a in s.accounts.values() if a.retention_tier is not None),
            "outreach_waves": len(s.outreach),
            "reengaged": sum(1 for a in s.accounts.values() if a.last_reengaged_day is not None),
        }
