"""The billing desk's actions, each declared once: its argument model, handler, default proposers, charged
argument and dependency keys."""

from __future__ import annotations

from coalition.domain import Action
from coalition.packs.billing_desk import arguments as a
from coalition.packs.billing_desk import effects as fx

ACTIONS: tuple[Action, ...] = (
    Action(
        "waive_fee",
        a.WaiveFee,
        fx.waive_fee,
        proposers=("billing",),
        charges="amount_usd",
        dependency_keys=("account_id",),
        doc="Waive one fee of an account, in full, by a fee-waiver rule.",
    ),
    Action(
        "credit_account",
        a.CreditAccount,
        fx.credit_account,
        proposers=("billing",),
        charges="amount_usd",
        dependency_keys=("account_id",),
        doc="Credit an account (billing error, outage tier), capped by the policy.",
    ),
    Action(
        "offer_retention",
        a.OfferRetention,
        fx.offer_retention,
        proposers=("retention",),
        dependency_keys=("account_id",),
        doc="Offer the retention tier the policy assigns (discount for months).",
    ),
    Action(
        "cancel_without_penalty",
        a.CancelWithoutPenalty,
        fx.cancel_without_penalty,
        proposers=("billing",),
        dependency_keys=("account_id",),
        doc="Cancel a contract without the early-exit fee, when eligible.",
    ),
    Action(
        "schedule_outreach",
        a.ScheduleOutreach,
        fx.schedule_outreach,
        proposers=("outreach",),
        doc="Schedule proactive outreach after an outage: the contact list in the policy's fair order.",
    ),
    Action(
        "send_reengagement",
        a.SendReengagement,
        fx.send_reengagement,
        proposers=("outreach",),
        dependency_keys=("account_id",),
        doc="Check in with a customer who has not logged in for a while.",
    ),
    Action(
        "notify_customer",
        a.NotifyCustomer,
        fx.notify_customer,
        proposers=("billing",),
        dependency_keys=("account_id",),
        doc="Tell a customer the outcome of their case (wording by the model).",
    ),
    Action(
        "escalate_case",
        a.EscalateCase,
        fx.escalate_case,
        proposers=("billing",),
        safe_while_pending=True,
        doc="Hand a case to a human when an escalation trigger fires (sentiment, journey time, regulator).",
    ),
)
