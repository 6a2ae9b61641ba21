"""Which deliveries concern an agent, and the canonical order it must see them in (docs/design.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from coalition.bus import topics
from coalition.bus.base import Delivery
from coalition.bus.envelope import Envelope
from coalition.bus.messages import ActionExecuted, AgentMessage, EscalationResolved, Observation, VerdictIssued

# The topic order of the design's topic table: observations first, executions last.
TOPIC_ORDER: tuple[str, ...] = (
    topics.OBSERVATIONS,
    topics.AGENT_MESSAGES,
    topics.PROPOSALS,
    topics.VERDICTS,
    topics.AUTHORIZATIONS,
    topics.EXECUTIONS,
    topics.CONTROL,
    topics.DEAD_LETTERS,
)
AGENT_TOPICS: tuple[str, ...] = (topics.OBSERVATIONS, topics.AGENT_MESSAGES, topics.VERDICTS, topics.EXECUTIONS)


def concerns(agent: str, owns: Callable[[str], bool], envelope: Envelope) -> bool:
    """Addressed to the agent (`to`), or the verdict / resolution / execution of one of its proposals."""
    payload = envelope.payload
    if isinstance(payload, Observation | AgentMessage):
        return agent in payload.to
    if isinstance(payload, VerdictIssued | ActionExecuted):
        return payload.agent == agent or owns(payload.proposal_id)
    if isinstance(payload, EscalationResolved):
        return owns(payload.proposal_id)
    return False


def _rank(topic: str) -> int:
    return TOPIC_ORDER.index(topic) if topic in TOPIC_ORDER else len(TOPIC_ORDER)


def canonical_order(deliveries: Sequence[Delivery]) -> list[Delivery]:
    """Sort by topic order, then superstep, then source; stream order is kept among equals (stable sort)."""
    return sorted(
        deliveries,
        key=lambda d: (
            _rank(d.topic),
            d.envelope.superstep if d.envelope else -1,
            d.envelope.source if d.envelope else "",
        ),
    )
