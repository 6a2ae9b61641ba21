"""Agent workers over a real Redis: `coalition worker` processes run the agents, the coordinator (a Runner in this
process) keeps governance, the executor and the recorder, and the ledger is the one-process run's, digest for
digest — with five workers, with a worker SIGKILLed mid-run (a standby takes its agent over), on a 3-node cluster;
a worker that never reports fails the run at its deadline, with a message naming it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import redis
from llm_wire_server import FAKE_OPENAI_KEY, WireServer

from coalition.agents.model_choice import choose_models
from coalition.agents.providers import ProviderAccess
from coalition.bootstrap import run_keyring
from coalition.bus.errors import AgentWorkersFailed
from coalition.bus.keys import Keyring, public_text
from coalition.bus.memory import MemoryBus
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.bus.worker_control import RUNS_KEY, WorkerControl
from coalition.cli.worker_cmd import worker_command
from coalition.ledger import SqliteLedger, run_digest
from coalition.scenarios.agent_workers import RemoteAgents, remote_agents
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.runner import Runner, RunnerOptions
from coalition.scenarios.spec import load_scenario, scenario_hash
from coalition.scenarios.worker_orders import Announcement

pytestmark = pytest.mark.integration

SCENARIO = "helios-launch"
AGENTS = ["finance", "legal", "liquidity", "marketing", "ops", "research", "sales"]
FIVE = [AGENTS[i::5] for i in range(5)]  # 7 agents dealt over 5 workers


class Workers:
    """`coalition worker` processes of one test, always stopped at the end."""

    def __init__(self, data_dir: Path, url: str, run_id: str, env: dict[str, str] | None = None) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_") and k != "REDIS_URL"}
        self.env.update(COALITION_DATA_DIR=str(data_dir), **(env or {}))
        self.url = url
        self.run_id = run_id
        self.logs = data_dir / "worker-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, agents: list[str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                worker_command(agents, name=name, run_id=self.run_id, bus=self.url),
                env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip

    def start_five(self, prefix: str) -> None:
        """Five workers, the run's seven agents dealt over them."""
        for index, agents in enumerate(FIVE):
            self.start(f"{prefix}-w{index}", agents)

    def wait_alive(self, timeout: float = 120.0) -> None:
        """Until every started worker beats (the coordinator picks owners among the workers alive when it starts)."""
        control = WorkerControl(self.url)
        try:
            deadline = time.monotonic() + timeout
            while not self.processes.keys() <= control.alive().keys():
                assert time.monotonic() < deadline, f"workers not alive after {timeout} s"
                time.sleep(0.1)
        finally:
            control.close()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def keyring(data_dir: Path) -> Keyring:
    return run_keyring(data_dir)  # created here; the workers read the same keys directory


@pytest.fixture
def run_id() -> str:
    return f"aw-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def workers(data_dir: Path, redis_url: str, run_id: str) -> Iterator[Workers]:
    pool = Workers(data_dir, redis_url, run_id)
    try:
        yield pool
    finally:
        pool.stop()


def one_process_digest(tmp_path: Path, options: RunnerOptions | None = None) -> str:
    with SqliteLedger(tmp_path / "one.db", create=True) as ledger:
        assemble_run(load_scenario(SCENARIO), bus=MemoryBus(), ledger=ledger, run_id="one", options=options).run()
        return run_digest(ledger, "one")


def run_on_workers(
    tmp_path: Path, url: str, run_id: str, keyring: Keyring, *, deadline_s: float = 120.0, **options: object
) -> tuple[str, Runner]:
    bus = RedisStreamsBus(url, namespace=f"run-{run_id}")
    try:
        with SqliteLedger(tmp_path / "workers.db", create=True) as ledger:
            runner = assemble_run(
                load_scenario(SCENARIO),
                bus=bus,
                ledger=ledger,
                run_id=run_id,
                options=RunnerOptions(
                    keyring=keyring,
                    agent_workers=remote_agents(url, deadline_s=deadline_s, join_timeout_s=180),
                    **options,  # type: ignore[arg-type]
                ),
            )
            runner.run()
            return run_digest(ledger, run_id), runner
    finally:
        bus.delete_namespace()
        bus.close()


def remote(runner: Runner) -> RemoteAgents:
    step = runner.runtimes[0]
    assert isinstance(step, RemoteAgents)
    return step


