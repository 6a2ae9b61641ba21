"""The billing desk: a utility's customer-experience desk (billing disputes, fee waivers and maximum credits, outage
compensation tiers, cancellation without penalty, retention offers, fair proactive outreach, re-engagement, and
escalation to humans by sentiment, time-in-journey and regulatory triggers), as a pack.

Registered as the `billing-desk` entry point of the `coalition.packs` group (pyproject.toml). Every eligibility
rule lives in its policy (policy.yaml, `eligibility:`), none in agent code."""

from __future__ import annotations

from importlib import resources

from coalition.domain import AgentDecl, LoadedOnUse, Pack, Voice, WorldDecl
from coalition.packs.billing_desk import day
from coalition.packs.billing_desk.actions import ACTIONS
from coalition.packs.billing_desk.day import DESK_AGENTS
from coalition.packs.billing_desk.reporting import REPORTING
from coalition.packs.billing_desk.world import Desk, DeskSpec

PACK = Pack(
    name="billing-desk",
    title="Billing desk",
    description="A utility's customer-experience desk: billing, retention and outreach agents; eligibility as data.",
    actions=ACTIONS,
    # Each agent's class is imported only when agents are built (reading the vocabulary loads no LangChain).
    agents=(
        AgentDecl(
            "billing",
            "coalition.packs.billing_desk.agents:BillingAgent",
            doc="Billing resolver: eligibility checks → adjustment or escalation → the customer's answer (C1-C6, C8).",
        ),
        AgentDecl(
            "retention",
            "coalition.packs.billing_desk.agents:RetentionAgent",
            doc="Retention: the offer tier the policy assigns by tenure, usage and churn risk; the tone is the "
            "model's (C9).",
        ),
        AgentDecl(
            "outreach",
            "coalition.packs.billing_desk.agents:OutreachAgent",
            doc="Outreach: the contact list after an outage in the policy's fair order (C7); a check-in after days "
            "without login (C13).",
        ),
    ),
    world=WorldDecl(
        build=Desk.from_spec,
        open_day=day.open_day,
        spec=DeskSpec,
        observations={
            "accounts.snapshot": DESK_AGENTS,
            "policy.brief": DESK_AGENTS,
            "case": ("billing", "retention"),
            "outage": ("billing", "outreach"),
        },
        generated=frozenset({"accounts.snapshot", "policy.brief"}),
        data_models=LoadedOnUse("coalition.packs.billing_desk.engines:DATA_MODELS"),
        cases=frozenset({"case"}),
    ),
    gates=("case_escalation", "refund_approval", "cancellation_approval", "budget_overrun"),
    policy=resources.files("coalition.packs.billing_desk").joinpath("policy.yaml"),
    scenarios=resources.files("coalition.packs.billing_desk").joinpath("scenarios"),
    brief=day.brief,
    policy_sections=("eligibility",),
    check_policy=day.check_policy,
    reporting=REPORTING,
    scenario_template=resources.files("coalition.packs.billing_desk").joinpath("scenario-template.yaml"),
    voice=Voice(
        business="a utility's billing desk",
        sign_off="An update from your billing desk",
        offline_model="offline:billing-desk-narrator-v1",
    ),
)

__all__ = ["PACK"]
