"""What every Helios agent remembers beyond the core's memory: the policy brief as Helios words it and the day's
market snapshot, each folded in by the graph's first node (AgentMemory.FOLDS)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from coalition.agents.memory import AgentMemory
from coalition.agents.payloads import WorldData
from coalition.packs.helios.payloads import MarketSnapshot, PolicyBrief


class HeliosMemory(AgentMemory):
    """The memory every Helios agent's own extends."""

    FOLDS: ClassVar[Mapping[str, tuple[str, type[WorldData]]]] = {
        "policy.brief": ("brief", PolicyBrief),
        "market.snapshot": ("market", MarketSnapshot),
    }

    brief: PolicyBrief | None = None
    market: MarketSnapshot | None = None
