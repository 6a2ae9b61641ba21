"""`coalition sweep` and `coalition sweep-worker`: a grid of scenario × seed × policy as jobs on a Redis stream,
run by local worker processes (`--jobs N`, forked from the coordinator) or by workers on other hosts, each run
recorded once in the ledger."""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import secrets
import sys
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from coalition.bootstrap import (
    BusChoice,
    LedgerLocation,
    describe_ledger,
    key_store,
    ledger_location,
    open_bus,
)
from coalition.bus.errors import BusError, KeyStoreError
from coalition.bus.keys import RUNNER, KeyDirectory
from coalition.cli.common import JsonFlag, LedgerPath, fail, open_ledger, redis_url_option, settings
from coalition.cli.terminal import TerminalConsole
from coalition.ledger.errors import LedgerError
from coalition.ledger.private_files import PRIVATE_MODE

if TYPE_CHECKING:
    from multiprocessing.context import ForkContext

    from coalition.bus.sweep_messages import SweepJob, SweepResult

QueueOption = Annotated[
    str | None,
    typer.Option(
        "--queue",
        help="Name of the job queue (a Redis namespace). Default: a new one for this sweep.",
        show_default=False,
    ),
]
BusOption = Annotated[
    str | None,
    typer.Option("--bus", help="redis:// or unix:// URL of the Redis that holds the queue. Default: REDIS_URL, else a "
                 "private redis-server for this sweep.", show_default=False),
]  # fmt: skip
ReclaimOption = Annotated[
    float,
    typer.Option(
        "--reclaim-after",
        min=0.5,
        help="Seconds a job may stay with a silent worker before another worker takes it over (and resumes its run).",
    ),
]
MAX_RESTARTS_PER_WORKER = 5


def parse_seeds(text: str) -> list[int]:
    """'7', '1,2,5' or '1-40' (or a mix: '1-3,9') as a list of seeds, in order, each once."""
    seeds: list[int] = []
    for raw in text.split(","):
        part = raw.strip()
        low, dash, high = part.partition("-")
        try:
            values = range(int(low), int(high) + 1) if dash else range(int(part), int(part) + 1)
        except ValueError:
            raise ValueError(f"--seeds: {part!r} is not a seed or a range like 1-40") from None
        if not values or values.start < 0:
            raise ValueError(f"--seeds: {part!r} is empty or negative")
        if len(values) > 100_000:
            raise ValueError(f"--seeds: {part!r} has more than 100000 seeds")
        seeds.extend(values)
    return list(dict.fromkeys(seeds))


def _plan(scenario_refs: list[str], seeds: str | None, policy_paths: list[Path] | None) -> list[SweepJob]:
    from coalition.governance.errors import PolicyError
    from coalition.governance.policy import load_policy
    from coalition.scenarios.errors import ScenarioError
    from coalition.scenarios.spec import load_scenario
    from coalition.scenarios.sweep import plan

    try:
        seed_list = parse_seeds(seeds) if seeds is not None else None
        scenarios = [load_scenario(ref) for ref in scenario_refs]
        policies = [load_policy(path) for path in policy_paths or []]
    except (ValueError, ScenarioError, PolicyError) as exc:
        fail(str(exc))
    return plan(scenarios, seed_list, policies or None)


class LocalWorkers:
    """`--jobs N` worker processes on this host, forked from the coordinator once it has imported what a run needs
    (coalition.scenarios.sweep.preload), so each starts with the stack loaded instead of importing it again; one
    that dies before the sweep ends is replaced (forked again). A forked worker shares nothing open with the
    coordinator: it opens its own Redis connection and its own ledger, as `coalition sweep-worker` does."""

    def __init__(self, count: int, *, queue: str, env: dict[str, str], log_dir: Path, reclaim_after: float) -> None:
        self.queue = queue
        self.env = env
        self.log_dir = log_dir
        self.reclaim_after = reclaim_after
        self.processes: dict[str, BaseProcess] = {}
        self.restarts = 0
        self.max_restarts = MAX_RESTARTS_PER_WORKER * max(count, 1)
        if count:
            log_dir.mkdir(parents=True, exist_ok=True)
            gc.freeze()  # what is loaded now is shared with the workers: no collection in them touches (copies) it
        for index in range(count):
            self._start(f"{queue}-w{index}")

    def _start(self, name: str) -> None:
        refuse_open_ledger(self.env.get("COALITION_LEDGER", ""))
        context = fork_context()
        process = context.Process(
            target=_forked_worker,
            args=(self.queue, name, self.reclaim_after, self.env, self.log_dir / f"{name}.log"),
            name=name,
            daemon=True,  # never outlives the coordinator
        )
        process.start()
        self.processes[name] = process

    def check(self) -> None:
        """Replace a worker that died (killed, crashed); one that drained the queue and exited 0 stays gone."""
        for name, process in list(self.processes.items()):
            code = process.exitcode
            if code is None or code == 0:
                continue
            if self.restarts >= self.max_restarts:
                raise RuntimeError(
                    f"local sweep workers died {self.restarts} times (last: {name}, exit {code}); see {self.log_dir}"
                )
            self.restarts += 1
            self._start(name)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.exitcode is None:
                process.terminate()
        for process in self.processes.values():
            process.join(timeout=10)
            if process.exitcode is None:
                process.kill()
                process.join()


