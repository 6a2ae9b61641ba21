"""`coalition worker`: serve some agents for the runs a coordinator (`coalition run --agent-workers`) announces; and
the local workers `--agent-workers N` starts for one run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from coalition.bootstrap import key_store
from coalition.bus.errors import BusError, KeyStoreError
from coalition.bus.keys import KeyDirectory, producer_identities
from coalition.cli.common import fail, redis_url_option, settings
from coalition.domain import catalog
from coalition.ledger.private_files import create_private
from coalition.logs import configure_logging

WorkersOption = Annotated[
    str | None,
    typer.Option(
        "--agent-workers",
        help="Run the agents in worker processes (needs --bus redis): N starts N local workers and splits the "
        "agents over them; 'external' waits for `coalition worker` processes (any host, same Redis).",
        show_default=False,
    ),
]
DeadlineOption = Annotated[
    float,
    typer.Option(
        "--agent-deadline",
        min=0.5,
        help="With --agent-workers: seconds a superstep may wait for an agent's report before the run fails.",
    ),
]


def parse_workers(value: str | None) -> int | None:
    """--agent-workers: None (in process), 0 (external workers) or the number of local workers to start."""
    if value is None:
        return None
    if value == "external":
        return 0
    if value.isdecimal() and 1 <= int(value) <= 64:
        return int(value)
    raise ValueError(f"--agent-workers must be a number of local workers (1-64) or 'external', not {value!r}")


def split_agents(agents: list[str], count: int) -> list[list[str]]:
    """`agents` dealt round-robin over `count` workers (never more workers than agents)."""
    count = max(1, min(count, len(agents)))
    return [agents[i::count] for i in range(count)]


def worker_command(agents: list[str], *, name: str, run_id: str, bus: str | None = None) -> list[str]:
    """The command line of a `coalition worker` serving `agents` for one run (on REDIS_URL unless `bus`)."""
    where = ["--bus", bus] if bus is not None else []
    command = ["worker", "--agents", ",".join(agents), "--name", name, "--run", run_id, *where]
    return [sys.executable, "-m", "coalition", *command]


class LocalAgentWorkers:
    """The `--agent-workers N` processes of one run, on this host; stopped when the run ends."""

    def __init__(self, agents: list[str], count: int, *, url: str, run_id: str, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen[bytes]] = []
        env = {**os.environ, "REDIS_URL": url}
        for index, share in enumerate(split_agents(agents, count)):
            name = f"{run_id}-w{index}"
            create_private(log_dir / f"{name}.log")  # the agents' log lines: owner-only, as the ledger
            with (log_dir / f"{name}.log").open("ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        worker_command(share, name=name, run_id=run_id),
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                    )
                )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker(
    agents: Annotated[str, typer.Option("--agents", help="The agents this worker serves, comma-separated.")],
    bus: Annotated[
        str | None,
        typer.Option("--bus", help="The coordinator's Redis: a redis:// / redis+cluster:// URL (default: REDIS_URL)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="This worker's name (default: host-pid).")] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Serve only this run id (default: every run announced).")
    ] = None,
) -> None:
    """Serve agents for the runs a coordinator announces (coalition run … --agent-workers external), on any host
    with the same Redis and the run's keys directory; beats a heartbeat that coalition doctor lists. Stop with
    Ctrl-C.

    Example: coalition worker --agents finance,ops --bus redis://10.0.0.5:6379/0
    """
    from coalition.cli.run_cmd import model_plan
    from coalition.scenarios.agent_workers import AgentWorker

    cfg = settings()
    configure_logging(cfg.log_level, cfg.log_format)
    choice, url = redis_url_option(
        bus,
        cfg,
        "coalition worker needs the coordinator's Redis: --bus redis://… (or REDIS_URL); not an in-process bus",
    )
    served = sorted({a.strip() for a in agents.split(",") if a.strip()})
    known = catalog().agent_names
    unknown = [a for a in served if a not in known]
    if not served or unknown:
        fail(f"--agents: unknown agent {', '.join(unknown) or '(none given)'}; known: {', '.join(sorted(known))}")
    store = key_store(cfg.data_dir)
    try:  # never created here: a key made on this host would not be the one the coordinator trusts
        keyring = store.keyring([f"agent:{a}" for a in served])
        directory = KeyDirectory({i: store.public(i) for i in producer_identities(known)})
    except KeyStoreError as exc:
        fail(f"{exc} (a worker signs with the run's keys: copy the keys directory of the coordinator's host)")
    plan = model_plan(cfg, None)
    worker_name = name or f"{socket.gethostname()}-{os.getpid()}"
    agent_worker = AgentWorker(
        url,
        name=worker_name,
        agents=served,
        keyring=keyring,
        directory=directory,
        access=plan.access,
        prices=plan.prices,
        only_run=run,
    )
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    typer.echo(f"worker {worker_name}: serving {', '.join(served)} (Redis {choice.describe()})", err=True)
    try:
        agent_worker.run(should_stop=lambda: stopping)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except BusError as exc:
        fail(str(exc))
