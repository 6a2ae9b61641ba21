"""The signed messages of the agent workers' control plane: a run announced to them, each superstep's barrier and
each agent's report of its step (coalition.bus.worker_control).

An announcement makes a worker build the run's agents, with the run's model choices, under the run's policy; a
barrier makes it run them for a superstep. Each travels as an envelope signed by the run's coordinator (`runner`)
for that run id, and a worker acts on nothing else. A step report tells the coordinator that an agent's step is done
(so the superstep can move on to governance, or the day end when nothing was published): it travels signed by the
agent's own key, and the coordinator counts nothing else (coalition.scenarios.worker_orders).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from coalition.bus.message import Message, register

# The simulated time of a control message, which is part of no run's simulated story (a sweep's jobs and results, a
# run's announcement)
NO_SIM_TIME = datetime(1970, 1, 1, tzinfo=UTC)


@register
class RunAnnounced(Message):
    """A run served by agent workers (its document: scenarios.worker_orders.Announcement). Emitted by the run's
    coordinator into `coalition:agent-runs`; consumed by every `coalition worker`, which verifies it first."""

    TYPE = "workers.run_announced"

    document: dict[str, Any]


@register
class StepBarrier(Message):
    """Run superstep N at simulated time T (the envelope's superstep and sim_time), each agent on the worker named
    in `owners`. Emitted by the run's coordinator into `{<namespace>}:agent-barrier`, the `sequence`-th barrier of
    the run's attempt in that namespace (from 1; a takeover posts the same superstep again under the next number);
    the coordinator waits for the step's reports until `expires_at` (wall clock, ISO 8601). Consumed by the run's
    workers, which verify it and act only on a barrier after the last they took, before it expires."""

    TYPE = "workers.step_barrier"

    namespace: str
    sequence: int = Field(ge=1)
    owners: dict[str, str]
    expires_at: str


@register
class StepReported(Message):
    """Agent `agent` ran, on worker `worker`, the superstep that barrier number `sequence` of the attempt in `namespace`
    ordered (the envelope's superstep and sim_time) and published `produced` messages — or failed with `error`.
    Emitted by the agent's owner into `{<namespace>}:agent-done`, signed with the agent's key (`agent:<agent>` only);
    consumed by the run's coordinator, which verifies it and counts only its owner's report of the step it waits
    for."""

    TYPE = "workers.step_reported"

    agent: str
    worker: str
    namespace: str
    sequence: int = Field(ge=1)
    produced: int = Field(ge=0)
    error: str | None = None
