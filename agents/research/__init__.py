"""coalition.agents.research: the research agent's engine (decisions) and graph (the LangGraph agent around it)."""

from coalition.agents.research.graph import ResearchAgent, ResearchMemory

__all__ = ["ResearchAgent", "ResearchMemory"]