def refuse_open_ledger(ledger: str) -> None:
    """RuntimeError when this process holds the SQLite ledger file `ledger` open: SQLite keeps its POSIX locks per
    process, so a worker forked from a holder would believe it holds locks it does not, and a later open of the
    file by anyone could drop the worker's write-ahead log under it (commits lost). Checked through /proc where
    there is one."""
    fds = Path("/proc/self/fd")
    if not ledger or "://" in ledger or not fds.is_dir():
        return
    target = Path(ledger).resolve()
    files = {str(target), f"{target}-wal", f"{target}-shm"}
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) in files:
                raise RuntimeError(f"the sweep's coordinator holds the ledger {ledger} open: close it before forking")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)


def fork_context() -> ForkContext:
    """multiprocessing's fork context; a platform without fork has no local workers (one line, exit 2)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        fail("local sweep workers need fork(), which this platform lacks: run coalition sweep-worker processes and "
             "give --jobs 0")  # fmt: skip
    return multiprocessing.get_context("fork")


def _forked_worker(queue: str, name: str, reclaim_after: float, env: dict[str, str], log_path: Path) -> None:
    """A local worker's process, just forked from the coordinator: its output goes to its own log (new file
    objects, not the coordinator's), the environment says which Redis and ledger, then it works as
    `coalition sweep-worker --drain` does. Exits with the status that command would have."""
    descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_MODE)  # the runs' log lines
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115  (the process's own)
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    os.environ.update(env)
    try:
        work(queue, name, url=env["REDIS_URL"], drain=True, reclaim_after=reclaim_after, ledger_path=None)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)


def _result_row(result: SweepResult) -> dict[str, Any]:
    return result.model_dump(mode="json")


def _print_table(console: Console, results: list[SweepResult], *, seconds: float, ledger: str) -> None:
    table = Table(title=f"sweep: {len(results)} runs in {seconds:.1f} s (ledger: {ledger})", title_justify="left")
    for column in ("run id", "seed", "policy", "status", "entries", "expectations", "s", "worker", "note"):
        table.add_column(column, justify="right" if column in ("seed", "entries", "s") else "left")
    for r in results:
        note = "already recorded" if r.reused else ("resumed" if r.resumed else "")
        if r.attempt > 1:
            note = f"{note} attempt {r.attempt}".strip()
        if r.error:
            note = r.error
        style = "green" if r.status == "completed" else "red"
        table.add_row(
            r.job_id,
            str(r.seed),
            r.policy_version[:12],
            f"[{style}]{r.status}[/]",
            str(r.entries),
            f"{r.expectations_held}/{r.expectations_total}",
            f"{r.seconds:.2f}",
            r.worker,
            note,
        )
    console.print(table)


def sweep(
    scenario_refs: Annotated[list[str], typer.Argument(help="Scenarios: library names or YAML files.")],
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Seeds: 7, 1,2,5 or 1-40. Default: each scenario's own seed.")
    ] = None,
    policy_paths: Annotated[
        list[Path] | None,
        typer.Option("--policy", help="A policy file (repeat for several). Default: each scenario's own policy."),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=0, max=256, help="Local worker processes (0: workers on other hosts).")
    ] = 2,
    queue: QueueOption = None,
    bus: BusOption = None,
    reclaim_after: ReclaimOption = 60.0,
    ledger_path: LedgerPath = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a grid of scenario × seed × policy as jobs on a Redis stream; print a progress bar, then one row per run.

    A job's id is the hash of (scenario, seed, policy) and is its run id: a job taken over from a dead worker
    resumes its run, and a run already in the ledger is not run again. Runs are narrated by the offline model.
    Exit 1 if a run failed.

    Example: coalition sweep my-scenario other-scenario --seeds 1-20 --jobs 2
    """
    cfg = settings()
    planned = _plan(scenario_refs, seeds, policy_paths)
    try:
        choice = BusChoice.parse(bus, cfg)
    except ValueError as exc:
        fail(str(exc))
    if choice.kind == "memory":
        fail("a sweep needs Redis (its workers are other processes): use --bus redis://… or leave --bus unset")
    location = ledger_location(ledger_path, cfg)
    ledger = open_ledger(ledger_path, create=True)  # created here, once, before any worker opens it
    ledger_name = ledger.path
    ledger.close()  # and closed: no ledger connection may be open here when the workers are forked (LocalWorkers)
    queue = queue or f"sweep-{secrets.token_hex(4)}"
    if ":" in queue or not queue.strip():
        fail(f"--queue must be a non-empty name without ':', not {queue!r}")
    console = TerminalConsole(stderr=as_json, highlight=False)
    if not console.is_terminal:
        console = TerminalConsole(stderr=as_json, highlight=False, width=max(console.width, 180))
    if jobs:  # local workers are forked from this process: the run's libraries are loaded with the command's own
        from coalition.scenarios.sweep import load_machinery

        load_machinery()
    started = time.perf_counter()
    try:
        results = run_sweep(planned, choice, queue, location, jobs, reclaim_after, cfg.data_dir, console, quiet=as_json)
    except BusError as exc:
        fail(str(exc))
    except RuntimeError as exc:
        fail(str(exc))
    seconds = time.perf_counter() - started
    ordered = sorted(results, key=lambda r: r.job_id)
    if as_json:
        doc = {
            "queue": queue,
            "ledger": describe_ledger(location),
            "jobs": len(planned),
            "local_workers": jobs,
            "seconds": round(seconds, 3),
            "failed": sum(r.status != "completed" for r in ordered),
            "results": [_result_row(r) for r in ordered],
        }
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_table(console, ordered, seconds=seconds, ledger=ledger_name)
    if any(r.status != "completed" for r in ordered):
        raise typer.Exit(1)


