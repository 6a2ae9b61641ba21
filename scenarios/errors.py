"""Errors of the scenarios package, with the fields a caller needs to point a user at the mistake."""

from __future__ import annotations

from collections.abc import Sequence

from coalition.domain import ActionRefused


class ScenariosError(Exception):
    """Base of every scenarios error."""


class Problem(ValueError):
    """A validation problem in a scenario document that knows where it is, relative to the model (or the part of
    the document) that raised it. A pack's world model and its scenario checks raise it too."""

    def __init__(self, reason: str, at: Sequence[str | int] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.at = tuple(at)


class ScenarioError(ScenariosError):
    """A scenario file cannot be used: `file`, the `path` inside the document, and the problem, on one line."""

    def __init__(self, file: str, path: str, reason: str) -> None:
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.path = path
        self.reason = reason


class WorldError(ScenariosError):
    """The world was asked for something that cannot happen (time moving backwards, an unknown path)."""


class ExecutionRefused(ActionRefused, ScenariosError):
    """An authorized action cannot be applied to the world as it is; the world is left unchanged."""


class RunnerError(ScenariosError):
    """A run cannot go on (a day that never settles, an escalation that vanished); the ledger keeps what happened."""
