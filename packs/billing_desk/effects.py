"""The effect of each billing-desk action on the desk. A handler checks everything first and only then changes the
world, so a refusal (ActionRefused) leaves it untouched."""

from __future__ import annotations

from coalition.domain import ActionContext, ActionRefused, Changes
from coalition.packs.billing_desk.arguments import (
    CancelWithoutPenalty,
    CreditAccount,
    EscalateCase,
    NotifyCustomer,
    OfferRetention,
    ScheduleOutreach,
    SendReengagement,
    WaiveFee,
)
from coalition.packs.billing_desk.world import Desk, cents


def waive_fee(desk: Desk, a: WaiveFee, ctx: ActionContext) -> Changes:
    account = desk.open_account(a.account_id)
    fee = desk.fee(a.fee_id, a.account_id)
    if fee.waived_day is not None:
        raise ActionRefused(f"fee {a.fee_id} was already waived on day {fee.waived_day}")
    if a.amount_usd != fee.amount_usd:
        raise ActionRefused(f"fee {a.fee_id} is {fee.amount_usd} USD, not {a.amount_usd} USD")
    fee.waived_day = ctx.day
    account.balance_usd = cents(account.balance_usd - a.amount_usd)
    account.waivers_12m += 1
    desk.state.waived_usd += a.amount_usd
    desk.record("waive_fee", a.account_id, a.case_id, fee_id=a.fee_id, amount_usd=str(a.amount_usd), rule=a.rule)
    return {"fee_waived": {"account_id": a.account_id, "fee_id": a.fee_id, "amount_usd": float(a.amount_usd)}}


def credit_account(desk: Desk, a: CreditAccount, ctx: ActionContext) -> Changes:
    account = desk.open_account(a.account_id)
    account.balance_usd = cents(account.balance_usd - a.amount_usd)
    account.credited_usd += a.amount_usd
    desk.state.credits_usd += a.amount_usd
    desk.record("credit_account", a.account_id, a.case_id, amount_usd=str(a.amount_usd), tier=a.tier, rule=a.rule)
    return {"credited": {"account_id": a.account_id, "amount_usd": float(a.amount_usd), "tier": a.tier}}


def offer_retention(desk: Desk, a: OfferRetention, ctx: ActionContext) -> Changes:
    account = desk.open_account(a.account_id)
    if account.retention_tier is not None:
        raise ActionRefused(f"account {a.account_id} already holds the {account.retention_tier} retention offer")
    account.retention_tier = a.tier
    account.discount_pct = a.discount_pct
    account.discount_months = a.months
    desk.record("offer_retention", a.account_id, None, tier=a.tier, discount_pct=str(a.discount_pct), rule=a.rule)
    return {"retention": {"account_id": a.account_id, "tier": a.tier, "discount_pct": float(a.discount_pct)}}


def cancel_without_penalty(desk: Desk, a: CancelWithoutPenalty, ctx: ActionContext) -> Changes:
    account = desk.open_account(a.account_id)
    account.cancelled_day = ctx.day
    desk.record(
        "cancel_without_penalty", a.account_id, a.case_id, penalty_waived_usd=str(a.penalty_waived_usd), rule=a.rule
    )
    return {"cancelled": {"account_id": a.account_id, "penalty_waived_usd": float(a.penalty_waived_usd)}}


def schedule_outreach(desk: Desk, a: ScheduleOutreach, ctx: ActionContext) -> Changes:
    if a.wave_id in desk.state.outreach:
        raise ActionRefused(f"outreach wave {a.wave_id} is already scheduled")
    for account_id in a.contacts:
        desk.account(account_id)
    desk.state.outreach[a.wave_id] = list(a.contacts)
    desk.record("schedule_outreach", None, None, wave_id=a.wave_id, contacts=list(a.contacts), ordered_by=a.ordered_by)
    return {"outreach": {"wave_id": a.wave_id, "contacts": list(a.contacts)}}


def send_reengagement(desk: Desk, a: SendReengagement, ctx: ActionContext) -> Changes:
    account = desk.open_account(a.account_id)
    account.last_reengaged_day = ctx.day
    desk.record("send_reengagement", a.account_id, None, days_inactive=a.days_inactive, rule=a.rule)
    return {"reengaged": {"account_id": a.account_id, "days_inactive": a.days_inactive}}


def notify_customer(desk: Desk, a: NotifyCustomer, ctx: ActionContext) -> Changes:
    desk.account(a.account_id)
    desk.record("notify_customer", a.account_id, a.case_id, rule=a.rule)
    return {"notified": {"account_id": a.account_id, "case_id": a.case_id, "rule": a.rule}}


def escalate_case(desk: Desk, a: EscalateCase, ctx: ActionContext) -> Changes:
    desk.account(a.account_id)
    if a.case_id in desk.state.escalated_cases:
        raise ActionRefused(f"case {a.case_id} is already with a human ({desk.state.escalated_cases[a.case_id]})")
    desk.state.escalated_cases[a.case_id] = a.trigger
    desk.record("escalate_case", a.account_id, a.case_id, trigger=a.trigger)
    return {"escalated": {"case_id": a.case_id, "trigger": a.trigger}}
