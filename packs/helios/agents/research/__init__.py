"""The research agent: its engine (the decisions) and agent (the LangGraph agent around it)."""

from coalition.packs.helios.agents.research.agent import ResearchAgent, ResearchMemory

__all__ = ["ResearchAgent", "ResearchMemory"]
