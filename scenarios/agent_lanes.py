"""The policy's autonomy lanes (governance/lanes.py) handed to the agents (which never import governance)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coalition.agents.lanes import LaneSettings
from coalition.agents.workflow import FunctionAgent
from coalition.domain import catalog
from coalition.governance.policy import Policy


def lane_settings(policy: Policy, agent: str) -> LaneSettings | None:
    """One agent's lanes as the agent reads them; None when the policy leaves it wholly transactional."""
    lane = policy.lanes.get(agent)
    if lane is None or not lane.any_autonomous:
        return None
    return LaneSettings(
        lane=lane.lane,
        actions=dict(lane.actions),
        rounds=lane.rounds,
        permitted=tuple(policy.permissions.get(agent, [])),
    )


def use_lanes(agents: Mapping[str, FunctionAgent[Any]], policy: Policy) -> None:
    """Give every agent the policy puts (partly) in the autonomous lane its tool-calling chooser."""
    for name, agent in sorted(agents.items()):
        settings = lane_settings(policy, name)
        if settings is not None:
            agent.use_lanes(settings, catalog().actions)
