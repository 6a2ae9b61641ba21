"""The billing desk's engines: what a case, an outage or the day's account snapshot calls for, decided by the
policy's eligibility tables (rules.py) and nothing else. No eligibility number or condition is written here:
the engines gather the inputs, ask a table, and turn its answer into proposals with the rule path recorded.

The customer's free text never reaches a table: a decision reads only the fields the intake recorded and the
account snapshot, so identical cases get identical decisions whatever the channel, day or wording."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from coalition.agents.facts import Facts
from coalition.agents.money import number
from coalition.agents.payloads import WorldData
from coalition.packs.billing_desk.rules import Decision, Eligibility
from coalition.packs.billing_desk.world import CaseKind, cents


class FeeView(WorldData):
    fee_id: str
    kind: str
    amount_usd: Decimal
    waived: bool = False


class AccountView(WorldData):
    """One account as the daily `accounts.snapshot` shows it."""

    account_id: str
    tenure_months: int
    monthly_usage_kwh: Decimal
    last_login_day: int
    sentiment: Decimal = Decimal(0)
    churn_risk: Decimal = Decimal(0)
    waivers_12m: int = 0
    vulnerable: bool = False
    contract_months_left: int = 0
    early_exit_fee_usd: Decimal = Decimal(0)
    cancelled: bool = False
    last_reengaged_day: int | None = None
    fees: list[FeeView] = Field(default_factory=list)


class Snapshot(WorldData):
    """`accounts.snapshot`: every account, each day."""

    day: int
    accounts: list[AccountView]


class CaseData(WorldData):
    """`case`: what a customer asked through any channel, as the intake recorded it. The customer's own words are
    the observation's `text`: untrusted, screened before a model sees them, never read by a decision."""

    case_id: str = Field(min_length=1)
    account_id: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    kind: CaseKind
    journey_days: int = Field(default=0, ge=0)
    sentiment: Decimal = Field(default=Decimal(0), ge=-1, le=1)
    regulator: str = ""
    unauthorised_transfer: bool = False
    fee_id: str | None = None
    days_late: int = Field(default=0, ge=0)
    verified: bool = False
    overcharge_usd: Decimal = Field(default=Decimal(0), ge=0)
    outage_id: str | None = None
    service_failures_90d: int = Field(default=0, ge=0)


class OutageData(WorldData):
    """`outage`: a service interruption and the accounts it reached."""

    outage_id: str = Field(min_length=1)
    region: str = ""
    hours: Decimal = Field(ge=0)
    accounts: list[str] = Field(default_factory=list)


# The model of each schedulable observation's data (the pack's WorldDecl.data_models, loaded on use).
DATA_MODELS: dict[str, type[WorldData]] = {"case": CaseData, "outage": OutageData}


@dataclass(frozen=True, slots=True)
class Step:
    """One proposal an engine decided: the action, its arguments (without wording), why, and its dedupe key."""

    action: str
    args: dict[str, Any]
    facts: Facts
    key: str


Outcome = Literal[
    "escalated",
    "fee_waived",
    "fee_not_waived",
    "credited",
    "not_credited",
    "cancelled_without_penalty",
    "penalty_applies",
    "unknown_account",
    "unknown_fee",
    "no_action",
]


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a case calls for: the steps, and the outcome the customer is told once they are settled."""

    case: CaseData
    outcome: Outcome
    decision: Decision | None
    steps: list[Step] = field(default_factory=list)

    @property
    def rule(self) -> str:
        return self.decision.path if self.decision is not None else "none"


def _facts(decision_text: str, decision: Decision | None, **figures: object) -> Facts:
    rules = [decision.path] if decision is not None else []
    return Facts(
        intent="propose",
        decision=decision_text,
        reasons=[f"rule {r}" for r in rules],
        figures={k: str(v) for k, v in figures.items()},
        rules=rules,
    )


def case_inputs(case: CaseData, account: AccountView | None) -> dict[str, Any]:
    """The case as a table sees it: the intake's fields and what the account knows of the fee — never the text."""
    fee = next((f for f in account.fees if f.fee_id == case.fee_id), None) if account is not None else None
    data = case.model_dump(mode="python")
    data.update(
        regulator=case.regulator.strip(),
        fee_kind=fee.kind if fee is not None else "",
        fee_amount_usd=fee.amount_usd if fee is not None else Decimal(0),
        early_exit_fee_usd=account.early_exit_fee_usd if account is not None else Decimal(0),
    )
    return data


