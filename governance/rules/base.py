"""The shape every rule has: an id, the actions it looks at, and a pure __call__ that may object."""

from __future__ import annotations

from typing import Protocol

from coalition.bus.messages import ActionProposed
from coalition.governance.state import GovernanceState
from coalition.governance.verdict import Finding


class Rule(Protocol):
    """A pipeline step (structlog's processor model): configured in __init__, pure work in __call__.

    `rule_id` names what the rule checks; `actions` the actions it applies to (None = every action).
    __call__ returns None when it has no objection, else a deny or an escalate Finding.
    """

    rule_id: str
    actions: frozenset[str] | None

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None: ...
