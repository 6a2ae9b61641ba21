"""The Agent port: what the runtime hands an agent each superstep, and what it gets back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from coalition.bus.clock import IdFactory
from coalition.bus.envelope import Envelope
from coalition.bus.message import Message


@dataclass(frozen=True, slots=True)
class AgentStepContext:
    """Who the agent is, which superstep and simulated time it is, and where its ids come from."""

    agent: str
    superstep: int
    sim_time: datetime
    ids: IdFactory  # the agent's own namespace (e.g. "agent:finance"); never shared with another producer

    def proposal_id(self, n: int) -> str:
        """The id of the agent's n-th proposal in this superstep: a function of (seed, agent, superstep, n)."""
        return self.ids.derive("proposal", str(self.superstep), str(n))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message an agent wants published, with the envelope that caused it (for causation/correlation)."""

    topic: str
    message: Message
    trigger: Envelope | None


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input the agent could not use, and why: the runtime dead-letters it so nothing vanishes silently."""

    envelope: Envelope
    reason: str


@dataclass(frozen=True, slots=True)
class AgentOutput:
    """Everything one agent step produced, in the order it must be published."""

    messages: tuple[Outgoing, ...] = ()
    rejected: tuple[Rejected, ...] = field(default=())


@runtime_checkable
class Agent(Protocol):
    """A function agent: a compiled graph plus its memory, driven one superstep at a time.

    Memory is never persisted: a resumed run rebuilds it by re-executing the run deterministically."""

    @property
    def name(self) -> str: ...

    def run(self, inbox: Sequence[Envelope], ctx: AgentStepContext) -> AgentOutput:
        """Process this step's inbox (already filtered and sorted canonically) and return what to publish."""
        ...

    def owns(self, proposal_id: str) -> bool:
        """Whether this agent made the proposal (so its verdicts, resolutions and executions concern it)."""
        ...
