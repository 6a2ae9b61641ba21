"""coalition.agents.finance."""
