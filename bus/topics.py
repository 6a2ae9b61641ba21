"""Topic names of the loop: one stream per kind of traffic. Human decisions are not among them: they are
appended to the ledger by the approvals service (docs/design.md)."""

from __future__ import annotations

OBSERVATIONS = "observations"
AGENT_MESSAGES = "agent-messages"
PROPOSALS = "proposals"
VERDICTS = "verdicts"
AUTHORIZATIONS = "authorizations"
EXECUTIONS = "executions"
CONTROL = "control"
DEAD_LETTERS = "dead-letters"

ALL: tuple[str, ...] = (
    OBSERVATIONS,
    AGENT_MESSAGES,
    PROPOSALS,
    VERDICTS,
    AUTHORIZATIONS,
    EXECUTIONS,
    CONTROL,
    DEAD_LETTERS,
)
