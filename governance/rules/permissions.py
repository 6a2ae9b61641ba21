"""Tool permissions per agent, deny by default (an agent may propose only the actions the policy grants it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from coalition.bus.messages import ActionProposed
from coalition.governance.policy import action_names
from coalition.governance.state import GovernanceState
from coalition.governance.verdict import Finding


class Permissions:
    """Deny any action the policy does not grant to the proposing agent (and any unknown action)."""

    rule_id = "perm.deny_by_default"
    actions: frozenset[str] | None = None

    def __init__(self, permissions: Mapping[str, Sequence[str]]) -> None:
        self._granted = {agent: frozenset(actions) for agent, actions in permissions.items()}
        self._known = action_names()

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        action = proposal.action
        if action not in self._known:
            return Finding("deny", "perm.unknown_action", f"{action!r} is not an action the executor knows")
        granted = self._granted.get(proposal.agent)
        if granted is not None and action in granted:
            return None
        may = ", ".join(sorted(granted)) if granted else "nothing"
        return Finding(
            "deny", self.rule_id, f"{proposal.agent} may not {action} (deny by default; {proposal.agent} may: {may})"
        )
