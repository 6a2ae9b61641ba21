"""The agents a scenario replaces by graphs of the user's own (`agents.<name>.graph`, agents/graph_agent.py): each
gets the pack agent's name, narrator, observations and the actions the policy permits it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel

from coalition.agents.model_budget import REQUEST_ACTION
from coalition.agents.narrator import Narrator
from coalition.agents.voices import offline_model
from coalition.domain import Pack
from coalition.governance.policy import Policy

if TYPE_CHECKING:
    from coalition.agents.graph_agent import GraphAgent


def reacts_to(pack: Pack, agent: str) -> frozenset[str]:
    """The observation kinds the pack routes to the agent that a scenario schedules (not the world's own
    snapshots and briefs): each starts a conversation of the agent's graph."""
    world = pack.world
    if world is None:
        return frozenset()
    return frozenset(k for k, to in world.observations.items() if agent in to and k not in world.generated)


def graph_agents(
    graphs: Mapping[str, str],
    pack: Pack,
    policy: Policy,
    *,
    narrators: Mapping[str, Narrator],
    model: BaseChatModel | None,
    seed: int,
) -> dict[str, GraphAgent]:
    """One GraphAgent per `agent -> "module:factory"`; GraphFactoryError (one line) for a factory that cannot be
    imported. LangGraph loads only for a run that has such graphs."""
    built: dict[str, GraphAgent] = {}
    if not graphs:
        return built
    from coalition.agents.graph_agent import GraphAgent, load_factory
    from coalition.scenarios.agent_lanes import customer_texts

    for name, ref in sorted(graphs.items()):
        factory = load_factory(ref, f"agents.{name}.graph")
        narrator = narrators.get(name) or Narrator(model or offline_model(name, seed), agent=name)
        permitted = [a for a in policy.permissions.get(name, []) if a != REQUEST_ACTION]
        actions = {a: action for a in permitted if (action := pack.action(a)) is not None}
        built[name] = GraphAgent(
            name, factory, narrator, actions, reacts_to=reacts_to(pack, name), customer_texts=customer_texts()
        )
    return built