def account_inputs(account: AccountView) -> dict[str, Any]:
    return account.model_dump(mode="python", exclude={"fees"})


def resolve_case(
    case: CaseData, account: AccountView | None, rules: Eligibility, outages: dict[str, OutageData]
) -> Resolution:
    """The billing resolver: escalation triggers first, then the eligibility table of the case's kind."""
    if account is None:
        return Resolution(case, "unknown_account", None)
    inputs = {"case": case_inputs(case, account), "account": account_inputs(account)}
    trigger = rules.decide("escalation", **inputs)
    if trigger.flag("escalate"):
        handoff = {"account_id": case.account_id, "case_id": case.case_id, "trigger": trigger.path}
        facts = _facts(f"hand case {case.case_id} to a human", trigger, journey_days=case.journey_days)
        handoff_step = Step("escalate_case", handoff, facts, f"escalate:{case.case_id}")
        return Resolution(case, "escalated", trigger, [handoff_step])
    if case.kind == "fee_dispute":
        return _fee_dispute(case, account, rules, inputs)
    if case.kind == "billing_error":
        decision = rules.decide("billing_error", **inputs)
        if not decision.flag("credit"):
            return Resolution(case, "not_credited", decision)
        amount = cents(decision.number("amount"))
        return Resolution(
            case,
            "credited",
            decision,
            [
                _credit(
                    case.account_id,
                    case.case_id,
                    amount,
                    "billing_error",
                    decision=decision,
                    key=f"credit:{case.case_id}",
                )
            ],
        )
    if case.kind == "cancellation":
        decision = rules.decide("cancellation", **inputs)
        if not decision.flag("without_penalty"):
            return Resolution(case, "penalty_applies", decision)
        args: dict[str, Any] = {
            "account_id": case.account_id,
            "case_id": case.case_id,
            "penalty_waived_usd": number(cents(decision.number("penalty"))),
            "rule": decision.path,
        }
        facts = _facts(
            f"cancel {case.account_id} without penalty", decision, penalty_waived_usd=args["penalty_waived_usd"]
        )
        return Resolution(
            case,
            "cancelled_without_penalty",
            decision,
            [Step("cancel_without_penalty", args, facts, f"cancel:{case.account_id}")],
        )
    if case.kind == "outage_complaint":
        outage = outages.get(case.outage_id or "")
        if outage is None or case.account_id not in outage.accounts:
            return Resolution(case, "not_credited", None)
        step = outage_credit(outage, case.account_id, rules)
        if step is None:
            return Resolution(case, "not_credited", rules.decide("outage_tier", outage=outage_inputs(outage)))
        return Resolution(case, "credited", rules.decide("outage_tier", outage=outage_inputs(outage)), [step])
    return Resolution(case, "no_action", None)


def _fee_dispute(case: CaseData, account: AccountView, rules: Eligibility, inputs: dict[str, Any]) -> Resolution:
    fee = next((f for f in account.fees if f.fee_id == case.fee_id), None)
    if fee is None or fee.waived:
        return Resolution(case, "unknown_fee", None)
    decision = rules.decide("fee_waiver", **inputs)
    if not decision.flag("waive"):
        return Resolution(case, "fee_not_waived", decision)
    amount = cents(fee.amount_usd)
    args = {
        "account_id": case.account_id,
        "fee_id": fee.fee_id,
        "case_id": case.case_id,
        "amount_usd": number(amount),
        "rule": decision.path,
    }
    facts = _facts(f"waive fee {fee.fee_id} ({fee.kind}) of {amount} USD", decision, amount_usd=amount)
    return Resolution(case, "fee_waived", decision, [Step("waive_fee", args, facts, f"waive:{fee.fee_id}")])


def _credit(account_id: str, case_id: str, amount: Decimal, tier: str, *, decision: Decision, key: str) -> Step:
    args = {
        "account_id": account_id,
        "case_id": case_id,
        "amount_usd": number(amount),
        "tier": tier,
        "rule": decision.path,
    }
    return Step(
        "credit_account", args, _facts(f"credit {account_id} {amount} USD ({tier})", decision, amount_usd=amount), key
    )


def outage_inputs(outage: OutageData) -> dict[str, Any]:
    return outage.model_dump(mode="python")


