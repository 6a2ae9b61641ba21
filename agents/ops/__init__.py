"""coalition.agents.ops: the ops agent's engine (decisions) and graph (the LangGraph agent around it)."""

from coalition.agents.ops.graph import OpsAgent, OpsMemory

__all__ = ["OpsAgent", "OpsMemory"]
