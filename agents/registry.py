"""Build the five function agents around one chat model (the offline narrator by default)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel

from coalition.agents.finance import FinanceAgent
from coalition.agents.legal import LegalAgent
from coalition.agents.marketing import MarketingAgent
from coalition.agents.narrator import Narrator
from coalition.agents.offline_model import OfflineChatModel
from coalition.agents.ops import OpsAgent
from coalition.agents.research import ResearchAgent
from coalition.agents.workflow import FunctionAgent
from coalition.bus.messages import AGENTS

AGENT_TYPES: dict[str, Callable[[Narrator], FunctionAgent[Any]]] = {
    "research": ResearchAgent,
    "finance": FinanceAgent,
    "marketing": MarketingAgent,
    "legal": LegalAgent,
    "ops": OpsAgent,
}
assert tuple(sorted(AGENT_TYPES)) == tuple(sorted(AGENTS)), "one agent type per name in coalition.bus.messages.AGENTS"


def build_agents(
    model: BaseChatModel | None = None, seed: int = 0, *, narrators: Mapping[str, Narrator] | None = None
) -> dict[str, FunctionAgent[Any]]:
    """The five agents in name order. With `narrators` (coalition.agents.model_setup.build_narrators), each
    agent speaks through its own; otherwise each gets a narrator over `model` (default OfflineChatModel(seed))."""
    shared = model if model is not None else OfflineChatModel(seed=seed)
    chosen = dict(narrators or {})
    return {name: AGENT_TYPES[name](chosen.get(name) or Narrator(shared, agent=name)) for name in sorted(AGENT_TYPES)}
