"""coalition.governance."""
