"""The billing desk: a utility's customer-experience desk (billing disputes, fee waivers and maximum credits, outage
compensation tiers, cancellation without penalty, retention offers, fair proactive outreach, re-engagement, and
escalation to humans by sentiment, time-in-journey and regulatory triggers), as a pack.

Registered as the `billing-desk` entry point of the `coalition.packs` group (pyproject.toml). Every eligibility
rule lives in its policy (policy.yaml, `eligibility:`), none in agent code."""

from __future__ import annotations

from importlib import resources

from coalition.domain import AgentDecl, Pack, WorldDecl
from coalition.packs.billing_desk.actions import ACTIONS
from coalition.packs.billing_desk.agents import BillingAgent, OutreachAgent, RetentionAgent
from coalition.packs.billing_desk.engines import CaseData, OutageData
from coalition.packs.billing_desk.world import Desk, DeskSpec

DESK_AGENTS = ("billing", "retention", "outreach")

PACK = Pack(
    name="billing-desk",
    title="Billing desk",
    description="A utility's customer-experience desk: billing, retention and outreach agents; eligibility as data.",
    actions=ACTIONS,
    agents=tuple(
        AgentDecl(agent.NAME, agent, reacts_to=agent.REACTS_TO, doc=(agent.__doc__ or "").split("\n")[0])
        for agent in (BillingAgent, RetentionAgent, OutreachAgent)
    ),
    world=WorldDecl(
        build=Desk.from_spec,
        spec=DeskSpec,
        observations={
            "accounts.snapshot": DESK_AGENTS,
            "case": ("billing", "retention"),
            "outage": ("billing", "outreach"),
        },
        generated=frozenset({"accounts.snapshot"}),
        data_models={"case": CaseData, "outage": OutageData},
    ),
    gates=("case_escalation", "refund_approval", "cancellation_approval", "budget_overrun"),
    policy=resources.files("coalition.packs.billing_desk").joinpath("policy.yaml"),
    scenarios=resources.files("coalition.packs.billing_desk").joinpath("scenarios"),
)

__all__ = ["PACK"]
