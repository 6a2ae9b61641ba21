"""Sweeps: a grid of scenario × seed × policy run as jobs on a bus topic consumed by any number of sweep workers.

A job's id is the hash of (scenario content, seed, policy content) and is the run's id, so a job delivered twice
(its worker died, or was slow and the job was reclaimed) resumes the run rather than repeating it: the runner is
deterministic and the recorder skips every message the ledger already holds, so every run is recorded once. A job
whose run is already complete in the ledger is not run again at all. Workers narrate with the offline model (no
key, no network on any host), as `consistency` and `whatif` do.

The coordinator (`coalition sweep`) publishes the jobs and collects one result per job; workers (`coalition
sweep-worker`, local processes or on other hosts with the same Redis and ledger URLs) take a job at a time,
reclaiming jobs that another worker left pending for too long (XAUTOCLAIM) before reading new ones.

A job makes a worker run a scenario (whose agents may name code to import) into the shared ledger, so a worker
acts only on jobs the coordinator signed: each job is an envelope signed by `runner` (one batch of one per job) for
the queue it was published on (the envelope's run id is the queue), and a worker verifies it against the public
keys it trusts for that queue before anything else. An unsigned, forged or altered job, or one copied from another
queue, is acknowledged and logged with the reason, and nothing of it runs. Results stay unsigned: the coordinator
holds each one to the ledger (held_to_ledger).
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel, ValidationError

from coalition.bus.base import Bus, Delivery
from coalition.bus.canonical import canonical_json
from coalition.bus.control_messages import NO_SIM_TIME
from coalition.bus.envelope import Envelope
from coalition.bus.keys import RUNNER, KeyDirectory
from coalition.bus.memory import MemoryBus
from coalition.bus.signing import Verifier, sign_wire
from coalition.bus.sweep_messages import JOBS, RESULTS, SweepJob, SweepResult
from coalition.governance.errors import PolicyError
from coalition.governance.policy import Policy, parse_policy
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.digest import run_digest
from coalition.ledger.errors import LedgerError
from coalition.ledger.write_behind import held_writes
from coalition.scenarios.spec import Scenario, scenario_hash

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = structlog.get_logger("coalition.sweep")

WORKERS_GROUP = "sweep-workers"
COORDINATOR_GROUP = "sweep-coordinator"
MAX_ATTEMPTS = 3


def job_id(scenario: Scenario, seed: int, policy: Policy, *, content: str | None = None) -> str:
    """The job's (and the run's) id: readable name and seed, then the hash of what decides the run's content
    (`content`: the scenario's hash when the caller has it already)."""
    digest = hashlib.sha256(canonical_json([content or scenario_hash(scenario), seed, policy.version])).hexdigest()
    return f"{scenario.name}-s{seed}-{digest[:16]}"


def make_job(scenario: Scenario, seed: int, policy: Policy, *, content: str | None = None) -> SweepJob:
    return SweepJob(
        job_id=job_id(scenario, seed, policy, content=content),
        scenario=scenario.document,
        seed=seed,
        policy=policy.document,
    )


# This process's policies parsed from jobs, by the canonical JSON of their document (the content their version
# hashes): a worker parses and checks a policy (its rules compiled, ~2-6 ms) once, not once per job. A Policy is
# frozen and governance already shares one per version (evaluate.pipeline_for), so runs sharing it share nothing
# of each other's. Only policies that parsed are kept: a bad one is refused, with its job's name, every time.
_POLICIES: dict[bytes, Policy] = {}
_MAX_POLICIES = 64


def _remember(policy: Policy, key: bytes | None = None) -> Policy:
    if len(_POLICIES) >= _MAX_POLICIES:
        _POLICIES.clear()
    _POLICIES[canonical_json(policy.document) if key is None else key] = policy
    return policy


def job_policy(job: SweepJob) -> Policy:
    """The job's policy, parsed once per content in this process (PolicyError naming the job when it is bad)."""
    key = canonical_json(job.policy)
    known = _POLICIES.get(key)
    if known is not None:
        return known
    return _remember(parse_policy(job.policy, source=f"sweep job {job.job_id}"), key)


def plan(
    scenarios: Sequence[Scenario], seeds: Sequence[int] | None = None, policies: Sequence[Policy] | None = None
) -> list[SweepJob]:
    """Every scenario × seed (default: the scenario's own) × policy (default: the scenario's own), each job once.

    A scenario's own policy is parsed and its content hashed once, not once per seed: planning runs before any
    worker starts, so whatever it costs is paid once per sweep with nothing running beside it. The policies it
    parsed are kept for the jobs (job_policy): local workers, forked from the planner, do not parse them again."""
    jobs: dict[str, SweepJob] = {}
    for scenario in scenarios:
        content = scenario_hash(scenario)
        chosen = policies or [scenario.load_policy()]
        for policy in chosen:
            _remember(policy)
        for seed in seeds or [scenario.seed]:
            for policy in chosen:
                job = make_job(scenario, seed, policy, content=content)
                jobs.setdefault(job.job_id, job)
    return list(jobs.values())


def preload(jobs: Iterable[SweepJob]) -> None:
    """Import what running these jobs imports (the run's machinery, the agents of the jobs' packs; LangGraph and the
    agents' compiled step graph only when COALITION_AGENT_GRAPH=langgraph asks for it: the step runs straight
    otherwise), so that sweep workers forked from this process afterwards start with it loaded instead of each
    importing and compiling it again; and each of the jobs' policies with its governance pipeline built (its rules'
    CEL programs: ~25 ms for a shipped policy), which every worker would otherwise build before its first run; and
    the validators of Coalition's models that pydantic was told to build on first use (`defer_build`: the messages,
    the packs' worlds, payloads and arguments), which each worker's first run would otherwise build again (~30 ms of
    CPU each, the first run's extra time). Jobs naming a pack that is not installed, or holding a bad policy, are
    left to the worker that takes them (it reports them)."""
    planned = list(jobs)
    collecting = gc.isenabled()
    gc.disable()  # what is imported lives as long as the process: collecting while it is made frees nothing
    try:
        load_machinery()
        from coalition.agents.pipeline import LANGGRAPH, graph_choice
        from coalition.agents.registry import agent_types
        from coalition.agents.workflow import step_graph
        from coalition.domain import DEFAULT_PACK, PackError, catalog
        from coalition.governance.evaluate import pipeline_for

        if graph_choice() == LANGGRAPH:
            step_graph()  # the function agents' one graph, compiled here once rather than in each worker
        for name in sorted({str(job.scenario.get("pack") or DEFAULT_PACK) for job in planned}):
            try:
                agent_types(catalog().pack(name).agent_names)
            except PackError:
                continue
        for one in {canonical_json(job.policy): job for job in planned}.values():  # one job per policy
            try:
                pipeline_for(job_policy(one))
            except (PolicyError, PackError):
                continue
        build_deferred_models()
    finally:
        if collecting:
            gc.enable()


def load_machinery() -> None:
    """Import the modules a run imports (the runner, governance, the agents and the model library they talk to:
    LangChain's ~0.5 s above all), nothing built or compiled. `coalition sweep` calls it as the command starts,
    with its other imports, so that the time it reports as the sweep's own is the sweep's work (the queue, the
    workers, the runs, the results) rather than loading Python libraries; `preload` calls it too (a no-op then)."""
    import coalition.agents.registry
    import coalition.agents.workflow
    import coalition.governance.evaluate
    import coalition.scenarios.assembly
    import coalition.scenarios.consistency  # noqa: F401  (all imported for their side effect: loaded)


def build_deferred_models() -> None:
    """Build the validator of every model loaded from Coalition's own modules whose build pydantic deferred to its
    first use (those of other libraries are left deferred: a run does not validate most of them). A model that
    cannot be built yet (a name it refers to is not loaded) stays deferred, and is built or fails on first use."""
    found: dict[type[BaseModel], None] = {}  # in the order found: the same builds in the same order every time
    pending = [BaseModel]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub not in found:
                found[sub] = None
                pending.append(sub)
    for model in found:
        if not model.__pydantic_complete__ and model.__module__.startswith("coalition."):
            # names resolve in the model's own module (depth 0), never among this function's local variables
            model.model_rebuild(raise_errors=False, _parent_namespace_depth=0)


def job_envelope(job: SweepJob, queue: str) -> Envelope:
    """The job as the coordinator sends it on `queue`: from `runner`, its run being the queue (what the signature
    binds it to: the same job on another queue is refused there)."""
    return Envelope.wrap(job, id=f"job:{job.job_id}", source=RUNNER, run_id=queue, superstep=0, sim_time=NO_SIM_TIME)


def signed_jobs(jobs: Iterable[SweepJob], queue: str, key: Ed25519PrivateKey) -> list[tuple[Envelope, bytes]]:
    """Each job's envelope for `queue` signed with `key` (the runner's), with its wire bytes: one batch of one per
    job, so a worker taking one job verifies it alone (no batch record to fetch or keep)."""
    return [sign_wire([job_envelope(job, queue)], key)[0] for job in jobs]


def job_verifier(trusted: KeyDirectory, queue: str) -> Verifier:
    """What a worker of `queue` checks each job with: signed by a producer it trusts that may send jobs (`runner`),
    for this queue."""
    return Verifier(trusted, run_id=queue)


def result_envelope(result: SweepResult) -> Envelope:
    return Envelope.wrap(
        result,
        id=f"result:{result.job_id}:{result.worker}:{result.attempt}",
        source=result.worker[:128],
        run_id=result.job_id,
        superstep=0,
        sim_time=NO_SIM_TIME,
    )


def publish_jobs(bus: Bus, jobs: Iterable[SweepJob], *, queue: str, key: Ed25519PrivateKey) -> int:
    """Create both groups (so nothing published is missed) and put the jobs on the queue, signed (signed_jobs)."""
    bus.ensure_group(JOBS, WORKERS_GROUP)
    bus.ensure_group(RESULTS, COORDINATOR_GROUP)
    items = [(JOBS, envelope, data) for envelope, data in signed_jobs(jobs, queue, key)]
    bus.publish_encoded(items)
    return len(items)


def _completed(ledger: Ledger, run_id: str) -> bool:
    return ledger.count(LedgerQuery(run_id=run_id, kind="run", outcome="completed", limit=1)) > 0


def _expectations(ledger: Ledger, run_id: str) -> tuple[int, int]:
    finished = ledger.query(LedgerQuery(run_id=run_id, kind="run", outcome="completed", limit=1))
    results = finished[0].payload.get("expectations") if finished else None
    if not isinstance(results, list):
        return 0, 0
    return sum(1 for r in results if isinstance(r, dict) and r.get("passed")), len(results)


def run_job(job: SweepJob, ledger: Ledger, *, worker: str, attempt: int = 1) -> SweepResult:
    """Run one job into the ledger (or find it there already) and say how it ended; never raises for a bad job."""
    started, cpu_started = time.perf_counter(), time.process_time()
    base: dict[str, Any] = {
        "job_id": job.job_id,
        "worker": worker,
        "seed": job.seed,
        "attempt": attempt,
        "scenario": str(job.scenario.get("name", "?")),
        "policy_version": "",
        "entries": 0,
        "digest": "",
        "expectations_held": 0,
        "expectations_total": 0,
        "reused": False,
        "resumed": False,
    }
    try:
        scenario = Scenario.model_validate(job.scenario)
        policy = job_policy(job)
    except (ValidationError, PolicyError) as exc:
        reason = str(exc).strip().splitlines()[0]
        return SweepResult(**base, status="failed", seconds=0.0, error=f"the job does not hold a valid run: {reason}")
    base["policy_version"] = policy.version
    expected = job_id(scenario, job.seed, policy)
    if expected != job.job_id:  # a job must not write under another run's id
        return SweepResult(
            **base, status="failed", seconds=0.0, error=f"job id does not match its content ({expected})"
        )
    run_id = job.job_id
    # the run's machinery (the agents, LangGraph): already loaded in a local worker (the coordinator preloaded it
    # before forking), imported on first use by a `coalition sweep-worker` on another host
    from coalition.scenarios.assembly import assemble_run
    from coalition.scenarios.consistency import offline_options

    try:
        # One sync of the ledger for the run, not one per commit: the job is acknowledged after it, and a job not
        # acknowledged (its worker died, the power went) is taken again and resumes from what was kept. A run found
        # completed is synced too: its last commits may be a dead worker's, not yet on disk. The run's bus is its
        # own, so its recorder's flushes are held and written together whenever the run uses the ledger
        # (held_writes): fewer, larger write turns for the other writers of the file to wait for; the block's end
        # writes what is left, before the bus closes and before the sync.
        with ledger.deferred_sync():
            if _completed(ledger, run_id):
                base["reused"] = True
            else:
                base["resumed"] = ledger.count(LedgerQuery(run_id=run_id, limit=1)) > 0
                with closing(MemoryBus.for_run(f"sweep-{run_id}")) as bus, held_writes(ledger) as run_ledger:
                    assemble_run(
                        scenario,
                        bus=bus,
                        ledger=run_ledger,
                        run_id=run_id,
                        seed=job.seed,
                        policy=policy,
                        options=offline_options(),
                    ).run()
        held, total = _expectations(ledger, run_id)
        base.update(
            expectations_held=held,
            expectations_total=total,
            entries=ledger.count(LedgerQuery(run_id=run_id)),
            digest=run_digest(ledger, run_id),
        )
        status = "completed" if _completed(ledger, run_id) else "failed"
        seconds, cpu_seconds = _spent(started, cpu_started)
        return SweepResult(**base, status=status, seconds=seconds, cpu_seconds=cpu_seconds)
    except LedgerError:
        raise  # the ledger is gone: the worker stops and the job goes to another one
    except Exception as exc:  # a run that fails is a result to report, not a worker to kill
        log.exception("sweep.job_failed", job_id=run_id)
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        seconds, cpu_seconds = _spent(started, cpu_started)
        return SweepResult(**base, status="failed", seconds=seconds, cpu_seconds=cpu_seconds, error=reason)


def _spent(started: float, cpu_started: float) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) since the job started."""
    return round(time.perf_counter() - started, 3), round(time.process_time() - cpu_started, 3)


class SweepWorker:
    """Takes one job at a time from the queue: first any job another worker left pending for `reclaim_after_ms`
    (it died, or is too slow), then a new one; verifies it (`verifier`: job_verifier), runs it, publishes the
    result, then acknowledges the job. A job that does not verify is acknowledged and logged, never run."""

    def __init__(
        self,
        bus: Bus,
        ledger: Ledger,
        *,
        name: str,
        verifier: Verifier,
        reclaim_after_ms: int = 60_000,
        max_attempts: int = MAX_ATTEMPTS,
        on_result: Callable[[SweepResult], None] | None = None,
    ) -> None:
        self.bus = bus
        self.ledger = ledger
        self.name = name
        self.verifier = verifier
        self.reclaim_after_ms = reclaim_after_ms
        self.max_attempts = max_attempts
        self.on_result = on_result
        self.done = 0
        self.refused = 0

    def take(self, *, block_ms: int) -> list[Delivery]:
        stale = self.bus.reclaim_stale([JOBS], WORKERS_GROUP, self.name, min_idle_ms=self.reclaim_after_ms, count=1)
        taken = stale or self.bus.read([JOBS], WORKERS_GROUP, self.name, count=1, block_ms=block_ms)
        return self.verifier.checked(taken)

    def handle(self, delivery: Delivery) -> SweepResult | None:
        job = delivery.envelope.payload if delivery.envelope is not None else None
        if delivery.envelope is None and (delivery.error or "").startswith("rejected: "):
            # nothing of it is trusted, not even the run id it names: logged here, not written to the ledger
            log.error("sweep.job_refused", broker_id=delivery.broker_id, reason=delivery.error)
            self.bus.ack(WORKERS_GROUP, [delivery])
            self.refused += 1
            return None
        if not isinstance(job, SweepJob):
            log.warning("sweep.not_a_job", broker_id=delivery.broker_id, error=delivery.error)
            self.bus.ack(WORKERS_GROUP, [delivery])
            return None
        if delivery.deliveries > self.max_attempts:
            result = SweepResult(
                job_id=job.job_id,
                worker=self.name,
                status="failed",
                scenario=str(job.scenario.get("name", "?")),
                seed=job.seed,
                policy_version="",
                entries=0,
                digest="",
                expectations_held=0,
                expectations_total=0,
                seconds=0.0,
                reused=False,
                resumed=False,
                attempt=delivery.deliveries,
                error=f"given up after {delivery.deliveries - 1} deliveries (each worker that took it died?)",
            )
        else:
            result = run_job(job, self.ledger, worker=self.name, attempt=delivery.deliveries)
        self.bus.publish(RESULTS, result_envelope(result))
        self.bus.ack(WORKERS_GROUP, [delivery])
        self.done += 1
        if self.on_result is not None:
            self.on_result(result)
        return result

    def run(self, *, drain: bool, should_stop: Callable[[], bool] | None = None, block_ms: int = 1000) -> int:
        """Work until stopped; with `drain`, until the queue holds no new job and no job is pending anywhere."""
        self.bus.ensure_group(JOBS, WORKERS_GROUP)
        while should_stop is None or not should_stop():
            taken = self.take(block_ms=block_ms)
            for delivery in taken:
                self.handle(delivery)
            if not taken and drain and self.bus.pending_count(JOBS, WORKERS_GROUP) == 0:
                break
        return self.done


def held_to_ledger(results: Iterable[SweepResult], ledger: Ledger | None) -> list[SweepResult]:
    """Each result whose claim the ledger bears out; a "completed" one it does not (the run is not in the ledger,
    not finished, or its digest, entry count or expectations differ: anyone who can write to the queue's Redis can
    publish a result) is failed with what the ledger holds. `ledger` None: there is none yet, so no run completed."""
    return [_held(result, ledger) if result.status == "completed" else result for result in results]


def _held(result: SweepResult, ledger: Ledger | None) -> SweepResult:
    """The result if the ledger holds its run completed with its digest, entry count and expectations (what the
    sweep reports of it), else the result failed."""
    what = "no completed run"
    if ledger is not None and _completed(ledger, result.job_id):
        run_id = result.job_id
        digest, entries = run_digest(ledger, run_id), ledger.count(LedgerQuery(run_id=run_id))
        held, total = _expectations(ledger, run_id)
        claimed = (result.digest, result.entries, result.expectations_held, result.expectations_total)
        if (digest, entries, held, total) == claimed:
            return result
        what = f"a completed run with digest {digest[:12]}, {entries} entries and {held}/{total} expectations held"
    error = f"{result.worker} reported it completed, but the ledger does not hold that run ({what})"
    return result.model_copy(update={"status": "failed", "error": error})


@dataclass
class Collector:
    """The coordinator's side: one result per job id (a job done twice reports once), in arrival order."""

    bus: Bus
    job_ids: set[str]
    results: dict[str, SweepResult]

    @classmethod
    def for_jobs(cls, bus: Bus, jobs: Sequence[SweepJob]) -> Collector:
        return cls(bus, {job.job_id for job in jobs}, {})

    @property
    def finished(self) -> bool:
        return self.job_ids <= self.results.keys()

    def poll(self, *, block_ms: int = 500) -> list[SweepResult]:
        """New results (each job's first only); acknowledged once taken."""
        fresh: list[SweepResult] = []
        deliveries = self.bus.read([RESULTS], COORDINATOR_GROUP, "coordinator", count=100, block_ms=block_ms)
        for delivery in deliveries:
            result = delivery.envelope.payload if delivery.envelope is not None else None
            if isinstance(result, SweepResult) and result.job_id in self.job_ids and result.job_id not in self.results:
                self.results[result.job_id] = result
                fresh.append(result)
        if deliveries:
            self.bus.ack(COORDINATOR_GROUP, deliveries)
        return fresh
