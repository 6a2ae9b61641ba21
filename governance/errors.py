"""Errors of the governance package. Governance answers "no" with a verdict or a refusal value; these are
for broken inputs (a malformed policy file, unreadable proposal arguments), never for a policy decision."""

from __future__ import annotations


class GovernanceError(Exception):
    """Base of every governance error."""


class PolicyError(GovernanceError):
    """A policy file that cannot be used; str() is one line: "<file>: <a.b[2].c>: <what is wrong>"."""

    def __init__(self, path: str, field_path: str, reason: str) -> None:
        super().__init__(f"{path}: {field_path}: {reason}")
        self.path = path
        self.field_path = field_path
        self.reason = reason
