"""coalition.agents.marketing: the marketing agent's engine (decisions) and graph (the LangGraph agent around it)."""

from coalition.agents.marketing.graph import MarketingAgent, MarketingMemory

__all__ = ["MarketingAgent", "MarketingMemory"]
