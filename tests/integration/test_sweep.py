"""Sweeps over a real Redis: 40 jobs with a worker SIGKILLed mid-way (every run recorded exactly once), local
workers forked from the coordinator (each with its own connections), hostile jobs on the queue, a sweep into the
PostgreSQL ledger, and bad input through the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import closing, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
import redis
from conftest import PostgresServer

from coalition.bootstrap import attach_notary, key_store, ledger_trust
from coalition.bus.envelope import Envelope
from coalition.bus.keys import RUNNER, Keyring
from coalition.bus.memory import MemoryBus
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.bus.sweep_messages import JOBS, RESULTS, SweepJob, SweepResult
from coalition.governance.errors import PolicyError
from coalition.ledger import SqliteLedger, run_digest
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.consistency import offline_options
from coalition.scenarios.spec import load_scenario
from coalition.scenarios.sweep import (
    WORKERS_GROUP,
    Collector,
    SweepWorker,
    held_to_ledger,
    job_envelope,
    job_id,
    job_policy,
    job_verifier,
    make_job,
    plan,
    publish_jobs,
    result_envelope,
    run_job,
    signed_jobs,
)
from coalition.settings import Settings

pytestmark = pytest.mark.integration

LIBRARY = Path(__file__).resolve().parents[2] / "packs" / "helios" / "scenarios"


def tiny_scenario(tmp_path: Path) -> Path:
    """poisoned-feed cut to its first 3 days: a run of about 20 entries (the sweep machinery is under test)."""
    text = (LIBRARY / "poisoned-feed.yaml").read_text(encoding="utf-8")
    assert "\ndays: 8\n" in text
    text = text.replace("\ndays: 8\n", "\ndays: 3\n")
    path = tmp_path / "tiny.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _env(tmp_path: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_") and k != "REDIS_URL"}
    env.update(COALITION_DATA_DIR=str(tmp_path / "data"), REDIS_URL=redis_url, **extra)
    return env


def _sweep(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "coalition", "sweep", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_each_run_recorded_once(ledger: Any, run_ids: set[str]) -> None:
    """One run.started and one completed run.finished per run, no message recorded twice, nothing else."""
    assert {info.run_id for info in ledger.runs()} == run_ids
    for run_id in run_ids:
        entries = list(ledger.iter_entries(run_id=run_id))
        kinds = Counter((e.message_type, e.outcome) for e in entries if e.kind == "run")
        assert kinds == {("run.started", "started"): 1, ("run.finished", "completed"): 1}, (run_id, kinds)
        ids = [e.message_id for e in entries if e.message_id]
        assert len(ids) == len(set(ids)), f"{run_id}: a message recorded twice"
    result = ledger.verify()
    assert result.ok, result.reason


def kill_a_worker_holding_a_job(
    coordinator: subprocess.Popen[str], admin: redis.Redis, queue: str, *, after: int
) -> int | None:
    """SIGKILL a local worker of `coalition sweep` while a job is pending on it (taken, not yet acknowledged), once
    `after` results are in; its pid, or None if the sweep ended first. Each candidate is stopped (SIGSTOP) before
    the queue is asked which worker holds a job, so the one killed holds one when it dies: no race with a fast run.
    A worker is told apart by the log file it holds open (sweeps/<queue>/<name>.log, its consumer name)."""
    jobs, results = f"{{{queue}}}:{JOBS}", f"{{{queue}}}:{RESULTS}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and coordinator.poll() is None:
        time.sleep(0.02)
        try:
            if admin.xlen(results) < after:
                continue
            workers = psutil.Process(coordinator.pid).children()
        except psutil.NoSuchProcess:
            return None
        for worker in workers:
            try:
                worker.suspend()
            except psutil.NoSuchProcess:
                continue
            try:  # whatever fails while it is stopped, a worker not killed is resumed (else the sweep would hang)
                logs = [Path(f.path) for f in worker.open_files() if f.path.endswith(".log")]
                names = [log.stem for log in logs if log.parent.name == queue]
                pending = admin.xpending_range(jobs, WORKERS_GROUP, "-", "+", 10)
                if names and any(p["consumer"] == names[0].encode() for p in pending):
                    os.kill(worker.pid, signal.SIGKILL)
                    return int(worker.pid)
            except psutil.NoSuchProcess:
                continue
            finally:
                with suppress(psutil.NoSuchProcess):
                    if worker.status() == psutil.STATUS_STOPPED:
                        worker.resume()
    return None


RUNNER_KEYS = Keyring.ephemeral([RUNNER])  # the coordinator's key, for tests that build workers themselves


def publish_signed(bus: RedisStreamsBus, jobs: list[SweepJob]) -> None:
    """The jobs on the bus's queue as `coalition sweep` publishes them: signed by the runner key for that queue."""
    publish_jobs(bus, jobs, queue=bus.namespace, key=RUNNER_KEYS.private(RUNNER))


