"""Errors of the pack contract: a pack that cannot be loaded, arguments that do not fit, an action refused."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every pack-contract error."""


class PackError(DomainError):
    """A pack cannot be found or loaded; str() is one line naming the pack (and the entry point) and the problem."""

    def __init__(self, pack: str, reason: str) -> None:
        super().__init__(f"pack {pack!r}: {reason}")
        self.pack = pack
        self.reason = reason


class ArgumentProblem(DomainError):
    """An action's arguments do not fit its argument model: the first problem, on one line
    ("<action>: args.<name> <problem>"), with the action, the argument and the problem as fields."""

    def __init__(self, action: str, name: str, reason: str) -> None:
        super().__init__(f"{action}: args.{name} {reason}")
        self.action = action
        self.name = name
        self.reason = reason


class ActionRefused(DomainError):
    """An authorized action cannot be applied to the world as it is; the handler left the world unchanged."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SectionProblem(DomainError):
    """A pack's own policy section (Pack.policy_sections) is unusable: where in the document, and why (one line)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason
