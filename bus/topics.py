"""Topic names of the loop: one stream per kind of traffic."""

from __future__ import annotations

OBSERVATIONS = "observations"
AGENT_MESSAGES = "agent-messages"
PROPOSALS = "proposals"
VERDICTS = "verdicts"
APPROVALS = "approvals"
AUTHORIZATIONS = "authorizations"
EXECUTIONS = "executions"
CONTROL = "control"
DEAD_LETTERS = "dead-letters"

ALL: tuple[str, ...] = (
    OBSERVATIONS,
    AGENT_MESSAGES,
    PROPOSALS,
    VERDICTS,
    APPROVALS,
    AUTHORIZATIONS,
    EXECUTIONS,
    CONTROL,
    DEAD_LETTERS,
)
