"""coalition.agents.research."""