class TestDigests:
    def test_five_workers_record_the_one_process_ledger(
        self, tmp_path: Path, redis_url: str, run_id: str, keyring: Keyring, workers: Workers
    ) -> None:
        workers.start_five(run_id)
        digest, runner = run_on_workers(tmp_path, redis_url, run_id, keyring)
        assert digest == one_process_digest(tmp_path)
        assert sorted(set(remote(runner).owners.values())) == [f"{run_id}-w{i}" for i in range(5)]
        assert remote(runner).takeovers == []

    def test_on_a_three_node_cluster(
        self, tmp_path: Path, redis_cluster_url: str, run_id: str, keyring: Keyring, data_dir: Path
    ) -> None:
        url = redis_cluster_url.replace("redis://", "redis+cluster://", 1)
        pool = Workers(data_dir, url, run_id)
        try:
            pool.start_five(f"{run_id}-cluster")
            digest, _ = run_on_workers(tmp_path, url, run_id, keyring)
        finally:
            pool.stop()
        assert digest == one_process_digest(tmp_path)


class TestForgedAnnouncement:
    """An announcement makes workers build agents with its model choices under its policy: only the coordinator's
    signed one is acted on."""

    def test_a_forged_announcement_is_not_run_and_the_signed_one_is(
        self, tmp_path: Path, redis_url: str, run_id: str, keyring: Keyring, workers: Workers
    ) -> None:
        """Before the coordinator announces run R, an attacker stores an unsigned announcement under R (the run's
        own documents, its agents' public keys, a namespace of the attacker's) and posts a barrier there: the worker
        refuses it, naming why, and runs no step of it; the coordinator's signed announcement, stored over it, is
        served, and the run has the one-process digest."""
        name = f"{run_id}-all"
        workers.start(name, AGENTS)
        workers.wait_alive()
        scenario = load_scenario(SCENARIO)
        forged_namespace = f"forged-{run_id}"
        forged = {
            "run_id": run_id, "namespace": forged_namespace, "scenario": scenario.document,
            "scenario_hash": scenario_hash(scenario), "policy": scenario.load_policy().document, "seed": scenario.seed,
            "agents": AGENTS, "models": {},
            "keys": {f"agent:{a}": public_text(keyring.private(f"agent:{a}").public_key()) for a in AGENTS},
        }  # fmt: skip
        admin = redis.Redis.from_url(redis_url)
        control = WorkerControl(redis_url)
        done = WorkerControl.done_key(forged_namespace)
        try:
            admin.hset(RUNS_KEY, run_id, orjson.dumps(forged))
            barrier = {"superstep": 0, "sim_time": "2026-01-01T00:00:00+00:00", "owners": dict.fromkeys(AGENTS, name)}
            control.post(WorkerControl.barrier_key(forged_namespace), barrier)
            deadline = time.monotonic() + 60
            while "agent_workers.run_refused" not in workers.log(name) and not control.read(done, "0"):
                assert time.monotonic() < deadline, workers.log(name)[-2000:]
                time.sleep(0.1)
            assert control.read(done, "0") == [], "the worker ran a step of the forged run"
            (line,) = [x for x in workers.log(name).splitlines() if "agent_workers.run_refused" in x]
            assert f"announcement of run {run_id} is not a signed announcement" in line
            digest, _ = run_on_workers(tmp_path, redis_url, run_id, keyring)
        finally:
            admin.hdel(RUNS_KEY, run_id)
            admin.delete(WorkerControl.barrier_key(forged_namespace), done)
            admin.close()
            control.close()
        assert digest == one_process_digest(tmp_path)


