"""coalition.agents.ops."""
