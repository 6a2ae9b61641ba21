"""coalition.agents."""
