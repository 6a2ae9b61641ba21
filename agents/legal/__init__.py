"""coalition.agents.legal: the legal agent's engine (decisions) and graph (the LangGraph agent around it)."""

from coalition.agents.legal.graph import LegalAgent, LegalMemory

__all__ = ["LegalAgent", "LegalMemory"]
