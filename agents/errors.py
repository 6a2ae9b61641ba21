"""Errors of the agents package: a clear one-line message naming what is wrong and where."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every agents error."""


class UnusableInput(AgentError):
    """An observation or agent message an agent cannot use (bad or missing data); it is dead-lettered."""

    def __init__(self, agent: str, kind: str, envelope_id: str, reason: str) -> None:
        super().__init__(f"agent:{agent} cannot use {kind} {envelope_id}: {reason}")
        self.agent = agent
        self.kind = kind
        self.envelope_id = envelope_id
        self.reason = reason


class ScriptExhausted(AgentError):
    """A ScriptedModel was called more times than it has scripted responses."""

    def __init__(self, calls: int, scripted: int) -> None:
        super().__init__(f"ScriptedModel call {calls} has no scripted response (only {scripted} scripted)")
        self.calls = calls
        self.scripted = scripted


class ModelConfigError(AgentError):
    """A model choice that cannot be honoured (unknown provider, missing key, unknown price): one line, pre-run.

    `reason` is the problem without the leading "where" (for callers that say where themselves)."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class ReplayMiss(AgentError):
    """A replayed run asked a model something the recording has no answer for (the run diverged)."""

    def __init__(self, agent: str, request_hash: str, recorded: int) -> None:
        super().__init__(
            f"agent:{agent}: no recorded model answer for request {request_hash[:16]}… ({recorded} recorded); "
            "the replay diverged from the original run"
        )
        self.agent = agent
        self.request_hash = request_hash
