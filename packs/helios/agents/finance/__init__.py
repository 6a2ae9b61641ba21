"""The finance agent: its engine (the decisions) and agent (the LangGraph agent around it)."""

from coalition.packs.helios.agents.finance.agent import FinanceAgent, FinanceMemory

__all__ = ["FinanceAgent", "FinanceMemory"]
