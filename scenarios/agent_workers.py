"""Agent workers: phase A of every superstep run by `coalition worker` processes, on this host or others.

The coordinator (`coalition run … --agent-workers`) keeps governance, the executor and the recorder; only the
agents move. It announces the run (the scenario and policy documents, seed, run id, the run's stream namespace,
the model choices and the public keys the run trusts for each agent), waits until every agent is served by a
live worker, picks one owner per agent, then, each superstep, posts a barrier (superstep, simulated time, owners)
and waits for every agent's report (how many messages it produced, signed with the agent's key) with a deadline.
Workers publish into the run's own signed streams, and governance and the recorder read them in canonical order, so
the ledger is byte for byte the one-process run's: the same agents are built by the same code (`run_agents`), take
the same inputs and mint the same ids, whichever process runs them.

Takeover. Workers beat every half second (a Redis key with a TTL, coalition/bus/worker_control.py). When an
owner's heartbeat expires while the coordinator waits for it, another live worker serving the agent is named
owner in a new barrier for the same superstep. A worker that becomes owner of an agent — at the run's first
step, or in a takeover — builds it fresh and rebuilds its state deterministically: it reads back every entry of
the agent's topics (and XAUTOCLAIMs the dead consumer's pending entries and reads the undelivered ones, so the
group delivers nothing twice), re-executes the earlier supersteps over them exactly as they were taken (inputs
of superstep k are those published before k that no earlier step took; agents/runtime.py `rebuild`), answering
model calls from the `model.called` records the agent already published (a paid model is asked only what it was
never asked), and publishes nothing while doing so. Then it runs the superstep; anything of it the dead worker
had already published (one atomic batch per step, ids deterministic) is not published again.

An announcement makes a worker build agents with the run's model choices (spending its provider keys) under the
run's policy, so it travels signed: an envelope from `runner` for the run id it is announced under, signed with the
coordinator's runner key, which the worker verifies against the public key of its keys directory before building
anything. An unsigned, forged or altered announcement, or one moved under another run id, is refused with a log
line naming the reason (and nothing is posted to the namespace it names); a signed announcement that later replaces
it under the same run id is read afresh. Each barrier is signed likewise, for the run and its attempt's namespace,
and numbered (coalition.scenarios.worker_orders): a worker logs and skips a barrier that is unsigned, forged,
altered, of another run or attempt, or not after the last it took, and acts only on one whose step the coordinator
still waits for (its expiry: posting time + --agent-deadline, wall clock). So barriers appended again after the run
ended, under its announcement stored again, run nothing once they expired; and a worker that served the run never
joins it again under the announcement it saw withdrawn. The other way, each step report travels signed by the
reporting agent's key (the owner holds it) for the run, naming the attempt and the barrier it answers: the
coordinator logs and skips a report that does not verify against the key the run trusts for that agent, and counts
only its owner's report of the step it waits for — a forged "done, nothing published" would otherwise move the
superstep on before the agent's messages came, and the ledger would tell another story. A worker's refusal to join
a run stays an unsigned notice (the worker may hold no key the run trusts: that can be why it refuses): it stops
the run, in one line naming the worker, and changes nothing recorded — like anything else that can write to the
run's Redis (delete its streams, beat as a worker that never reports), it can stop a run, not alter one.

Heartbeats tell liveness, not progress: a worker that beats but never reports fails the run at the deadline,
with a message naming the agent, the worker and the superstep (the run can then be resumed in one process).
What a worker cannot reproduce is refused before the run starts: an agent in a model lane previews governance's
state (scenarios/agent_lanes.py), which lives in the coordinator; a run given one model object for every agent
(tests) has nothing to announce. A worker that was declared dead but comes back mid-step is not fenced off: it
can publish the same envelopes (same ids) as its successor a second time; the recorder records each id once, but
nothing else promises to ignore the duplicate.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import orjson
import structlog
from pydantic import ValidationError

from coalition.agents.inbox import AGENT_TOPICS
from coalition.agents.prices import PriceTable
from coalition.agents.providers import ProviderAccess
from coalition.agents.recording import replay_models
from coalition.agents.runtime import AgentRuntime
from coalition.bus import topics
from coalition.bus.base import Delivery
from coalition.bus.clock import IdFactory
from coalition.bus.control_messages import StepReported
from coalition.bus.errors import AgentWorkersFailed, BusError
from coalition.bus.keys import RUNNER, KeyDirectory, Keyring, parse_public, public_text
from coalition.bus.messages import ModelCalled
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.bus.signing import SignedBus
from coalition.bus.worker_control import Heartbeat, WorkerControl, beat_time, is_past, wall_deadline
from coalition.governance.errors import PolicyError
from coalition.governance.policy import Policy, parse_policy
from coalition.scenarios.agent_lanes import lane_settings
from coalition.scenarios.agent_setup import run_agents, run_narrators
from coalition.scenarios.assembly import worker_bus
from coalition.scenarios.errors import RunnerError
from coalition.scenarios.replay import answered_first
from coalition.scenarios.runner import RemoteRun, RunnerOptions
from coalition.scenarios.spec import Scenario, scenario_hash
from coalition.scenarios.worker_orders import (
    Announcement,
    Barrier,
    BarrierCheck,
    ReportCheck,
    read_announcement,
    signed_announcement,
    signed_barrier,
    signed_report,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = structlog.get_logger("coalition.agent_workers")

HEARTBEAT_S = 0.5  # how often a worker beats
HEARTBEAT_TTL_S = 3.0  # a worker silent this long is dead
_LEFT_LIMIT = 4096  # announcements of runs left that a worker remembers (refused if stored again)
_REFUSED_KEPT = 1000  # refused step reports a coordinator keeps the reasons of (each is logged; a flood stays bounded)


def refusal(policy: Policy, agents: Sequence[str], options: RunnerOptions) -> str | None:
    """Why this run cannot have its agents on workers (None: it can)."""
    if options.model is not None:
        return "agent workers build their agents from the run's model choices, not from one model object"
    lanes = [name for name in agents if lane_settings(policy, name) is not None]
    if lanes:
        return (
            f"agent workers cannot run policy {policy.name!r}: the model lane of {', '.join(lanes)} previews "
            "governance's state, which lives in the coordinator; run it without --agent-workers"
        )
    return None


def _owner_choice(
    agent: str, run_id: str, alive: Mapping[str, Heartbeat], load: Mapping[str, int], exclude: set[str]
) -> str | None:
    """The live worker to own `agent`: the least loaded in this run, then the one serving fewest agents, by name."""
    candidates = [b for name, b in alive.items() if b.serves(agent, run_id) and name not in exclude]
    if not candidates:
        return None
    best = min(candidates, key=lambda b: (load.get(b.name, 0), len(b.agents), b.name))
    return best.name


class RemoteAgents:
    """The coordinator's phase A: a barrier per superstep, then every agent's report from its owner."""

    def __init__(
        self,
        control: WorkerControl,
        announcement: Announcement,
        *,
        key: Ed25519PrivateKey,
        deadline_s: float,
        join_timeout_s: float,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.control = control
        self.announcement = announcement
        self.key = key  # the coordinator's runner key: signs the announcement and each barrier
        self.deadline_s = deadline_s
        self.join_timeout_s = join_timeout_s
        self.on_wait = on_wait
        self.owners: dict[str, str] = {}
        self._barrier = WorkerControl.barrier_key(announcement.namespace)
        self._done = WorkerControl.done_key(announcement.namespace)
        self._cursor = "0"
        self._posted = 0  # barriers posted so far (each one's number)
        self.takeovers: list[tuple[int, str, str, str]] = []  # (superstep, agent, dead worker, new owner)
        trusted = KeyDirectory({identity: parse_public(text) for identity, text in announcement.keys.items()})
        self._check = ReportCheck(trusted, run_id=announcement.run_id, namespace=announcement.namespace)
        self.refused_reports: list[str] = []  # why each report that did not verify was not counted

    def _join(self) -> None:
        """Announce the run and wait until every agent has a live worker; pick the owners."""
        run = self.announcement
        self.control.announce(run.run_id, signed_announcement(run, self.key))
        deadline = time.monotonic() + self.join_timeout_s
        told = False
        while True:
            alive = self.control.alive()
            missing = [a for a in run.agents if not any(b.serves(a, run.run_id) for b in alive.values())]
            if not missing:
                break
            if time.monotonic() >= deadline:
                raise AgentWorkersFailed(
                    f"no live agent worker serves {', '.join(missing)} after {self.join_timeout_s:g} s "
                    f"(start one: coalition worker --agents {','.join(missing)})"
                )
            if not told and self.on_wait is not None:
                self.on_wait(f"waiting for agent workers serving: {', '.join(missing)}")
                told = True
            time.sleep(0.1)
        load: dict[str, int] = {}
        for agent in run.agents:
            owner = _owner_choice(agent, run.run_id, alive, load, set())
            assert owner is not None
            self.owners[agent] = owner
            load[owner] = load.get(owner, 0) + 1
        log.info("agent_workers.owners", owners=self.owners)

    def step(self, superstep: int, sim_time: datetime) -> int:
        if not self.owners:
            self._join()
        first = self._posted + 1  # the number of this step's barrier (a takeover posts the step again after it)
        self._post(superstep, sim_time)
        produced: dict[str, int] = {}
        deadline = time.monotonic() + self.deadline_s
        next_check = time.monotonic() + HEARTBEAT_S
        while len(produced) < len(self.owners):
            for step, report in self._reports(block_ms=100):
                agent = report.agent
                if step != superstep or not first <= report.sequence <= self._posted:
                    continue  # a report of an earlier step (a late one, from an owner replaced since)
                if agent not in self.owners or agent in produced or report.worker != self.owners[agent]:
                    continue  # a worker that no longer owns the agent
                if report.error:
                    raise AgentWorkersFailed(
                        f"agent {agent} on worker {report.worker} failed superstep {superstep}: "
                        f"{_one_line(report.error)} (the worker's log has the rest)"
                    )
                produced[agent] = report.produced
            now = time.monotonic()
            if len(produced) < len(self.owners) and now >= next_check:
                next_check = now + HEARTBEAT_S
                self._take_over(superstep, sim_time, [a for a in self.owners if a not in produced])
            if len(produced) < len(self.owners) and now >= deadline:
                late = [f"{a} (worker {self.owners[a]})" for a in self.owners if a not in produced]
                raise AgentWorkersFailed(
                    f"superstep {superstep}: no step report from {', '.join(late)} within {self.deadline_s:g} s "
                    "(--agent-deadline); the run stops here"
                )
        return sum(produced.values())

    def _post(self, superstep: int, sim_time: datetime) -> None:
        """Post the next barrier, signed: run `superstep` at `sim_time` with the owners as they stand."""
        self._posted += 1
        run = self.announcement
        barrier = signed_barrier(
            self.key,
            run_id=run.run_id,
            namespace=run.namespace,
            sequence=self._posted,
            superstep=superstep,
            sim_time=sim_time,
            owners=dict(self.owners),
            expires_at=wall_deadline(self.deadline_s),
        )
        self.control.append(self._barrier, barrier)

    def _reports(self, *, block_ms: int) -> list[tuple[int, StepReported]]:
        """The step reports that came since the last read and verify (superstep, report); a worker's refusal to
        join the run fails it; a report that does not verify is logged and kept in `refused_reports`, not counted."""
        entries = self.control.read_bytes(self._done, self._cursor, block_ms=block_ms)
        if entries:
            self._cursor = entries[-1][0]
        reports: list[tuple[int, StepReported]] = []
        for entry_id, raw in entries:
            refusal = refusal_notice(raw)
            if refusal is not None:
                raise AgentWorkersFailed(refusal)
            try:
                reports.append(self._check.read(raw))
            except RunnerError as exc:
                why = str(exc).splitlines()[0]
                if len(self.refused_reports) < _REFUSED_KEPT:
                    self.refused_reports.append(why)
                log.error("agent_workers.report_refused", run_id=self.announcement.run_id, entry=entry_id, error=why)
        return reports

    def _take_over(self, superstep: int, sim_time: datetime, waiting: list[str]) -> None:
        """Owners of the agents still awaited whose heartbeat expired hand their agents to another live worker."""
        alive = self.control.alive()
        dead = {self.owners[a] for a in waiting if self.owners[a] not in alive}
        if not dead:
            return
        load: dict[str, int] = {}
        for owner in self.owners.values():
            load[owner] = load.get(owner, 0) + 1
        for agent in waiting:
            old = self.owners[agent]
            if old not in dead:
                continue
            new = _owner_choice(agent, self.announcement.run_id, alive, load, dead)
            if new is None:
                raise AgentWorkersFailed(
                    f"superstep {superstep}: worker {old} running agent {agent} stopped (no heartbeat for "
                    f"{HEARTBEAT_TTL_S:g} s) and no other live worker serves {agent}"
                )
            self.owners[agent] = new
            load[new] = load.get(new, 0) + 1
            self.takeovers.append((superstep, agent, old, new))
            log.warning("agent_workers.takeover", superstep=superstep, agent=agent, dead=old, owner=new)
        self._post(superstep, sim_time)

    def close(self) -> None:
        try:
            self.control.withdraw(self.announcement.run_id)
        finally:
            self.control.close()


def refusal_notice(raw: bytes) -> str | None:
    """What a worker's refusal to join the run says (None: `raw` is no refusal): an unsigned notice, which only stops
    the run (see the module's docstring)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or "refused" not in doc or "signature" in doc:
        return None
    return f"agent worker {_one_line(str(doc.get('worker')), 200)} refused the run: {_one_line(str(doc['refused']))}"


def _one_line(text: str, limit: int = 2000) -> str:
    """The first line of a worker's text (an exception's, a pydantic error's several), at most `limit` characters:
    what the run stops with is one line."""
    return (text.strip().splitlines() or [""])[0][:limit]


def remote_agents(
    url: str | None,
    *,
    deadline_s: float = 300.0,
    join_timeout_s: float = 60.0,
    on_wait: Callable[[str], None] | None = None,
) -> Callable[[RemoteRun], RemoteAgents]:
    """RunnerOptions.agent_workers for workers reached through the Redis at `url` (None: the run's own Redis)."""

    def make(run: RemoteRun) -> RemoteAgents:
        if not isinstance(run.raw_bus, RedisStreamsBus):
            raise RunnerError("agent workers need the run on Redis (--bus redis): workers are other processes")
        if not isinstance(run.bus, SignedBus):
            raise RunnerError("agent workers sign what they publish: the run's traffic must be signed")
        why = refusal(run.policy, run.agents, run.options)
        if why is not None:
            raise RunnerError(why)
        keyring = run.bus.keyring
        announcement = Announcement(
            run_id=run.run_id,
            namespace=run.raw_bus.namespace,
            scenario=run.scenario.document,
            scenario_hash=scenario_hash(run.scenario),
            policy=run.policy.document,
            seed=run.seed,
            agents=run.agents,
            models=run.model_choices,
            keys={f"agent:{a}": public_text(keyring.private(f"agent:{a}").public_key()) for a in run.agents},
        )
        control = WorkerControl(url or run.raw_bus.url)
        return RemoteAgents(
            control,
            announcement,
            key=keyring.private(RUNNER),
            deadline_s=deadline_s,
            join_timeout_s=join_timeout_s,
            on_wait=on_wait,
        )

    return make


# ----- the worker ----------------------------------------------------------------------------------------------


def _stream_order(deliveries: Sequence[Delivery]) -> list[Delivery]:
    """Each delivery once (by topic and entry id), in stream order within each topic."""

    def entry_id(d: Delivery) -> tuple[int, int]:
        ms, _, seq = d.broker_id.partition("-")
        return int(ms), int(seq or 0)

    unique = {(d.topic, d.broker_id): d for d in deliveries}
    return sorted(unique.values(), key=lambda d: (d.topic, entry_id(d)))


class WorkerRun:
    """One announced run on one worker: its bus, the agents this worker owns in it, the barriers seen so far."""

    def __init__(self, worker: AgentWorker, announcement: Announcement) -> None:
        self.worker = worker
        self.announcement = announcement
        self.run_id = announcement.run_id
        try:
            self.scenario = Scenario.model_validate(announcement.scenario)
            self.policy = parse_policy(announcement.policy, source=f"run {self.run_id}")
        except (ValidationError, PolicyError) as exc:
            raise RunnerError(f"run {self.run_id}: the announcement does not hold a valid run: {exc}") from None
        if scenario_hash(self.scenario) != announcement.scenario_hash:
            raise RunnerError(f"run {self.run_id}: the scenario read here hashes otherwise than the coordinator's")
        self.served = [a for a in announcement.agents if a in worker.agents]
        for agent in self.served:
            identity = f"agent:{agent}"
            ours = public_text(worker.keyring.private(identity).public_key())
            if announcement.keys.get(identity) != ours:
                raise RunnerError(
                    f"run {self.run_id}: this worker's key for {identity} is not the one the coordinator trusts "
                    "(copy the coordinator's keys directory to this host)"
                )
        self.ids = IdFactory(f"{announcement.scenario_hash}:{announcement.seed}")
        self.raw = RedisStreamsBus(worker.url, namespace=announcement.namespace)
        self.bus = worker_bus(self.raw, worker.keyring, worker.directory, run_id=self.run_id)
        self.runtimes: dict[str, AgentRuntime] = {}
        self.last_step: dict[str, int] = {}
        self.steps: dict[int, datetime] = {}
        self._barrier = WorkerControl.barrier_key(announcement.namespace)
        self._done = WorkerControl.done_key(announcement.namespace)
        self._cursor = "0"
        self.barriers = BarrierCheck(worker.directory, run_id=self.run_id, namespace=announcement.namespace)

    def close(self) -> None:
        self.raw.close()

    def poll(self, *, block_ms: int) -> bool:
        """Act on the newest barrier taken, if any came and it has not expired; True when something was read."""
        entries = self.worker.control.read_bytes(self._barrier, self._cursor, block_ms=block_ms)
        if not entries:
            return False
        self._cursor = entries[-1][0]
        latest = None
        for entry_id, raw in entries:
            try:
                latest = self.barriers.take(raw)
            except RunnerError as exc:  # nothing of it is acted on, nor kept as the run's history
                log.error("agent_workers.barrier_refused", run_id=self.run_id, entry=entry_id, error=str(exc))
                continue
            self.steps[latest.superstep] = latest.sim_time
        if latest is None:
            return True
        if is_past(latest.expires_at):  # the coordinator waits no longer: posted again after its time, or read late
            log.error(
                "agent_workers.barrier_refused",
                run_id=self.run_id,
                error=f"barrier {latest.sequence} (superstep {latest.superstep}) expired at {latest.expires_at}",
            )
            return True
        self._act(latest)
        return True

    def _act(self, barrier: Barrier) -> None:
        superstep, owners = barrier.superstep, barrier.owners
        for agent in self.served:
            if owners.get(agent) != self.worker.name:
                if self.runtimes.pop(agent, None) is not None:  # another worker owns it now
                    self.last_step.pop(agent, None)
                continue
            if self.last_step.get(agent) == superstep:
                continue
            with structlog.contextvars.bound_contextvars(run_id=self.run_id, agent=agent, superstep=superstep):
                produced, error = 0, None
                try:
                    runtime = self._runtime(agent, superstep)
                    produced = runtime.step(superstep, self.steps[superstep])
                    self.last_step[agent] = superstep
                except BusError:
                    raise
                except Exception as exc:  # reported to the coordinator, which fails the run with it
                    log.exception("agent_workers.step_failed")
                    self.runtimes.pop(agent, None)
                    self.last_step.pop(agent, None)
                    error = f"{type(exc).__name__}: {exc}"
                report = signed_report(
                    self.worker.keyring.private(f"agent:{agent}"), run_id=self.run_id,
                    namespace=self.announcement.namespace, barrier=barrier, agent=agent, worker=self.worker.name,
                    produced=produced, error=error,
                )  # fmt: skip
                self.worker.control.append(self._done, report)

    def _runtime(self, agent: str, superstep: int) -> AgentRuntime:
        """The agent's runtime, ready for `superstep`: the one that ran the previous step, or one rebuilt."""
        earlier = [k for k in self.steps if k < superstep]
        runtime = self.runtimes.get(agent)
        if runtime is not None and self.last_step.get(agent) == max(earlier, default=None):
            return runtime
        runtime = self._rebuilt(agent, superstep)
        self.runtimes[agent] = runtime
        return runtime

    def _rebuilt(self, agent: str, superstep: int) -> AgentRuntime:
        source = f"agent:{agent}"
        group = source
        # what the agent already published (by whichever worker): its model calls answer again, nothing is re-sent
        own = [
            d.envelope
            for topic in (topics.PROPOSALS, topics.AGENT_MESSAGES, topics.CONTROL, topics.DEAD_LETTERS)
            for d in self.bus.range(topic)
            if d.envelope is not None and d.envelope.source == source
        ]
        calls = [e.payload for e in own if isinstance(e.payload, ModelCalled)]
        choice = self.announcement.models.get(agent)
        choices = {agent: choice} if choice is not None else {}
        options = RunnerOptions(
            provider_access=self.worker.access,
            prices=self.worker.prices,
            replay=answered_first(replay_models(calls), choices, self.worker.access, seed=self.announcement.seed),
        )
        narrators = run_narrators(choices, self.policy, self.announcement.seed, self.ids, options)
        built = run_agents(
            self.scenario, self.scenario.of_pack(), self.policy, seed=self.announcement.seed, model=None,
            narrators=narrators, preview=None, names=[agent],
        )  # fmt: skip
        runtime = AgentRuntime(
            built[agent], self.bus, run_id=self.run_id, ids=self.ids, group=group, consumer=self.worker.name
        )
        # every entry of its topics: read back, then the dead consumer's pending ones claimed and the undelivered
        # ones read, so that the group hands this worker only what came after
        history = [d for topic in AGENT_TOPICS for d in self.bus.range(topic)]
        history += self.bus.reclaim_stale(AGENT_TOPICS, group, self.worker.name, min_idle_ms=0, count=1_000_000)
        while batch := self.bus.read(AGENT_TOPICS, group, self.worker.name, count=1000):
            history += batch
        steps = [(k, self.steps[k]) for k in sorted(self.steps) if k < superstep]
        taken = runtime.rebuild(_stream_order(history), steps)
        if taken:
            self.bus.ack(group, taken)
        runtime.published = {e.id for e in own if e.superstep >= superstep}
        (log.warning if steps else log.info)(
            "agent_workers.rebuilt", agent=agent, superstep=superstep, steps=len(steps), calls=len(calls)
        )
        return runtime


class AgentWorker:
    """`coalition worker`: serves its agents in every announced run (or only `only_run`) until stopped."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        agents: Sequence[str],
        keyring: Keyring,
        directory: KeyDirectory,
        access: ProviderAccess,
        prices: PriceTable,
        only_run: str | None = None,
    ) -> None:
        self.url = url
        self.name = name
        self.agents = sorted(agents)
        self.keyring = keyring
        self.directory = directory
        self.access = access
        self.prices = prices
        self.only_run = only_run
        self.control = WorkerControl(url)
        self._beats = WorkerControl(url)  # the heartbeat thread's own connection
        self.runs: dict[str, WorkerRun] = {}
        self.refused: dict[str, bytes] = {}  # run id → the announcement refused (one stored over it is read again)
        self.joined: dict[str, bytes] = {}  # run id → the digest of the announcement it was joined under
        self.left: dict[bytes, None] = {}  # digests of the announcements of runs left here, oldest first
        self._run_ids: tuple[str, ...] = ()  # what the heartbeat thread reports (runs is the main thread's)
        self._started = beat_time()
        self._stop = threading.Event()

    def _heartbeat(self) -> Heartbeat:
        return Heartbeat(
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            agents=self.agents,
            runs=list(self._run_ids),
            only_run=self.only_run,
            beat_at=beat_time(),
            started_at=self._started,
        )

    def _beat_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._beats.beat(self._heartbeat(), ttl_s=HEARTBEAT_TTL_S)
            except BusError as exc:
                log.warning("agent_workers.heartbeat_failed", error=str(exc))
            self._stop.wait(HEARTBEAT_S)

    def run(self, should_stop: Callable[[], bool] | None = None) -> None:
        self._beats.beat(self._heartbeat(), ttl_s=HEARTBEAT_TTL_S)
        beats = threading.Thread(target=self._beat_forever, name="heartbeat", daemon=True)
        beats.start()
        try:
            next_look = 0.0
            while should_stop is None or not should_stop():
                if time.monotonic() >= next_look:
                    self._follow_announcements()
                    next_look = time.monotonic() + 0.2
                if not self.runs:
                    time.sleep(0.05)
                    continue
                block = 50 if len(self.runs) == 1 else 0
                busy = [run.poll(block_ms=block) for run in list(self.runs.values())]
                if not any(busy) and len(self.runs) > 1:
                    time.sleep(0.02)
        finally:
            self._stop.set()
            beats.join(timeout=2)
            for run in self.runs.values():
                run.close()
            try:
                self._beats.leave(self.name)
            finally:
                self._beats.close()
                self.control.close()

    def _follow_announcements(self) -> None:
        announced = self.control.runs()
        for run_id in [r for r in self.runs if r not in announced]:
            self.runs.pop(run_id).close()
            self.left[self.joined.pop(run_id)] = None
            if len(self.left) > _LEFT_LIMIT:
                del self.left[next(iter(self.left))]
            log.info("agent_workers.run_left", run_id=run_id)
        self.refused = {r: raw for r, raw in self.refused.items() if announced.get(r) == raw}
        for run_id, raw in sorted(announced.items()):
            if run_id in self.runs or run_id in self.refused:
                continue
            if self.only_run is not None and run_id != self.only_run:
                continue
            digest = hashlib.sha256(raw).digest()
            try:
                if digest in self.left:  # a coordinator withdraws its run once, when the run ends
                    raise RunnerError(f"announcement of run {run_id} refused: the run ended here before (replayed)")
                announcement = read_announcement(run_id, raw, self.directory)
            except RunnerError as exc:  # nothing of it is trusted: not even the namespace to answer in
                self.refused[run_id] = raw
                log.error("agent_workers.run_refused", run_id=run_id, error=str(exc).splitlines()[0])
                continue
            if not any(a in self.agents for a in announcement.agents):
                continue
            try:
                self.runs[run_id] = WorkerRun(self, announcement)
            except RunnerError as exc:  # the coordinator hears why, instead of waiting for its deadline
                self.refused[run_id] = raw
                log.error("agent_workers.run_refused", run_id=run_id, error=str(exc))
                done = WorkerControl.done_key(announcement.namespace)
                self.control.post(done, {"worker": self.name, "refused": str(exc)})
                continue
            self.joined[run_id] = digest
            log.info("agent_workers.run_joined", run_id=run_id, agents=self.runs[run_id].served)
        self._run_ids = tuple(sorted(self.runs))
