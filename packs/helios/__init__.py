"""Helios Renewables Exchange: the reference business, a peer-to-peer renewable-energy marketplace, as a pack.

Registered as the `helios` entry point of the `coalition.packs` group (pyproject.toml); the core reaches it
only through coalition.domain.catalog."""

from __future__ import annotations

from importlib import resources

from coalition.domain import AgentDecl, Pack, WorldDecl
from coalition.governance.policy import GATES
from coalition.packs.helios import observations
from coalition.packs.helios.actions import ACTIONS
from coalition.packs.helios.agents.finance import FinanceAgent
from coalition.packs.helios.agents.legal import LegalAgent
from coalition.packs.helios.agents.marketing import MarketingAgent
from coalition.packs.helios.agents.ops import OpsAgent
from coalition.packs.helios.agents.research import ResearchAgent
from coalition.scenarios.world import World, WorldSpec

PACK = Pack(
    name="helios",
    title="Helios Renewables Exchange",
    description="A peer-to-peer renewable-energy marketplace: research, finance, marketing, legal and ops agents.",
    actions=ACTIONS,
    agents=tuple(
        AgentDecl(agent.NAME, agent, reacts_to=agent.REACTS_TO, doc=(agent.__doc__ or "").split("\n")[0])
        for agent in (ResearchAgent, FinanceAgent, MarketingAgent, LegalAgent, OpsAgent)
    ),
    world=WorldDecl(
        build=World.from_spec,
        spec=WorldSpec,
        observations=observations.OBSERVATIONS,
        generated=observations.GENERATED,
        data_models=observations.DATA_MODELS,
        lenient_parts=observations.LENIENT_PARTS,
    ),
    gates=GATES,
    policy=resources.files("coalition.governance").joinpath("policies/helios.yaml"),
    scenarios=resources.files("coalition.scenarios").joinpath("library"),
)

__all__ = ["PACK"]
