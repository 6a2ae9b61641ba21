"""The legal agent: its engine (the decisions) and agent (the LangGraph agent around it)."""

from coalition.packs.helios.agents.legal.agent import LegalAgent, LegalMemory

__all__ = ["LegalAgent", "LegalMemory"]
