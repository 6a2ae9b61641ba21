"""The policy's autonomy lanes (governance/lanes.py) handed to the agents (which never import governance), with
governance's preview of a proposal: a pure dry run of the policy's rules on the current governance state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from coalition.agents.lanes import LaneSettings, Preview
from coalition.agents.workflow import FunctionAgent
from coalition.bus.messages import ActionProposed
from coalition.domain import catalog
from coalition.governance.evaluate import evaluate
from coalition.governance.policy import Policy
from coalition.governance.state import GovernanceState

PREVIEW_ID = "preview"  # the id of the sham proposal a preview evaluates (never published)


def lane_settings(policy: Policy, agent: str) -> LaneSettings | None:
    """One agent's lanes as the agent reads them; None when the policy leaves it wholly transactional."""
    lane = policy.lanes.get(agent)
    if lane is None or not lane.any_model_lane:
        return None
    return LaneSettings(
        lane=lane.lane,
        actions=dict(lane.actions),
        rounds=lane.rounds,
        permitted=tuple(policy.permissions.get(agent, [])),
    )


def governance_preview(policy: Policy, state: Callable[[], GovernanceState]) -> Preview:
    """What governance would say of a proposal now (None: allowed) — advice for the model, never authority: the
    proposal itself is still evaluated when it is published. Pure: `evaluate` on the state governance holds."""

    def preview(agent: str, action: str, args: Mapping[str, Any]) -> str | None:
        proposal = ActionProposed(
            proposal_id=PREVIEW_ID, agent=agent, action=action, args=dict(args), rationale="preview"
        )
        verdict = evaluate(proposal, state(), policy)
        if verdict.outcome == "allow":
            return None
        if verdict.outcome == "deny":
            return f"would be denied: {verdict.reasons[0]}"
        return f"would escalate: {verdict.gate or 'gate'} ({verdict.reasons[0]})"

    return preview


def customer_texts() -> dict[str, str]:
    """Action → the argument customers read, as the installed packs declare them (their reporting's texts)."""
    texts = (pack.reporting.texts for pack in catalog().packs.values())
    return {action: arg for found in texts if found is not None for action, arg in found.fields.items()}


def use_lanes(agents: Mapping[str, Any], policy: Policy, *, preview: Preview | None = None) -> None:
    """Give every agent the policy puts (partly) in a model lane its tool-calling chooser (a graph of the user's
    own, agents/graph_agent.py, chooses its actions itself)."""
    for name, agent in sorted(agents.items()):
        settings = lane_settings(policy, name)
        if settings is not None and isinstance(agent, FunctionAgent):
            agent.use_lanes(settings, catalog().actions, preview=preview, customer_texts=customer_texts())
