"""Helios's five function agents, each a package: `engine.py` (the deterministic decisions) and `agent.py` (the
FunctionAgent whose LangGraph graph runs them and words the result). They reach governance only through the bus."""
