"""The ops agent: its engine (the decisions) and agent (the LangGraph agent around it)."""

from coalition.packs.helios.agents.ops.agent import OpsAgent, OpsMemory

__all__ = ["OpsAgent", "OpsMemory"]
