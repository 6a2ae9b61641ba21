"""The signed message of the agent workers' control plane: a run announced to them (coalition.bus.worker_control).

An announcement makes a worker build the run's agents, with the run's model choices, under the run's policy: it
travels as an envelope signed by the run's coordinator (`runner`) for that run id, and a worker acts on nothing
else (coalition.scenarios.agent_workers).
"""

from __future__ import annotations

from typing import Any

from coalition.bus.message import Message, register


@register
class RunAnnounced(Message):
    """A run served by agent workers (its document: scenarios.agent_workers.Announcement). Emitted by the run's
    coordinator into `coalition:agent-runs`; consumed by every `coalition worker`, which verifies it first."""

    TYPE = "workers.run_announced"

    document: dict[str, Any]
