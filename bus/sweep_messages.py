"""The messages of a sweep: jobs on the `sweep-jobs` topic, results on `sweep-results` (coalition.scenarios.sweep).

A job carries the scenario's and the policy's documents (not paths), so a worker on another host runs exactly what
the coordinator planned; its id is the hash of (scenario content, seed, policy content) and is the run's id.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from coalition.bus.message import Message, register

JOBS = "sweep-jobs"
RESULTS = "sweep-results"


@register
class SweepJob(Message):
    """One run of a sweep. Emitted by `coalition sweep`; consumed by sweep workers (group `sweep-workers`)."""

    TYPE = "sweep.job"

    job_id: str = Field(min_length=1, max_length=128)
    scenario: dict[str, Any]
    seed: int = Field(ge=0)
    policy: dict[str, Any]


@register
class SweepResult(Message):
    """How one job ended. Emitted by a sweep worker after the run is in the ledger; consumed by `coalition sweep`."""

    TYPE = "sweep.result"

    job_id: str
    worker: str
    status: str  # completed | failed
    scenario: str
    seed: int
    policy_version: str
    entries: int
    digest: str
    expectations_held: int
    expectations_total: int
    seconds: float
    cpu_seconds: float = 0.0  # CPU the worker spent on this job (with `seconds`, its wall time: what it waited for)
    reused: bool  # the run was already complete in the ledger: nothing was run again
    resumed: bool  # part of the run was in the ledger (an earlier attempt died): the rest was recorded
    attempt: int
    error: str | None = None
