"""Helios Renewables Exchange: the reference business, a peer-to-peer renewable-energy marketplace, as a pack.

Registered as the `helios` entry point of the `coalition.packs` group (pyproject.toml); the core reaches it
only through coalition.domain.catalog."""

from __future__ import annotations

from importlib import resources
from typing import Any

from coalition.domain import AgentDecl, GovernanceDecl, LoadedOnUse, Pack, Voice, WorldDecl
from coalition.packs.helios import day, learned, observations
from coalition.packs.helios.actions import ACTIONS
from coalition.packs.helios.brief import brief
from coalition.packs.helios.built_in_rules import built_in_rules
from coalition.packs.helios.policy_model import ENFORCED_LIMITS, GATES, HeliosLimits
from coalition.packs.helios.reporting import REPORTING
from coalition.packs.helios.world import WorldSpec


def _check_event(spec: Any, event: Any) -> None:
    """scenario_checks.check_event, imported when a scenario is checked: it reads the payload models, which a
    command that only validates a policy never loads."""
    from coalition.packs.helios.scenario_checks import check_event

    check_event(spec, event)


PACK = Pack(
    name="helios",
    title="Helios Renewables Exchange",
    description="A peer-to-peer renewable-energy marketplace: research, finance, marketing, legal and ops agents.",
    actions=ACTIONS,
    # Each agent's class is imported only when agents are built (reading the vocabulary loads no LangChain).
    agents=(
        AgentDecl(
            "research",
            "coalition.packs.helios.agents.research:ResearchAgent",
            doc="Chief Intelligence Officer: evidence pipeline and market scoring.",
        ),
        AgentDecl(
            "finance",
            "coalition.packs.helios.agents.finance:FinanceAgent",
            doc="Chief Financial Agent: pricing engine, treasury and capital allocation.",
        ),
        AgentDecl(
            "marketing",
            "coalition.packs.helios.agents.marketing:MarketingAgent",
            doc="Chief Growth Agent: a controlled language system mapped to compliance-approved claims.",
        ),
        AgentDecl(
            "legal",
            "coalition.packs.helios.agents.legal:LegalAgent",
            doc="Chief Compliance Agent: regulatory monitoring, claims linting, jurisdiction packs.",
        ),
        AgentDecl(
            "ops",
            "coalition.packs.helios.agents.ops:OpsAgent",
            doc="Chief Operations Agent: diagnose → propose action → execute within permissions → log.",
        ),
        AgentDecl(
            "sales",
            "coalition.packs.helios.agents.sales:SalesAgent",
            observes=("partner.pipeline", "ops.capacity"),
            doc="Partnerships (H9): partner scoring, deals within finance's and legal's terms, ops capacity first.",
        ),
        AgentDecl(
            "liquidity",
            "coalition.packs.helios.agents.liquidity:LiquidityAgent",
            observes=("market.sides",),
            doc="Market balance (H10): targeted offers to a market's short side within budget and the incentive cap.",
        ),
    ),
    world=WorldDecl(
        build=day.build,
        open_day=day.open_day,
        spec=WorldSpec,
        observations=observations.OBSERVATIONS,
        generated=observations.GENERATED,
        data_models=LoadedOnUse("coalition.packs.helios.observation_models:DATA_MODELS"),
        lenient_parts=LoadedOnUse("coalition.packs.helios.observation_models:LENIENT_PARTS"),
        cases=frozenset({"dispute"}),
        check_event=_check_event,
    ),
    gates=GATES,
    policy=resources.files("coalition.packs.helios").joinpath("policies/helios.yaml"),
    scenarios=resources.files("coalition.packs.helios").joinpath("scenarios"),
    brief=brief,
    demo="helios-launch",
    reporting=REPORTING,
    scenario_template=resources.files("coalition.packs.helios").joinpath("scenario-template.yaml"),
    # Recorded in every run (instructions by hash, the offline wording and model id by text): changing it changes
    # the ledgers of Helios runs, the golden ledger among them.
    voice=Voice(
        business="Helios Renewables Exchange",
        sign_off="An update from Helios",
        offline_model="offline:helios-narrator-v1",
    ),
    governance=GovernanceDecl(
        limits=HeliosLimits,
        built_in_rules=built_in_rules,
        enforced_limits=ENFORCED_LIMITS,
        observes=learned.OBSERVES,
        state_fields=learned.STATE_FIELDS,
    ),
)

__all__ = ["PACK"]
