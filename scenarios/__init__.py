"""coalition.scenarios."""