class BarrierInjector:
    """Beside a running run: right after the coordinator's barrier for each superstep of `at`, appends what `forge`
    makes of it (superstep, its bytes, the bytes of the barrier before it) to the run's barrier stream (`reports`:
    to its report stream instead), then calls `after`; meanwhile keeps every step report the run's workers post."""

    def __init__(
        self, url: str, run_id: str, namespace: str, at: set[int], forge: Forge, *, reports: bool = False,
        after: Callable[[], None] = lambda: None,
    ) -> None:  # fmt: skip
        self.url = url
        self.run_id = run_id
        self.barrier = WorkerControl.barrier_key(namespace)
        self.done = WorkerControl.done_key(namespace)
        self.into = self.done if reports else self.barrier
        self.after = after
        self.at = set(at)
        self.forge = forge
        self.injected: list[int] = []
        self.reports: list[dict[str, object]] = []
        self.genuine_reports: list[bytes] = []  # as read (the workers' signed bytes)
        self.barriers: list[bytes] = []  # the coordinator's, as read
        self.announcement: bytes | None = None  # as stored while the run went on
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> BarrierInjector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        r = redis.Redis.from_url(self.url)
        cursors = {self.done: "0", self.barrier: "0"}  # reports first: those of a step came before the next barrier
        previous = b""  # the coordinator's barrier before the one read
        ours: set[bytes] = set()
        try:
            while not self._stop.is_set():
                for key, entries in r.xread(cursors, block=100) or []:  # type: ignore[arg-type]
                    name = key.decode()
                    for entry_id, fields in entries:
                        cursors[name] = entry_id.decode()
                        raw = fields[b"j"]
                        if name == self.done and raw in ours:
                            continue
                        if name == self.done:  # a signed report: the step and superstep of its envelope
                            self.genuine_reports.append(raw)
                            envelope = orjson.loads(raw)
                            self.reports.append({"superstep": envelope["superstep"], **envelope["payload"]})
                            continue
                        if raw in ours:
                            continue
                        if self.announcement is None:
                            self.announcement = r.hget(RUNS_KEY, self.run_id)
                        self.barriers.append(raw)
                        superstep = int(orjson.loads(raw)["superstep"])
                        if superstep in self.at:
                            self.at.discard(superstep)
                            for forged in self.forge(superstep, raw, previous):
                                ours.add(forged)
                                r.xadd(self.into, {b"j": forged})
                            self.injected.append(superstep)
                            self.after()
                        previous = raw
        finally:
            r.close()

    def steps_reported_twice(self) -> list[tuple[object, object]]:
        seen = [(doc.get("agent"), doc.get("superstep")) for doc in self.reports]
        return sorted({step for step in seen if seen.count(step) > 1}, key=str)


Forge = Callable[[int, bytes, bytes], list[bytes]]
FORGED = 10_000  # a forged barrier's superstep: FORGED + the superstep it was appended after


def _refusals(log: str) -> list[str]:
    return [line for line in log.splitlines() if "agent_workers.barrier_refused" in line]


class TestForgedBarriers:
    """A barrier makes workers run the run's agents (and spend its model budget): only the coordinator's, signed for
    the run and taken in order, is acted on."""

    def test_forged_altered_and_replayed_barriers_run_nothing_and_the_run_keeps_its_digest(
        self, tmp_path: Path, redis_url: str, run_id: str, keyring: Keyring, workers: Workers
    ) -> None:
        """While a genuine run goes on, an attacker on its Redis appends after its barrier 5 a barrier of their own
        (unsigned, every agent on the worker, a superstep of their choosing), after barrier 12 that barrier with its
        superstep changed, after barrier 20 the genuine barrier before it again: the worker refuses each, naming
        why, no step runs from them, and the run has the one-process digest."""
        name = f"{run_id}-all"
        workers.start(name, AGENTS)
        workers.wait_alive()

        def forge(superstep: int, raw: bytes, previous: bytes) -> list[bytes]:
            if superstep == 5:
                own = {"superstep": FORGED + superstep, "sim_time": "2026-01-01T00:00:00+00:00"}
                return [orjson.dumps({**own, "owners": dict.fromkeys(AGENTS, name)})]
            if superstep == 12:
                altered = raw.replace(b'"superstep":%d' % superstep, b'"superstep":%d' % (FORGED + superstep), 1)
                assert altered != raw
                return [altered]
            return [previous]

        with BarrierInjector(redis_url, run_id, f"run-{run_id}", {5, 12, 20}, forge) as injector:
            digest, _ = run_on_workers(tmp_path, redis_url, run_id, keyring)
        assert injector.injected == [5, 12, 20]
        assert [d for d in injector.reports if int(str(d.get("superstep"))) >= FORGED] == []
        assert injector.steps_reported_twice() == []
        assert digest == one_process_digest(tmp_path)
        refused = _refusals(workers.log(name))
        assert len(refused) == 3, refused
        assert "is not a signed barrier" in refused[0]
        assert "does not verify against runner's key (forged or altered)" in refused[1]
        assert "the last taken here (replayed)" in refused[2]

    def test_a_barrier_of_another_run_is_refused(
        self, tmp_path: Path, redis_url: str, run_id: str, keyring: Keyring, workers: Workers
    ) -> None:
        """The coordinator of another run (the same runner key) posts a barrier naming this run's worker into this
        run's barrier stream, after its barrier 10: refused as another run's, no step runs from it, and the run has
        the one-process digest."""
        name = f"{run_id}-all"
        workers.start(name, AGENTS)
        workers.wait_alive()
        namespace = f"run-{run_id}"
        other = Announcement(
            run_id=f"{run_id}-other", namespace=namespace, scenario={}, scenario_hash="", policy={}, seed=0,
            agents=AGENTS, models={}, keys={},
        )  # fmt: skip

        def forge(superstep: int, raw: bytes, previous: bytes) -> list[bytes]:
            coordinator = RemoteAgents(
                WorkerControl(redis_url), other, key=keyring.private("runner"), deadline_s=60, join_timeout_s=1
            )
            coordinator.owners = dict.fromkeys(AGENTS, name)
            try:  # its barrier goes to the stream of `namespace`: this run's
                coordinator._post(FORGED + superstep, datetime(2026, 1, 1, tzinfo=UTC))
            finally:
                coordinator.control.close()
            return []

        with BarrierInjector(redis_url, run_id, namespace, {10}, forge) as injector:
            digest, _ = run_on_workers(tmp_path, redis_url, run_id, keyring)
        assert injector.injected == [10]
        assert [d for d in injector.reports if int(str(d.get("superstep"))) >= FORGED] == []
        assert digest == one_process_digest(tmp_path)
        (refused,) = _refusals(workers.log(name))
        assert f"belongs to run {run_id}-other, not {run_id} (replayed)" in refused


