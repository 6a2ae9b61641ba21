"""coalition.agents.legal."""
