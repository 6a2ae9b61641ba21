"""Commands that start at once (issue 16): wall time of a whole `coalition` process against `python -c pass`, and
the peak memory of `coalition --help`. Each command runs in a fresh interpreter, as a user would start it, from
an installed package: its bytecode is written first, as pip does when it installs a wheel (an environment with
PYTHONDONTWRITEBYTECODE set would otherwise compile every module from source in every process)."""

from __future__ import annotations

import compileall
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import coalition
from benchmarks.harness import Measurement, repeat
from coalition.bus.memory import MemoryBus
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.spec import load_scenario

SECTION = "startup"
BASELINE = "python -c pass"
COALITION = [str(Path(sys.executable).with_name("coalition"))]  # the console script a user runs

# Peak resident memory of one child process (ru_maxrss of the only child of a small wrapper), in KiB.
_PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def _seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def _peak_mib(argv: list[str]) -> float:
    out = subprocess.run([sys.executable, "-c", _PEAK, *argv], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def run(quick: bool) -> list[Measurement]:
    repeats = 3 if quick else 9
    compileall.compile_dir(Path(coalition.__file__).parent, quiet=1)  # the installed package's bytecode
    out: list[Measurement] = []
    with tempfile.TemporaryDirectory() as tmp:
        ledger_path = Path(tmp) / "ledger.db"
        with SqliteLedger(ledger_path, create=True) as ledger:
            bus = MemoryBus.for_run("startup")
            assemble_run(load_scenario("chaos-week"), bus=bus, ledger=ledger, run_id="startup").run()
        commands = {
            BASELINE: [sys.executable, "-c", "pass"],
            "coalition --help": [*COALITION, "--help"],
            "coalition approvals list": [*COALITION, "approvals", "list", "--ledger", str(ledger_path)],
            "coalition ledger list": [*COALITION, "ledger", "list", "--ledger", str(ledger_path), "--limit", "20"],
        }
        for name, argv in commands.items():
            med, lo, hi = repeat(lambda argv=argv: _seconds(argv), repeats)  # type: ignore[misc]
            extra: dict[str, object] = {}
            if name != BASELINE:
                extra = {"baseline": BASELINE, "target": "< 0.6 s", "target_absolute": 0.6}
            out.append(Measurement(SECTION, name, "s", med, lo, hi, repeats, False, **extra))  # type: ignore[arg-type]
        peaks = [_peak_mib(commands["coalition --help"]) for _ in range(repeats)]
        out.append(
            Measurement(
                SECTION,
                "coalition --help peak memory",
                "MiB",
                sorted(peaks)[len(peaks) // 2],
                min(peaks),
                max(peaks),
                repeats,
                False,
                target="< 80 MiB",
                target_absolute=80.0,
            )
        )
        fresh = iter(range(repeats))  # a new ledger file per repetition, as the note below says

        def whole_run() -> float:
            ledger = Path(tmp) / f"run-{next(fresh)}.db"
            return _seconds([*COALITION, "run", "helios-launch", "--bus", "memory", "--ledger", str(ledger)])

        med, lo, hi = repeat(whole_run, max(repeats // 3, 2))
        out.append(
            Measurement(
                SECTION,
                "coalition run helios-launch --bus memory (whole process)",
                "s",
                med,
                lo,
                hi,
                max(repeats // 3, 2),
                False,
                target="< 1.5 s",
                target_absolute=1.5,
                notes="a fresh ledger file each time (synchronous=FULL: every recorder commit is an fsync)",
            )
        )
    return out
