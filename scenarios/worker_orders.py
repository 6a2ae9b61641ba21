"""What a coordinator orders its agent workers (coalition.scenarios.agent_workers) to do — serve a run (its
announcement), run a superstep (a barrier) — signed with its runner key, and what a worker checks before it acts;
what a worker reports back (an agent's step done), signed with the agent's key, and what the coordinator checks
before it counts it.

Each order is an envelope from `runner`, one batch of one, bound to the run id by its signature; a worker verifies
it against the public keys of its keys directory (`runner` is the only producer allowed for either type). An
announcement makes a worker build the run's agents with the run's model choices under the run's policy; a barrier
makes it run them — so a forged barrier for a genuine run would spend the run's model budget on steps the
coordinator never asked for. A barrier is bound further to the attempt's stream namespace and numbered: a worker
takes one only after the last it took (a higher number, never an earlier superstep), so a barrier copied from
another run or attempt, altered, or appended again after its time is refused; a worker restarted after a crash
has taken none yet and reads the run's barriers again from the first, as before.

A step report says an agent's step is done and how much it published: the coordinator then moves the superstep on
to governance (and ends the day when no one published anything), so a forged "done, nothing published" would have it
read the step before the agent's messages arrived and record another story. A report travels as an envelope from
`agent:<agent>` (only that agent's key may report its steps), bound by its signature to the run id, naming the
attempt's namespace and the barrier number it answers; the coordinator counts it only if it verifies against the
agent's key the run trusts, names this attempt, answers a barrier of the step it waits for and comes from the
worker that owns the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from coalition.agents.model_choice import ModelChoice
from coalition.bus.codec import decode
from coalition.bus.control_messages import NO_SIM_TIME, RunAnnounced, StepBarrier, StepReported
from coalition.bus.envelope import Envelope
from coalition.bus.errors import MessageRejected
from coalition.bus.keys import RUNNER, KeyDirectory
from coalition.bus.message import Message
from coalition.bus.signing import Verifier, sign_wire
from coalition.scenarios.errors import RunnerError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_Order = TypeVar("_Order", bound=Message)


class Announcement(BaseModel):
    """What a worker needs to build the run's agents exactly as a one-process run builds them."""

    run_id: str
    namespace: str  # the run's stream namespace (hash tag)
    scenario: dict[str, Any]
    scenario_hash: str
    policy: dict[str, Any]
    seed: int
    agents: list[str]
    models: dict[str, ModelChoice]
    keys: dict[str, str]  # identity -> the public key the coordinator verifies it with


def _signed(
    order: Message,
    key: Ed25519PrivateKey,
    *,
    id: str,
    run_id: str,
    superstep: int,
    sim_time: datetime,
    source: str = RUNNER,
) -> bytes:
    """The message's wire bytes: an envelope from `source` for `run_id`, signed with `key` (a batch of one)."""
    envelope = Envelope.wrap(order, id=id, source=source, run_id=run_id, superstep=superstep, sim_time=sim_time)
    return sign_wire([envelope], key)[0][1]


def _verified(raw: bytes, verifier: Verifier, kind: type[_Order], what: str, noun: str) -> tuple[Envelope, _Order]:
    """The envelope in `raw` and its order once it verifies (signed by a producer trusted for `kind`, for the
    verifier's run, unaltered); RunnerError naming `what` (`noun`: what it should be) and why not otherwise."""
    try:
        envelope = decode(raw)
    except MessageRejected as exc:
        raise RunnerError(f"{what} is not a signed {noun}: {exc}") from None
    why = verifier.problem(envelope, raw)
    if why is None and not isinstance(envelope.payload, kind):
        why = f"envelope {envelope.id} is a {envelope.type}, not the {noun} expected"
    if why is not None:
        raise RunnerError(f"{what} refused: {why}")
    assert isinstance(envelope.payload, kind)
    return envelope, envelope.payload


# -- announcements ------------------------------------------------------------------------------------------


def signed_announcement(announcement: Announcement, key: Ed25519PrivateKey) -> bytes:
    """The announcement's wire bytes: an envelope from `runner` for the announced run, signed with `key`."""
    return _signed(
        RunAnnounced(document=announcement.model_dump(mode="json")),
        key,
        id=f"announce:{announcement.run_id}",
        run_id=announcement.run_id,
        superstep=0,
        sim_time=NO_SIM_TIME,
    )