def run_sweep(
    planned: list[SweepJob],
    choice: BusChoice,
    queue: str,
    location: LedgerLocation,
    jobs: int,
    reclaim_after: float,
    data_dir: Path,
    console: Console,
    *,
    quiet: bool,
) -> list[SweepResult]:
    """Publish the jobs, run `jobs` local workers (replacing any that dies), show progress, return one result per
    job. Shared by `sweep` and `consistency --jobs`."""
    from coalition.bus.redis_streams import RedisStreamsBus
    from coalition.scenarios.sweep import Collector, preload, publish_jobs

    if jobs:
        fork_context()  # before anything is published: no local workers on this platform is one line, exit 2
        preload(planned)  # once, here: the workers forked below share it
    store = key_store(data_dir)
    try:  # signs the jobs; created (0600) on first use, as a run creates its keys
        store.init([RUNNER])
        key = store.private(RUNNER)
    except (KeyStoreError, OSError) as exc:
        fail(f"the sweep signs its jobs with the runner key: {exc}")
    with open_bus(choice, namespace=queue, data_dir=data_dir) as queue_bus:
        assert isinstance(queue_bus, RedisStreamsBus)
        publish_jobs(queue_bus, planned, queue=queue, key=key)
        collector = Collector.for_jobs(queue_bus, planned)
        env = {"REDIS_URL": choice.url or queue_bus.url, "COALITION_LEDGER": str(location)}
        workers = LocalWorkers(
            jobs, queue=queue, env=env, log_dir=data_dir / "sweeps" / queue, reclaim_after=reclaim_after
        )
        if jobs == 0:
            console.print(f"waiting for workers: coalition sweep-worker --queue {queue} (same REDIS_URL and ledger)")
        try:
            with Progress(
                TextColumn("[bold]sweep"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(),
                console=console,
                disable=quiet,
            ) as progress:
                task = progress.add_task("runs", total=len(planned), status="")
                failed = 0
                while not collector.finished:
                    for result in collector.poll(block_ms=500):
                        failed += result.status != "completed"
                        progress.update(task, advance=1, status=f"[red]{failed} failed[/]" if failed else "")
                    workers.check()
        except KeyboardInterrupt:
            workers.stop()
            console.print(
                f"\ninterrupted; the runs recorded so far stay recorded: run the same sweep again (--queue {queue})"
            )
            raise typer.Exit(130) from None
        finally:
            workers.stop()
    return _held_to_ledger(list(collector.results.values()), location)


def _held_to_ledger(results: list[SweepResult], location: LedgerLocation) -> list[SweepResult]:
    """The results, each "completed" checked against the ledger (scenarios.sweep.held_to_ledger)."""
    from coalition.bootstrap import open_ledger
    from coalition.scenarios.sweep import held_to_ledger

    if isinstance(location, Path) and not location.exists():
        return held_to_ledger(results, None)
    try:
        with open_ledger(location, create=False, read_only=True) as ledger:
            return held_to_ledger(results, ledger)
    except LedgerError as exc:
        fail(f"cannot check the sweep's results against the ledger: {exc}")


def sweep_worker(
    queue: Annotated[str, typer.Option("--queue", help="The queue to take jobs from (printed by coalition sweep).")],
    name: Annotated[
        str | None, typer.Option("--name", help="This worker's name (default: host and process id).")
    ] = None,
    drain: Annotated[
        bool, typer.Option("--drain", help="Exit once the queue holds no job and none is pending anywhere.")
    ] = False,
    bus: BusOption = None,
    reclaim_after: ReclaimOption = 60.0,
    ledger_path: LedgerPath = None,
) -> None:
    """Take sweep jobs from a queue, run each into the ledger, report the result; on any host with the same Redis
    and ledger (COALITION_LEDGER=postgresql://… for several hosts) and the coordinator's keys/runner.pub in its
    data directory (jobs not signed with it are refused). Stop with Ctrl-C.

    Example: coalition sweep-worker --queue sweep-1a2b3c4d --bus redis://10.0.0.5:6379/0
    """
    import socket

    _, url = redis_url_option(bus, settings(), "a sweep worker needs the queue's Redis: --bus redis://… or REDIS_URL")
    work(
        queue,
        name or f"{socket.gethostname()}-{os.getpid()}",
        url=url,
        drain=drain,
        reclaim_after=reclaim_after,
        ledger_path=ledger_path,
    )


def work(queue: str, name: str, *, url: str, drain: bool, reclaim_after: float, ledger_path: Path | None) -> None:
    """A sweep worker's life, in `coalition sweep-worker` and in each local worker: its own ledger and Redis
    connection, then jobs until stopped (or, with `drain`, until the queue is empty and nothing is pending)."""
    from coalition.bus.redis_streams import RedisStreamsBus
    from coalition.logs import configure_logging
    from coalition.scenarios.sweep import SweepWorker, job_verifier

    cfg = settings()
    configure_logging(cfg.log_level, cfg.log_format)
    try:  # only the public half: a worker never signs a job
        trusted = KeyDirectory({RUNNER: key_store(cfg.data_dir).public(RUNNER)})
    except KeyStoreError as exc:
        fail(f"{exc} (a sweep worker verifies jobs with the coordinator's public keys: copy keys/{RUNNER}.pub of "
             "the coordinator's data directory to this host's)")  # fmt: skip
    ledger = open_ledger(ledger_path)
    try:
        # named, so CLIENT LIST on the Redis shows which connection is which worker's (one each)
        queue_bus = RedisStreamsBus(url, namespace=queue, client_name=re.sub(r"[^\w.:-]", "_", f"sweep-worker:{name}"))
    except (BusError, ValueError) as exc:
        fail(str(exc))
    try:
        worker = SweepWorker(
            queue_bus,
            ledger,
            name=name,
            verifier=job_verifier(trusted, queue),
            reclaim_after_ms=int(reclaim_after * 1000),
        )
        worker.run(drain=drain)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (BusError, LedgerError) as exc:
        fail(str(exc))
    finally:
        queue_bus.close()
        ledger.close()