class TestForgedReports:
    """A step report tells the coordinator that an agent's step is done (and how much it published): only the owner's,
    signed with the agent's key for the run, the attempt and the step the coordinator waits for, is counted."""

    def test_forged_step_reports_do_not_end_a_step_before_its_agents_ran(
        self, tmp_path: Path, redis_url: str, run_id: str, keyring: Keyring, workers: Workers
    ) -> None:
        """An attacker on the run's Redis stops the run's worker as the coordinator's barriers for supersteps 3, 9
        and 20 come and, while it is stopped, reports each of the step's agents as done with nothing published, in the
        worker's name: plain JSON as a worker once wrote it, then an earlier genuine report with its superstep
        changed. The coordinator counts none of them (each refused, with the reason), waits for the worker's real
        reports, and the run has the one-process digest."""
        name = f"{run_id}-all"
        workers.start(name, AGENTS)
        workers.wait_alive()
        process = workers.processes[name]

        def forge(superstep: int, raw: bytes, previous: bytes) -> list[bytes]:
            process.send_signal(signal.SIGSTOP)  # the real reports of this step come only after the forged ones
            owners = orjson.loads(raw)["payload"]["owners"]
            forged = [
                orjson.dumps({"superstep": superstep, "agent": agent, "worker": owner, "produced": 0})
                for agent, owner in owners.items()
            ]
            for report in genuine[:1]:  # a genuine report of an earlier step, made to say this step
                old = orjson.loads(report)["superstep"]
                forged.append(report.replace(b'"superstep":%d' % old, b'"superstep":%d' % superstep, 1))
            return forged

        def resume() -> None:
            time.sleep(1.5)  # ample time for the coordinator to take the forged reports and move on, if it would
            process.send_signal(signal.SIGCONT)

        injector = BarrierInjector(redis_url, run_id, f"run-{run_id}", {3, 9, 20}, forge, reports=True, after=resume)
        genuine = injector.genuine_reports
        with injector:
            digest, runner = run_on_workers(tmp_path, redis_url, run_id, keyring)
        assert injector.injected == [3, 9, 20]
        assert digest == one_process_digest(tmp_path)
        refused = remote(runner).refused_reports
        assert len(refused) == 3 * len(AGENTS) + 3, refused
        assert sum("is not a signed step report" in line for line in refused) == 3 * len(AGENTS), refused
        assert sum("does not verify against agent:" in line for line in refused) == 3, refused