def outage_credit(outage: OutageData, account_id: str, rules: Eligibility) -> Step | None:
    """The compensation an account is owed for an outage: its tier by impact (the same for every account)."""
    decision = rules.decide("outage_tier", outage=outage_inputs(outage))
    amount = cents(decision.number("amount"))
    if amount <= 0:
        return None
    tier = f"outage:{decision.text('tier')}"
    return _credit(
        account_id, outage.outage_id, amount, tier, decision=decision, key=f"credit:{outage.outage_id}:{account_id}"
    )


def outreach_wave(outage: OutageData, accounts: dict[str, AccountView], rules: Eligibility) -> Step | None:
    """Proactive outreach after an outage: every reached account the policy says to contact, highest priority
    first, ties by account id — the order and each priority are recorded in the proposal."""
    ranked: list[tuple[Decimal, str, str]] = []
    for account_id in sorted(set(outage.accounts)):
        account = accounts.get(account_id)
        if account is None or account.cancelled:
            continue
        decision = rules.decide("outreach_priority", outage=outage_inputs(outage), account=account_inputs(account))
        if decision.flag("contact"):
            ranked.append((decision.number("priority"), account_id, decision.path))
    if not ranked:
        return None
    ranked.sort(key=lambda r: (-r[0], r[1]))
    rule = ranked[0][2]
    args = {
        "wave_id": f"wave:{outage.outage_id}",
        "outage_id": outage.outage_id,
        "contacts": [r[1] for r in ranked],
        "priorities": [number(r[0]) for r in ranked],
        "ordered_by": f"{rule}; ties by account id",
    }
    facts = Facts(
        intent="propose",
        decision=f"contact {len(ranked)} customers after outage {outage.outage_id}",
        reasons=[f"order: {rule}, highest priority first, ties by account id"],
        figures={"first": ranked[0][1], "contacts": str(len(ranked))},
        rules=[rule],
    )
    return Step("schedule_outreach", args, facts, f"outreach:{outage.outage_id}")


def reengagements(snapshot: Snapshot, rules: Eligibility) -> list[Step]:
    """A check-in for every account the re-engagement table selects today (in account order)."""
    steps: list[Step] = []
    for account in sorted(snapshot.accounts, key=lambda a: a.account_id):
        decision = rules.decide("reengagement", account=account_inputs(account), today=snapshot.day)
        if not decision.flag("send"):
            continue
        days = int(decision.number("days_inactive"))
        args = {"account_id": account.account_id, "days_inactive": days, "rule": decision.path}
        facts = _facts(
            f"check in with {account.account_id} after {days} days without login", decision, days_inactive=days
        )
        steps.append(Step("send_reengagement", args, facts, f"reengage:{account.account_id}:{snapshot.day}"))
    return steps


def retention_offer(case: CaseData, account: AccountView | None, rules: Eligibility) -> Step | None:
    """The retention tier the policy assigns a churn signal (by tenure, usage and churn risk), or none."""
    if account is None or account.cancelled:
        return None
    decision = rules.decide("retention_offer", case=case_inputs(case, account), account=account_inputs(account))
    if not decision.flag("offer"):
        return None
    args = {
        "account_id": account.account_id,
        "tier": decision.text("tier"),
        "discount_pct": number(decision.number("discount_pct")),
        "months": int(decision.number("months")),
        "rule": decision.path,
    }
    facts = _facts(
        f"offer {account.account_id} the {args['tier']} retention tier",
        decision,
        discount_pct=args["discount_pct"],
        months=args["months"],
    )
    return Step("offer_retention", args, facts, f"retain:{account.account_id}")


def told_outcome(resolution: Resolution, statuses: Mapping[str, str | None]) -> str:
    """The outcome as it actually happened: the decided one once every step applied, else pending review (a denied
    or rejected credit is never announced as paid)."""
    return resolution.outcome if all(s == "applied" for s in statuses.values()) else "pending_review"


def outcome_facts(resolution: Resolution, outcome: str) -> Facts:
    """What the customer is told, for the narrator to word."""
    return Facts(
        intent="notify",
        decision=f"tell the customer the outcome of case {resolution.case.case_id}: {outcome}",
        reasons=[f"rule {resolution.rule}"],
        figures={"outcome": outcome},
        rules=[resolution.rule],
    )
