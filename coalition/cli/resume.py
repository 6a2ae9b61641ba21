"""The command that continues an interrupted run, complete enough to be run exactly as printed."""

from __future__ import annotations

import shlex
from pathlib import Path

from coalition.bootstrap import BusChoice, without_credentials

DEFAULT_APPROVAL_WAIT = 600.0


def resume_command(
    run_id: str,
    *,
    ledger_path: str | Path,
    bus: BusChoice,
    bus_option: str | None = None,
    interactive: bool,
    approval_wait: float = DEFAULT_APPROVAL_WAIT,
    data_dir: str | Path | None = None,
) -> str:
    """`coalition run --resume …` with the run's ledger (absolute, so it works from any directory), its bus and
    whether a human is in the loop: resumed as printed, nothing silently changes. A Redis URL is printed only when
    `--bus` named it (one from REDIS_URL comes from the environment again), and never with its password. The data
    directory (absolute) leads the command as `COALITION_DATA_DIR=…`: the ledger's signing key, the witness and
    the embedded Redis live there, so a resume from another directory must find the same ones."""
    args = ["coalition", "run", "--resume", "--run-id", run_id, "--ledger", str(Path(ledger_path).resolve())]
    if bus.kind == "memory":
        args += ["--bus", "memory"]
    elif bus.url is not None and bus_option is not None and bus_option not in ("redis", "memory"):
        args += ["--bus", without_credentials(bus.url)]
    else:
        args += ["--bus", "redis"]
    if interactive:
        args.append("--interactive")
        if approval_wait != DEFAULT_APPROVAL_WAIT:
            args += ["--approval-wait", f"{approval_wait:g}"]
    command = shlex.join(args)
    if data_dir is not None:
        command = f"COALITION_DATA_DIR={shlex.quote(str(Path(data_dir).resolve()))} {command}"
    return command