def sweep_worker(bus: RedisStreamsBus, ledger: Any, results: list[Any]) -> SweepWorker:
    """A worker of the bus's queue trusting RUNNER_KEYS, reporting its results into `results`."""
    verifier = job_verifier(RUNNER_KEYS.directory(), bus.namespace)
    return SweepWorker(bus, ledger, name="w", verifier=verifier, on_result=results.append)


def run_traced(job: SweepJob, ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch) -> tuple[SweepResult, list[str]]:
    """run_job, with what the ledger's connection executed and which files this process synced, in order, then
    "result" once it returned."""
    events: list[str] = []
    real_fsync = os.fsync
    ledger._conn.set_trace_callback(events.append)

    def fsync(fd: int) -> None:
        events.append(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    try:
        result = run_job(job, ledger, worker="w")
    finally:
        monkeypatch.undo()
    events.append("result")
    return result, events


@pytest.mark.serial  # kills a worker mid-sweep: on a loaded machine the sweep can end first
class TestKilledWorker:
    """40 jobs, two local workers, one SIGKILLed while it runs a job: every run recorded exactly once."""

    def test_forty_jobs_with_a_worker_killed(self, redis_url: str, tmp_path: Path) -> None:
        scenario_path = tiny_scenario(tmp_path)
        env = _env(tmp_path, redis_url)
        queue = f"test-sweep-{uuid.uuid4().hex[:8]}"
        args = (str(scenario_path), "--seeds", "1-40", "--jobs", "2", "--reclaim-after", "2", "--queue", queue)
        coordinator = _sweep(*args, "--json", env=env, cwd=tmp_path)
        ledger_file = tmp_path / "data" / "ledger.db"
        try:
            with closing(redis.Redis.from_url(redis_url)) as admin:
                killed = kill_a_worker_holding_a_job(coordinator, admin, queue, after=8)
            assert killed is not None, "the sweep ended before a worker could be killed mid-way"
            out, err = coordinator.communicate(timeout=240)
        finally:
            if coordinator.poll() is None:
                for worker in psutil.Process(coordinator.pid).children():  # they hold its pipes open
                    worker.kill()
                coordinator.kill()
            coordinator.communicate(timeout=60)  # and its pipes closed, however the test ended
        assert coordinator.returncode == 0, err
        doc = orjson.loads(out)
        results = doc["results"]
        assert len(results) == 40
        assert all(r["status"] == "completed" for r in results)
        taken_over = [r for r in results if r["attempt"] > 1 or r["resumed"]]
        assert taken_over, "no job was taken over from the killed worker"
        with SqliteLedger(ledger_file, create=False) as ledger:
            assert_each_run_recorded_once(ledger, {r["job_id"] for r in results})
            # a run taken over mid-way has the digest of the same job run from scratch, uninterrupted
            job = next(
                j for j in plan([load_scenario(scenario_path)], range(1, 41)) if j.job_id == taken_over[0]["job_id"]
            )
            with SqliteLedger(":memory:") as fresh:
                assert run_job(job, fresh, worker="reference").digest == run_digest(ledger, job.job_id)


@pytest.fixture
def queue_bus(redis_url: str) -> Any:
    bus = RedisStreamsBus(redis_url, namespace=f"test-sweep-{uuid.uuid4().hex[:8]}")
    yield bus
    bus.delete_namespace()
    bus.close()


class TestForkedWorkers:
    """`--jobs N` forks its workers from the coordinator, which holds a Redis connection open but never the ledger
    (SQLite's locks are per process: a forked holder's child would hold none): each worker opens its own of both,
    and the runs are recorded exactly once."""

    def test_workers_are_not_forked_while_the_coordinator_holds_the_ledger_open(self, tmp_path: Path) -> None:
        from coalition.cli.sweep_cmd import LocalWorkers

        ledger_file = tmp_path / "ledger.db"
        env = {"REDIS_URL": "redis://127.0.0.1:1", "COALITION_LEDGER": str(ledger_file)}
        with SqliteLedger(ledger_file), pytest.raises(RuntimeError, match=r"holds the ledger .* open"):
            LocalWorkers(1, queue="q", env=env, log_dir=tmp_path / "logs", reclaim_after=60)

    def test_each_forked_worker_has_its_own_connection(self, redis_url: str, tmp_path: Path) -> None:
        from coalition.cli.sweep_cmd import LocalWorkers

        queue = f"test-sweep-{uuid.uuid4().hex[:8]}"
        jobs = plan([load_scenario(tiny_scenario(tmp_path))], range(1, 7))
        ledger_file = tmp_path / "ledger.db"
        admin = redis.Redis.from_url(redis_url)
        coordinator = RedisStreamsBus(redis_url, namespace=queue, client_name=f"coordinator:{queue}")
        names = {f"sweep-worker:{queue}-w{i}" for i in range(2)}
        seen: dict[str, list[dict[str, Any]]] = {}
        SqliteLedger(ledger_file).close()  # created before the workers start, and not held open, as `sweep` does
        # the coordinator holds its Redis connection open while it forks, as `coalition sweep` does
        store = key_store(tmp_path)  # the keys of the workers' data directory (COALITION_DATA_DIR below)
        store.init([RUNNER])
        publish_jobs(coordinator, jobs, queue=queue, key=store.private(RUNNER))
        collector = Collector.for_jobs(coordinator, jobs)
        env = {"REDIS_URL": redis_url, "COALITION_LEDGER": str(ledger_file), "COALITION_DATA_DIR": str(tmp_path)}
        workers = LocalWorkers(2, queue=queue, env=env, log_dir=tmp_path / "logs", reclaim_after=60)
        try:
            deadline = time.monotonic() + 120
            while not collector.finished and time.monotonic() < deadline:
                clients = admin.client_list()
                for name in names:
                    mine = [c for c in clients if c.get("name") == name]
                    if mine:
                        seen[name] = mine
                own = [c for c in clients if c.get("name") == f"coordinator:{queue}"]
                collector.poll(block_ms=50)  # the coordinator's own connection keeps working beside them
                workers.check()
        finally:
            workers.stop()
            coordinator.delete_namespace()
            coordinator.close()
            admin.close()
        assert collector.finished, "the forked workers did not run every job"
        assert set(seen) == names, f"a worker never showed its own named connection: {sorted(seen)}"
        assert all(len(conns) == 1 for conns in seen.values()), seen
        addresses = {conns[0]["addr"] for conns in seen.values()}
        assert len(own) == 1
        assert own[0]["addr"] not in addresses, "a worker on the coordinator's socket"
        assert len(addresses) == 2, "two workers on one socket"
        assert {r.worker for r in collector.results.values()} <= {f"{queue}-w{i}" for i in range(2)}
        assert workers.restarts == 0  # none died
        with SqliteLedger(ledger_file, create=False) as ledger:
            assert_each_run_recorded_once(ledger, {j.job_id for j in jobs})

    def test_preload_loads_what_a_run_imports(self, tmp_path: Path) -> None:
        """Before forking, the coordinator imports the run's machinery and the jobs' pack agents (so the workers do
        not): checked in a fresh interpreter, where none of it is loaded before preload."""
        code = (
            "import sys\n"
            "from coalition.scenarios.spec import load_scenario\n"
            "from coalition.scenarios.sweep import plan, preload\n"
            f"jobs = plan([load_scenario({str(tiny_scenario(tmp_path))!r})], [1, 2])\n"
            "wanted = ['coalition.scenarios.assembly', 'coalition.packs.helios.agents.finance.agent', 'langgraph']\n"
            "print(sorted(m for m in wanted if m in sys.modules))\n"
            "from coalition.governance.evaluate import _PIPELINES\n"
            "from coalition.scenarios.sweep import job_policy\n"
            "built = len(_PIPELINES)\n"
            "preload(jobs)\n"
            "print(sorted(m for m in wanted if m in sys.modules))\n"
            "print(built, sorted(_PIPELINES) == [job_policy(jobs[0]).version])\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "COALITION_AGENT_GRAPH"}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False, env=env
        )
        assert done.returncode == 0, done.stderr
        before, after, pipelines = done.stdout.strip().splitlines()
        assert before == "[]"
        assert pipelines == "0 True"  # the jobs' policy's governance (its CEL programs) built once, here
        # the agents' step runs straight: LangGraph is not imported (nor its graph compiled) for the workers
        assert after == "['coalition.packs.helios.agents.finance.agent', 'coalition.scenarios.assembly']"
        langgraph = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**env, "COALITION_AGENT_GRAPH": "langgraph"},
        )
        assert langgraph.returncode == 0, langgraph.stderr
        assert langgraph.stdout.strip().splitlines()[1] == (
            "['coalition.packs.helios.agents.finance.agent', 'coalition.scenarios.assembly', 'langgraph']"
        )

    def test_preload_builds_the_models_a_run_validates(self, tmp_path: Path) -> None:
        """The models pydantic builds on first use (defer_build) are built by the coordinator before it forks, so a
        worker's first run builds none of them (each worker used to build them again): checked in a fresh
        interpreter, whose run after preload leaves no Coalition model newly built."""
        code = (
            "import pydantic\n"
            "from coalition.ledger import SqliteLedger\n"
            "from coalition.scenarios.spec import load_scenario\n"
            "from coalition.scenarios.sweep import plan, preload, run_job\n"
            "def deferred():\n"
            "    found, pending = set(), [pydantic.BaseModel]\n"
            "    while pending:\n"
            "        for sub in pending.pop().__subclasses__():\n"
            "            if sub not in found:\n"
            "                found.add(sub)\n"
            "                pending.append(sub)\n"
            "    return {m.__qualname__ for m in found if m.__module__.startswith('coalition.')\n"
            "            and not m.__pydantic_complete__}\n"
            f"jobs = plan([load_scenario({str(tiny_scenario(tmp_path))!r})], [1])\n"
            "print('deferred', sorted(deferred() & {'ActionProposed', 'RunFinished', 'WorldState'}))\n"
            "preload(jobs)\n"
            "before = deferred()\n"
            "with SqliteLedger(':memory:') as ledger:\n"
            "    assert run_job(jobs[0], ledger, worker='w').status == 'completed'\n"
            "print('built', sorted(before - deferred()))\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        lines = [line for line in done.stdout.splitlines() if line.startswith(("deferred ", "built "))]
        # deferred until preload, and none left for the run to build
        assert lines == ["deferred ['ActionProposed', 'RunFinished', 'WorldState']", "built []"]


class TestHostileJobs:
    """What arrives on the queue is checked: forged ids, junk and redelivered jobs write nothing twice."""

    def test_forged_job_id_writes_nothing(self, queue_bus: RedisStreamsBus, tmp_path: Path) -> None:
        """A job whose id is another run's (content changed after hashing) is refused before it runs, even signed
        by the coordinator's own key."""
        scenario = load_scenario(tiny_scenario(tmp_path))
        honest = make_job(scenario, 1, scenario.load_policy())
        other = make_job(scenario, 2, scenario.load_policy())
        forged = SweepJob(job_id=honest.job_id, scenario=other.scenario, seed=2, policy=other.policy)
        queue_bus.ensure_group(JOBS, WORKERS_GROUP)
        queue_bus.publish_raw(JOBS, b"not an envelope at all")
        ((envelope, data),) = signed_jobs([forged], queue_bus.namespace, RUNNER_KEYS.private(RUNNER))
        queue_bus.publish_encoded([(JOBS, envelope, data)])
        with SqliteLedger(":memory:") as ledger:
            results: list[Any] = []
            sweep_worker(queue_bus, ledger, results).run(drain=True, block_ms=100)
            assert [r.status for r in results] == ["failed"]
            assert "does not match its content" in (results[0].error or "")
            assert ledger.count() == 0
        assert queue_bus.pending_count(JOBS, WORKERS_GROUP) == 0  # the junk entry was acknowledged, not stuck
        assert queue_bus.length(RESULTS) == 1

    def test_redelivered_and_repeated_jobs_run_once(self, queue_bus: RedisStreamsBus, tmp_path: Path) -> None:
        """The same job published twice, and a whole plan published again: the ledger holds each run once."""
        scenario = load_scenario(tiny_scenario(tmp_path))
        jobs = plan([scenario], [1, 2, 3])
        with SqliteLedger(tmp_path / "ledger.db") as ledger:
            publish_signed(queue_bus, [*jobs, jobs[0]])
            publish_signed(queue_bus, jobs)
            results: list[Any] = []
            sweep_worker(queue_bus, ledger, results).run(drain=True, block_ms=100)
            assert len(results) == 7
            assert sum(not r.reused for r in results) == 3
            assert all(r.cpu_seconds > 0 for r in results if not r.reused)  # each run's CPU, reported with its time
            assert len({r.digest for r in results if r.job_id == jobs[0].job_id}) == 1
            assert_each_run_recorded_once(ledger, {j.job_id for j in jobs})

    def test_a_run_syncs_the_ledger_once_before_its_result(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A job's run commits without an fsync each (NORMAL) and the write-ahead log is synced once, before
        run_job returns its result (the job is acknowledged after it)."""
        job = plan([load_scenario(tiny_scenario(tmp_path))], [1])[0]
        with SqliteLedger(tmp_path / "ledger.db") as ledger:
            result, events = run_traced(job, ledger, monkeypatch)
            assert result.status == "completed"
        level, commits = "FULL", Counter[str]()
        for event in events:
            if event.startswith("PRAGMA synchronous = "):
                level = event.removeprefix("PRAGMA synchronous = ")
            elif event == "COMMIT":
                commits[level] += 1
        assert commits["NORMAL"] >= 3, commits  # the run's: its recorder's flushes written together, its decisions
        assert commits["FULL"] == 0, commits  # no notary here: no checkpoint
        wal_syncs = [i for i, e in enumerate(events) if e == f"fsync {tmp_path / 'ledger.db'}-wal"]
        assert len(wal_syncs) == 1
        assert wal_syncs[0] < events.index("result")
        assert events[wal_syncs[0] - 1] == "PRAGMA synchronous = FULL"

    def test_a_run_with_its_notary_syncs_the_log_at_its_checkpoints_and_not_again_at_its_end(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Opened as a sweep worker opens it (the notary signs a checkpoint after the board's decision and at the
        run's end, each synced before it is witnessed): the run's last commit is its end's checkpoint, so its sync
        holds the whole run and the block's end does not sync the log again (one fsync of five in a run)."""
        job = plan([load_scenario(LIBRARY / "price-spike.yaml")], [3])[0]
        log = f"fsync {tmp_path / 'ledger.db'}-wal"
        with SqliteLedger(tmp_path / "ledger.db") as ledger:
            settings = Settings(data_dir=tmp_path / "data", state_dir=tmp_path / "state")
            attach_notary(ledger, ledger_trust(settings, ledger, client="cli"))
            result, events = run_traced(job, ledger, monkeypatch)
            checkpoints = len(ledger.stored_checkpoints())
        assert result.status == "completed"
        assert checkpoints == 2  # after the board's decision, at the run's end
        assert events.count(log) == checkpoints
        last_commit = len(events) - 1 - events[::-1].index("COMMIT")
        assert last_commit < len(events) - 1 - events[::-1].index(log) < events.index("result")

    def test_a_run_writes_its_flushes_together_with_a_plain_runs_content(self, tmp_path: Path) -> None:
        """A job's run holds its recorder's flushes and writes them when the run next uses the ledger (its bus is
        its own): a few write transactions instead of one per superstep, and the entries of the same run made
        straight into a ledger, in the same order (its board's decisions, which read the escalations flushed
        before them, and its end, which reads the whole run, included)."""
        scenario = load_scenario(LIBRARY / "price-spike.yaml")
        job = plan([scenario], [3])[0]
        with SqliteLedger(tmp_path / "sweep.db") as ledger:
            events: list[str] = []
            ledger._conn.set_trace_callback(events.append)
            assert run_job(job, ledger, worker="w").status == "completed"
            sweep_commits = events.count("COMMIT")
            with SqliteLedger(tmp_path / "plain.db") as plain, closing(MemoryBus.for_run("plain")) as bus:
                plain_events: list[str] = []
                plain._conn.set_trace_callback(plain_events.append)
                assemble_run(
                    scenario,
                    bus=bus,
                    ledger=plain,
                    run_id=job.job_id,
                    seed=3,
                    policy=job_policy(job),
                    options=offline_options(),
                ).run()
                assert [e.message_id for e in plain.iter_entries()] == [e.message_id for e in ledger.iter_entries()]
                assert run_digest(plain, job.job_id) == run_digest(ledger, job.job_id)
                assert any(e.kind in ("approval", "rejection") for e in plain.iter_entries())  # a board decision
                plain_commits = plain_events.count("COMMIT")
        assert sweep_commits * 3 <= plain_commits, (sweep_commits, plain_commits)

    def test_a_run_found_completed_is_synced_before_its_result(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A job taken again finds its run completed, perhaps by a worker that died before its block's sync: the
        log is synced before the result that gets the job acknowledged (it was reported with nothing synced)."""
        job = plan([load_scenario(tiny_scenario(tmp_path))], [1])[0]
        with SqliteLedger(tmp_path / "ledger.db", synchronous="NORMAL") as writer:  # a worker that never syncs
            assert run_job(job, writer, worker="w1").status == "completed"
        events: list[str] = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            events.append(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}")
            real_fsync(fd)

        with SqliteLedger(tmp_path / "ledger.db") as ledger:
            monkeypatch.setattr(os, "fsync", fsync)
            result = run_job(job, ledger, worker="w2")
            events.append("result")
            monkeypatch.undo()
        assert (result.status, result.reused) == ("completed", True)
        assert events.index(f"fsync {tmp_path / 'ledger.db'}-wal") < events.index("result")

    def test_a_worker_parses_each_policy_once(self, tmp_path: Path) -> None:
        """Jobs carrying the same policy (each decoded from its own message, as a worker takes them) share one
        parsed Policy; another policy's jobs get theirs; a bad policy is refused, naming its job, every time."""
        scenario = load_scenario(tiny_scenario(tmp_path))
        other = scenario.load_policy().model_copy(update={"description": "another policy"})
        jobs = [
            SweepJob.model_validate_json(job_envelope(job, "q").payload.model_dump_json())
            for job in plan([scenario], [1, 2], [scenario.load_policy(), other])
        ]
        assert len({id(job.policy) for job in jobs}) == 4  # four documents, decoded apart
        parsed = [job_policy(job) for job in jobs]
        versions = {policy.version for policy in parsed}
        assert len(versions) == 2
        for version in versions:  # one object per policy content, whichever job carried it
            assert len({id(policy) for policy in parsed if policy.version == version}) == 1
        bad = SweepJob(job_id="bad-job", scenario=jobs[0].scenario, seed=1, policy={"name": "x"})
        with SqliteLedger(":memory:") as ledger:
            for _ in range(2):
                with pytest.raises(PolicyError, match="sweep job bad-job"):
                    job_policy(bad)
                assert "does not hold a valid run" in (run_job(bad, ledger, worker="w").error or "")

    def test_job_id_is_content_not_path(self, tmp_path: Path) -> None:
        """The same scenario read from two paths (and another seed, another policy) gives the ids it should."""
        first = load_scenario(tiny_scenario(tmp_path))
        (tmp_path / "copy").mkdir()
        second = load_scenario(tiny_scenario(tmp_path / "copy"))
        policy = first.load_policy()
        assert job_id(first, 1, policy) == job_id(second, 1, policy)
        assert job_id(first, 1, policy) != job_id(first, 2, policy)


class TestForgedResults:
    """Results on the queue are claims: anyone who can write to the sweep's Redis can publish one."""

    def test_a_forged_completed_result_is_checked_against_the_ledger(self, redis_url: str, tmp_path: Path) -> None:
        """With no worker running, results claiming every job completed (a made-up digest) are published on the
        queue: the sweep reports each run failed, the ledger holding none of them, and exits 1."""
        queue = f"forged-{uuid.uuid4().hex[:8]}"
        ledger = tmp_path / "l.db"
        scenario = str(tiny_scenario(tmp_path))
        coordinator = _sweep(
            scenario, "--seeds", "1-2", "--jobs", "0", "--queue", queue, "--ledger", str(ledger), "--json",
            env=_env(tmp_path, redis_url), cwd=tmp_path,
        )  # fmt: skip
        try:
            bus = RedisStreamsBus(redis_url, namespace=queue)
            with closing(bus):
                deadline = time.monotonic() + 60
                while bus.length(JOBS) < 2:
                    assert time.monotonic() < deadline, "the sweep did not publish its jobs"
                    time.sleep(0.05)
                bus.ensure_group(JOBS, "spy")
                jobs = [d.envelope.payload for d in bus.read([JOBS], "spy", "spy", count=10) if d.envelope]
                for job in jobs:
                    assert isinstance(job, SweepJob)
                    forged = SweepResult(
                        job_id=job.job_id, worker="w", status="completed", scenario="tiny", seed=job.seed,
                        policy_version="pv", entries=20, digest="0" * 64, expectations_held=3,
                        expectations_total=3, seconds=0.1, reused=False, resumed=False, attempt=1,
                    )  # fmt: skip
                    bus.publish(RESULTS, result_envelope(forged))
            out, err = coordinator.communicate(timeout=120)
        finally:
            if coordinator.poll() is None:
                coordinator.kill()
        assert coordinator.returncode == 1, (out, err[-2000:])
        results = orjson.loads(out)["results"]
        assert [r["status"] for r in results] == ["failed", "failed"]
        assert all("the ledger does not hold" in (r["error"] or "") for r in results), results

    def test_a_result_with_the_real_digest_and_made_up_figures_fails(self, tmp_path: Path) -> None:
        """A result naming a run the ledger completed, with its true digest, holds only with the ledger's own entry
        count and expectations: one claiming other expectations held, or other entries, is failed."""
        job = plan([load_scenario(tiny_scenario(tmp_path))], [1])[0]
        with SqliteLedger(tmp_path / "ledger.db") as ledger:
            genuine = run_job(job, ledger, worker="w")
            assert genuine.status == "completed"
            assert genuine.expectations_total > 0
            forged = [
                genuine.model_copy(update={"expectations_held": genuine.expectations_held - 1}),
                genuine.model_copy(update={"expectations_total": genuine.expectations_total + 1}),
                genuine.model_copy(update={"entries": genuine.entries + 1}),
            ]
            checked = held_to_ledger([genuine, *forged], ledger)
        assert [r.status for r in checked] == ["completed", "failed", "failed", "failed"]
        assert all("the ledger does not hold" in (r.error or "") for r in checked[1:]), checked


def _published(redis_url: str, queue: str, count: int) -> None:
    """Until the coordinator of `queue` has published its `count` jobs."""
    with closing(RedisStreamsBus(redis_url, namespace=queue)) as bus:
        deadline = time.monotonic() + 60
        while bus.length(JOBS) < count:
            assert time.monotonic() < deadline, "the sweep did not publish its jobs"
            time.sleep(0.05)


def _sweep_worker(queue: str, ledger: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`coalition sweep-worker --drain` on `queue`, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "coalition", "sweep-worker", "--queue", queue, "--drain", "--ledger", str(ledger)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def _finish(coordinator: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return coordinator.communicate(timeout=120)
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
            coordinator.communicate(timeout=30)


class TestSignedJobs:
    """A job runs a scenario (whose agents may name code to import) into the shared ledger: a worker runs only what
    the coordinator signed for its queue. Attacks through the CLI: a forged job on the queue's Redis, a genuine job
    copied onto another queue."""

    def test_a_forged_job_with_a_valid_id_is_not_run(self, redis_url: str, tmp_path: Path) -> None:
        """Jobs whose id matches their content, on the queue before a sweep's own: one unsigned, one signed by a key
        other than the runner's (one a worker host holds), one signed by the runner's key and altered afterwards. The
        worker refuses each, naming why, and runs the sweep's two jobs; the ledger holds those two runs only."""
        queue = f"signed-{uuid.uuid4().hex[:8]}"
        ledger = tmp_path / "l.db"
        env = _env(tmp_path, redis_url)
        scenario_path = tiny_scenario(tmp_path)
        scenario = load_scenario(scenario_path)
        policy = scenario.load_policy()
        forged = [make_job(scenario, seed, policy) for seed in (3, 4, 5)]
        assert all(job.job_id == job_id(scenario, job.seed, policy) for job in forged)
        store = key_store(tmp_path / "data")  # the data directory the coordinator and the worker use
        store.init([RUNNER])
        stranger = Keyring.ephemeral(["agent:finance"]).private("agent:finance")
        at = datetime(1970, 1, 1, tzinfo=UTC)
        unsigned = Envelope.wrap(forged[0], id=f"job:{forged[0].job_id}", source="runner", run_id=queue, superstep=0,
                                 sim_time=at)  # fmt: skip
        ((stranger_signed, stranger_bytes),) = signed_jobs([forged[1]], queue, stranger)
        ((signed, _),) = signed_jobs([make_job(scenario, 6, policy)], queue, store.private(RUNNER))
        altered = signed.model_copy(update={"id": f"job:{forged[2].job_id}", "payload": forged[2]})
        with closing(RedisStreamsBus(redis_url, namespace=queue)) as bus:  # the group reads the stream from its start
            bus.publish(JOBS, unsigned)
            bus.publish_encoded([(JOBS, stranger_signed, stranger_bytes)])
            bus.publish(JOBS, altered)
        coordinator = _sweep(
            str(scenario_path), "--seeds", "1-2", "--jobs", "0", "--queue", queue, "--ledger", str(ledger), "--json",
            env=env, cwd=tmp_path,
        )  # fmt: skip
        try:
            _published(redis_url, queue, 5)
            worker = _sweep_worker(queue, ledger, env, tmp_path)  # its exit races the coordinator's cleanup: not read
            out, err = _finish(coordinator)
        finally:
            if coordinator.poll() is None:
                coordinator.kill()
        assert coordinator.returncode == 0, err[-2000:]
        results = orjson.loads(out)["results"]
        assert [r["status"] for r in results] == ["completed", "completed"]
        with SqliteLedger(ledger, create=False) as led:
            assert {info.run_id for info in led.runs()} == {r["job_id"] for r in results}
        refusals = [line for line in worker.stderr.splitlines() if "sweep.job_refused" in line]
        assert len(refusals) == 3, worker.stderr[-3000:]
        assert "from runner is not signed" in refusals[0]
        assert "does not verify against runner's key (forged or altered)" in refusals[1]
        assert "does not verify against runner's key (forged or altered)" in refusals[2]

    def test_a_genuine_job_copied_onto_another_queue_is_refused(self, redis_url: str, tmp_path: Path) -> None:
        """Sweep A's job, copied byte for byte onto sweep B's queue (same Redis, same keys), is refused there as
        another queue's; B's own job completes, and the ledger holds B's run only."""
        queues = [f"copied-{uuid.uuid4().hex[:8]}" for _ in range(2)]
        ledger = tmp_path / "l.db"
        env = _env(tmp_path, redis_url)
        scenario = str(tiny_scenario(tmp_path))
        first = _sweep(scenario, "--seeds", "1", "--jobs", "0", "--queue", queues[0], "--ledger", str(ledger),
                       env=env, cwd=tmp_path)  # fmt: skip
        try:
            _published(redis_url, queues[0], 1)
            with (
                closing(RedisStreamsBus(redis_url, namespace=queues[0])) as bus_a,
                closing(RedisStreamsBus(redis_url, namespace=queues[1])) as bus_b,
            ):
                (copied,) = bus_a.range(JOBS)
                bus_b.publish_raw(JOBS, copied.raw)  # before B's own job: B's group reads its stream from the start
        finally:
            first.kill()
            first.communicate(timeout=30)
            with closing(RedisStreamsBus(redis_url, namespace=queues[0])) as bus_a:
                bus_a.delete_namespace()  # what A's coordinator, killed, did not delete
        second = _sweep(scenario, "--seeds", "2", "--jobs", "0", "--queue", queues[1], "--ledger", str(ledger),
                        "--json", env=env, cwd=tmp_path)  # fmt: skip
        try:
            _published(redis_url, queues[1], 2)
            worker = _sweep_worker(queues[1], ledger, env, tmp_path)  # its exit races B's cleanup: not read
            out, err = _finish(second)
        finally:
            if second.poll() is None:
                second.kill()
        assert second.returncode == 0, err[-2000:]
        (result,) = orjson.loads(out)["results"]
        assert result["status"] == "completed"
        assert result["seed"] == 2
        with SqliteLedger(ledger, create=False) as led:
            assert {info.run_id for info in led.runs()} == {result["job_id"]}
        refusals = [line for line in worker.stderr.splitlines() if "sweep.job_refused" in line]
        assert len(refusals) == 1, worker.stderr[-3000:]
        assert f"belongs to run {queues[0]}, not {queues[1]} (replayed)" in refusals[0]


def test_a_sweep_worker_without_the_runner_key_is_one_line(tmp_path: Path, redis_url: str) -> None:
    """A worker host given no public key to verify jobs with stops at start, saying which file to copy."""
    done = subprocess.run(
        [sys.executable, "-m", "coalition", "sweep-worker", "--queue", "q", "--drain"],
        env=_env(tmp_path, redis_url), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "copy keys/runner.pub" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


class TestSweepOnPostgres:
    """Sweep workers (separate processes) recording into one PostgreSQL ledger as its app role."""

    def test_sweep_into_postgres(self, redis_url: str, postgres: PostgresServer, tmp_path: Path) -> None:
        url = postgres.new_ledger_url()
        scenario_path = tiny_scenario(tmp_path)
        env = _env(tmp_path, redis_url, COALITION_LEDGER=url)
        sweep = _sweep(str(scenario_path), "--seeds", "1-6", "--jobs", "2", "--json", env=env, cwd=tmp_path)
        out, err = sweep.communicate(timeout=240)
        assert sweep.returncode == 0, err
        results = orjson.loads(out)["results"]
        from coalition.ledger.postgres import PostgresLedger

        with PostgresLedger(url) as ledger:
            assert_each_run_recorded_once(ledger, {r["job_id"] for r in results})
            assert {r["digest"] for r in results} == {run_digest(ledger, r["job_id"]) for r in results}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["price-spike", "--seeds", "5-1"], "--seeds: '5-1' is empty"),
        (["price-spike", "--seeds", "x"], "--seeds: 'x' is not a seed"),
        (["no-such-scenario"], "no such scenario"),
        (["price-spike", "--bus", "memory"], "a sweep needs Redis"),
        (["price-spike", "--queue", "a:b", "--jobs", "0"], "--queue must be"),
        (["price-spike", "--policy", "missing.yaml"], "missing.yaml"),
    ],
)
def test_bad_sweep_input_is_one_line(tmp_path: Path, redis_url: str, args: list[str], message: str) -> None:
    """Every bad argument: one line on stderr naming it, exit 2, no traceback, no worker started."""
    result = subprocess.run(
        [sys.executable, "-m", "coalition", "sweep", *args],
        env=_env(tmp_path, redis_url),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_consistency_on_sweep_workers_agrees_with_one_process(tmp_path: Path, redis_url: str) -> None:
    """`consistency --jobs 2` (variants as sweep jobs on two worker processes) reports what the in-process one does."""
    scenario_path = str(tiny_scenario(tmp_path))
    env = _env(tmp_path, redis_url)
    docs = []
    for extra in ([], ["--jobs", "2"]):
        done = subprocess.run(
            [sys.executable, "-m", "coalition", "consistency", scenario_path, "--runs", "3", "--json", *extra],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        docs.append(orjson.loads(done.stdout))
    assert docs[0] == docs[1]
    assert docs[0]["cases"] > 0