class TestAnnouncementReplayed:
    """A genuine announcement and barriers stored again after the run ended run none of its agents."""

    def test_the_run_replayed_after_its_end_runs_nothing(
        self, tmp_path: Path, redis_url: str, run_id: str, keyring: Keyring, workers: Workers
    ) -> None:
        """After a run (step deadline 5 s) ended, an attacker who kept its announcement and barriers stores them again
        once the last barrier's deadline passed: the worker that served the run refuses the announcement it saw
        withdrawn, a worker started afresh joins it but refuses the expired barrier, and no step report comes."""
        name = f"{run_id}-all"
        workers.start(name, AGENTS)
        workers.wait_alive()
        namespace = f"run-{run_id}"
        with BarrierInjector(redis_url, run_id, namespace, set(), lambda *_: []) as kept:
            digest, _ = run_on_workers(tmp_path, redis_url, run_id, keyring, deadline_s=5.0)
        assert digest == one_process_digest(tmp_path)
        assert kept.announcement is not None
        assert kept.barriers
        time.sleep(5.5)  # the last barrier's deadline passes
        admin = redis.Redis.from_url(redis_url)
        control = WorkerControl(redis_url)
        done = WorkerControl.done_key(namespace)
        try:
            admin.hset(RUNS_KEY, run_id, kept.announcement)
            for raw in kept.barriers:
                admin.xadd(WorkerControl.barrier_key(namespace), {b"j": raw})
            deadline = time.monotonic() + 60
            while "the run ended here before (replayed)" not in workers.log(name) and not control.read(done, "0"):
                assert time.monotonic() < deadline, workers.log(name)[-2000:]
                time.sleep(0.1)
            fresh = f"{run_id}-fresh"
            workers.start(fresh, AGENTS)
            while not any("expired" in line for line in _refusals(workers.log(fresh))) and not control.read(done, "0"):
                assert time.monotonic() < deadline, workers.log(fresh)[-2000:]
                time.sleep(0.1)
            time.sleep(1.0)
            assert control.read(done, "0") == [], "a worker ran a step of the replayed run"
        finally:
            admin.hdel(RUNS_KEY, run_id)
            admin.delete(WorkerControl.barrier_key(namespace), done)
            admin.close()
            control.close()
        (refused,) = _refusals(workers.log(fresh))
        assert f"superstep {int(orjson.loads(kept.barriers[-1])['superstep'])}) expired at" in refused


def _kill_at(url: str, namespace: str, superstep: int, process: subprocess.Popen[bytes], sig: int) -> threading.Thread:
    """A thread that sends `sig` to `process` once the coordinator's barrier reaches `superstep`."""

    def watch() -> None:
        control = WorkerControl(url)
        cursor = "0"
        try:
            while process.poll() is None:
                for entry_id, doc in control.read(WorkerControl.barrier_key(namespace), cursor, block_ms=200):
                    cursor = entry_id
                    if int(doc["superstep"]) >= superstep:
                        process.send_signal(sig)
                        return
        finally:
            control.close()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.serial  # kills a worker while the run goes on