def read_announcement(run_id: str, raw: bytes, trusted: KeyDirectory) -> Announcement:
    """The announcement stored under `run_id`, once it verifies: signed by the runner key trusted here, for this run
    id, unaltered; RunnerError saying why not otherwise (nothing of it is acted on)."""
    _, order = _verified(
        raw, Verifier(trusted, run_id=run_id), RunAnnounced, f"announcement of run {run_id}", "announcement"
    )
    try:
        announcement = Announcement.model_validate(order.document)
    except ValidationError as exc:
        raise RunnerError(f"run {run_id}: the announcement does not hold a valid run: {exc}") from None
    if announcement.run_id != run_id:
        raise RunnerError(f"announcement of run {run_id} refused: it announces run {announcement.run_id}")
    return announcement


# -- barriers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Barrier:
    """A barrier a worker took: the `sequence`-th of its run's attempt, for `superstep` at `sim_time`."""

    sequence: int
    superstep: int
    sim_time: datetime
    owners: dict[str, str]  # agent -> the worker that runs it
    expires_at: str  # wall clock, ISO 8601: the coordinator stops waiting for the step's reports then


def signed_barrier(
    key: Ed25519PrivateKey,
    *,
    run_id: str,
    namespace: str,
    sequence: int,
    superstep: int,
    sim_time: datetime,
    owners: dict[str, str],
    expires_at: str,
) -> bytes:
    """The barrier's wire bytes: the coordinator's `sequence`-th order of the run's attempt in `namespace`, signed
    with `key` (the runner's) for `run_id`."""
    order = StepBarrier(namespace=namespace, sequence=sequence, owners=owners, expires_at=expires_at)
    return _signed(
        order, key, id=f"barrier:{namespace}:{sequence}", run_id=run_id, superstep=superstep, sim_time=sim_time
    )


class BarrierCheck:
    """One worker's reading of one run's barriers: it takes a barrier only signed by the runner key trusted here
    for this run and this attempt's namespace, and only after the last barrier it took."""

    def __init__(self, trusted: KeyDirectory, *, run_id: str, namespace: str) -> None:
        self.run_id = run_id
        self.namespace = namespace
        self._verifier = Verifier(trusted, run_id=run_id)
        self.last: Barrier | None = None

    def take(self, raw: bytes) -> Barrier:
        """The barrier in `raw`, once it verifies and comes after the last one taken; RunnerError saying why not
        (the barrier is then not taken: the next one is still held to the last taken)."""
        envelope, order = _verified(raw, self._verifier, StepBarrier, f"barrier of run {self.run_id}", "barrier")
        if order.namespace != self.namespace:
            raise RunnerError(
                f"barrier {envelope.id} of run {self.run_id} refused: it orders the run's attempt in "
                f"{order.namespace}, not {self.namespace}"
            )
        last = self.last
        if last is not None and (order.sequence <= last.sequence or envelope.superstep < last.superstep):
            raise RunnerError(
                f"barrier {envelope.id} of run {self.run_id} refused: number {order.sequence} (superstep "
                f"{envelope.superstep}) is not after number {last.sequence} (superstep {last.superstep}), the last "
                "taken here (replayed)"
            )
        self.last = Barrier(order.sequence, envelope.superstep, envelope.sim_time, dict(order.owners), order.expires_at)
        return self.last


# -- step reports -------------------------------------------------------------------------------------------


def signed_report(
    key: Ed25519PrivateKey,
    *,
    run_id: str,
    namespace: str,
    barrier: Barrier,
    agent: str,
    worker: str,
    produced: int = 0,
    error: str | None = None,
) -> bytes:
    """The wire bytes of `worker`'s report that `agent` ran the step `barrier` ordered (`produced` messages, or
    `error`), signed with `key` (the agent's) for `run_id`."""
    report = StepReported(
        agent=agent, worker=worker, namespace=namespace, sequence=barrier.sequence, produced=produced, error=error
    )
    return _signed(
        report,
        key,
        id=f"report:{namespace}:{barrier.sequence}:{agent}",
        run_id=run_id,
        superstep=barrier.superstep,
        sim_time=barrier.sim_time,
        source=f"agent:{agent}",
    )


class ReportCheck:
    """The coordinator's reading of its run's step reports: a report counts only signed by the reporting agent's
    key trusted for the run, for this run and this attempt's namespace."""

    def __init__(self, trusted: KeyDirectory, *, run_id: str, namespace: str) -> None:
        self.run_id = run_id
        self.namespace = namespace
        self._verifier = Verifier(trusted, run_id=run_id)

    def read(self, raw: bytes) -> tuple[int, StepReported]:
        """The superstep and report in `raw`, once it verifies; RunnerError saying why not (nothing of it counts)."""
        envelope, report = _verified(
            raw, self._verifier, StepReported, f"step report of run {self.run_id}", "step report"
        )
        if report.namespace != self.namespace:
            raise RunnerError(
                f"step report {envelope.id} of run {self.run_id} refused: it answers the run's attempt in "
                f"{report.namespace}, not {self.namespace}"
            )
        return envelope.superstep, report
