"""Governance rules: small pure callables run as a pipeline by evaluate()."""
