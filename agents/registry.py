"""Build the agents the installed packs declare around one chat model (the offline narrator by default)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel

from coalition.agents.narrator import Narrator
from coalition.agents.voices import offline_model
from coalition.agents.workflow import FunctionAgent
from coalition.domain import catalog


def agent_types(names: Iterable[str] | None = None) -> dict[str, Callable[[Narrator], FunctionAgent[Any]]]:
    """How to build each agent the installed packs declare (or only `names`), by name."""
    declared = catalog().agents
    chosen = declared if names is None else {name: declared[name] for name in names}
    return {name: agent.builder() for name, agent in chosen.items()}


def build_agents(
    model: BaseChatModel | None = None,
    seed: int = 0,
    *,
    narrators: Mapping[str, Narrator] | None = None,
    names: Iterable[str] | None = None,
) -> dict[str, FunctionAgent[Any]]:
    """The agents (every declared one, or only `names`) in name order. With `narrators`
    (coalition.agents.model_setup.build_narrators), each agent speaks through its own; otherwise each gets a
    narrator over `model` (default: the offline model, speaking with the agent's pack's voice)."""
    chosen = dict(narrators or {})
    types = agent_types(names)
    return {
        name: types[name](
            chosen.get(name) or Narrator(model if model is not None else offline_model(name, seed), agent=name)
        )
        for name in sorted(types)
    }