class TestTakeover:
    def test_a_standby_takes_over_the_agent_of_a_killed_worker(
        self, tmp_path: Path, redis_url: str, run_id: str, keyring: Keyring, workers: Workers
    ) -> None:
        workers.start_five(run_id)
        workers.wait_alive()
        workers.start(f"{run_id}-standby", AGENTS)  # serves everything; owns nothing while the others live
        workers.wait_alive()
        victim = f"{run_id}-w0"  # serves finance and research
        killer = _kill_at(redis_url, f"run-{run_id}", 40, workers.processes[victim], signal.SIGKILL)
        digest, runner = run_on_workers(tmp_path, redis_url, run_id, keyring)
        killer.join(timeout=5)
        assert workers.processes[victim].poll() == -signal.SIGKILL, "the worker was never killed"
        taken = {(agent, dead, new) for _, agent, dead, new in remote(runner).takeovers}
        # the victim owned finance (the standby, least loaded then, got research); the standby took finance over
        assert taken == {("finance", victim, f"{run_id}-standby")}
        assert min(step for step, *_ in remote(runner).takeovers) >= 40
        assert digest == one_process_digest(tmp_path)
        assert "agent_workers.rebuilt" in workers.log(f"{run_id}-standby")

    def test_a_stopped_worker_with_no_standby_fails_the_run_with_its_name(
        self, tmp_path: Path, redis_url: str, run_id: str, keyring: Keyring, workers: Workers
    ) -> None:
        workers.start_five(run_id)
        victim = f"{run_id}-w1"  # legal and sales
        _kill_at(redis_url, f"run-{run_id}", 10, workers.processes[victim], signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(AgentWorkersFailed, match=rf"worker {victim} running agent (legal|sales) stopped"):
            run_on_workers(tmp_path, redis_url, run_id, keyring)
        assert time.monotonic() - started < 170


@pytest.mark.serial  # a deadline against a model that answers late
class TestDeadline:
    def test_a_worker_that_never_reports_fails_the_run_at_the_deadline(
        self, tmp_path: Path, redis_url: str, run_id: str, keyring: Keyring, data_dir: Path
    ) -> None:
        hung = threading.Event()

        def hang_once(body: object) -> float:
            if hung.is_set():
                return 0.0
            hung.set()
            return 60.0  # longer than the step deadline, shorter than the model timeout

        with WireServer(hang_when=hang_once) as server:
            env = {
                "OPENAI_API_KEY": FAKE_OPENAI_KEY,
                "OPENAI_BASE_URL": server.openai_base_url,
                "COALITION_LLM_TIMEOUT": "120",
            }
            pool = Workers(data_dir, redis_url, run_id, env)
            try:
                pool.start_five(run_id)
                models = choose_models(per_agent={"finance": "openai:gpt-4o-mini"})
                access = ProviderAccess(openai_api_key=FAKE_OPENAI_KEY, openai_base_url=server.openai_base_url)
                started = time.monotonic()
                with pytest.raises(AgentWorkersFailed, match=r"no step report from finance \(worker .*\) within 15 s"):
                    run_on_workers(
                        tmp_path, redis_url, run_id, keyring, deadline_s=15.0, models=models, provider_access=access
                    )
                assert hung.is_set()
                assert time.monotonic() - started < 170
            finally:
                pool.stop()


POLICIES = Path(__file__).resolve().parents[2] / "packs" / "helios" / "policies"


class TestBadInput:
    """What workers cannot do is one line and exit 2, before anything runs."""

    @pytest.mark.parametrize(
        ("args", "says"),
        [
            (["run", SCENARIO, "--bus", "memory", "--agent-workers", "2"], "--agent-workers needs --bus redis"),
            (["run", SCENARIO, "--agent-workers", "lots"], "--agent-workers must be a number of local workers"),
            (
                ["run", SCENARIO, "--agent-workers", "external", "--policy", str(POLICIES / "helios-autonomous.yaml")],
                "the model lane of finance, marketing previews governance's state",
            ),
            (["worker", "--agents", "finance,nobody"], "--agents: unknown agent nobody"),
            (["worker", "--agents", "finance", "--bus", "memory"], "coalition worker needs the coordinator's Redis"),
        ],
    )
    def test_refused_in_one_line(self, args: list[str], says: str, redis_url: str, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_") and k != "REDIS_URL"}
        env.update(COALITION_DATA_DIR=str(tmp_path / "data"), REDIS_URL=redis_url)
        done = subprocess.run(
            [sys.executable, "-m", "coalition", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, done.stderr
        assert says in lines[0], done.stderr
        assert "Traceback" not in done.stderr


class TestDoctor:
    def test_doctor_lists_live_workers_and_forgets_a_stopped_one(
        self, redis_url: str, run_id: str, data_dir: Path, keyring: Keyring, workers: Workers, tmp_path: Path
    ) -> None:
        workers.start(f"{run_id}-doc", ["finance", "ops"])
        workers.wait_alive()

        def listed() -> dict[str, dict[str, object]]:
            env = {**workers.env, "REDIS_URL": redis_url}
            done = subprocess.run(
                [sys.executable, "-m", "coalition", "doctor", "--json"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            report = orjson.loads(done.stdout)
            assert isinstance(report["workers"], list), report["workers"]
            return {w["name"]: w for w in report["workers"]}

        mine = listed()[f"{run_id}-doc"]
        assert mine["agents"] == ["finance", "ops"]
        assert mine["pid"] == workers.processes[f"{run_id}-doc"].pid
        assert 0 <= float(str(mine["seconds_ago"])) < 5
        workers.stop()  # SIGTERM: it says goodbye, so it is gone at once (no TTL to wait for)
        assert f"{run_id}-doc" not in listed()
