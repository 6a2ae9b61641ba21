"""The marketing agent: its engine (the decisions) and agent (the LangGraph agent around it)."""

from coalition.packs.helios.agents.marketing.agent import MarketingAgent, MarketingMemory

__all__ = ["MarketingAgent", "MarketingMemory"]
