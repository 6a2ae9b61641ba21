"""coalition.agents.marketing."""
