"""coalition.agents.finance: the finance agent's engine (decisions) and graph (the LangGraph agent around it)."""

from coalition.agents.finance.graph import FinanceAgent, FinanceMemory

__all__ = ["FinanceAgent", "FinanceMemory"]
