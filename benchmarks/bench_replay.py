"""The two replays against the run they replay (issue 16): the full replay re-executes everything (agents included)
and compares; `replay --verify` re-derives governance and effects from the recorded agent outputs and compares.
Each repetition times a fresh helios-launch run and then both replays of it, in one process, so every ratio is
measured beside its baseline. Times are CPU seconds of this process (time.process_time): all three are
single-threaded and in-process, and CPU time is what a shared, loaded machine distorts least. Each of the three starts
from a collected heap: a full garbage collection walks every object of the process (the imported libraries' most
of all: ~0.1 s here), and without the collection before each call it landed on whichever call crossed the threshold,
often a verify that had allocated little of what it walked."""

from __future__ import annotations

import gc
import time

from benchmarks.harness import Measurement
from coalition.bus.memory import MemoryBus
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.replay import replay
from coalition.scenarios.replay_verify import verify_run
from coalition.scenarios.spec import load_scenario

SECTION = "replay"
RUN = "helios-launch run (in process, memory bus, in-memory ledger)"


def _once() -> tuple[float, float, float]:
    """(run, full replay, replay --verify) seconds; both replays must be IDENTICAL."""
    with SqliteLedger(":memory:") as ledger:
        bus = MemoryBus.for_run("orig")
        gc.collect()
        started = time.process_time()
        assemble_run(load_scenario("helios-launch"), bus=bus, ledger=ledger, run_id="orig").run()
        run = time.process_time() - started
        gc.collect()
        started = time.process_time()
        full = replay(ledger, "orig")
        full_seconds = time.process_time() - started
        gc.collect()
        started = time.process_time()
        verified = verify_run(ledger, "orig")
        verify_seconds = time.process_time() - started
    if not (full.identical and verified.identical):
        raise RuntimeError(f"a replay of an untouched run diverged: {full.divergence} / {verified.line()}")
    return run, full_seconds, verify_seconds


def run(quick: bool) -> list[Measurement]:
    repeats = 3 if quick else 7
    _once()  # warm: imports, compiled graphs and pydantic schemas are not what is compared
    samples = [_once() for _ in range(repeats)]

    def measurement(i: int, name: str, **extra: object) -> Measurement:
        values = [s[i] for s in samples]
        return Measurement(
            SECTION,
            name,
            "s",
            sorted(values)[len(values) // 2],
            min(values),
            max(values),
            repeats,
            False,
            **extra,  # type: ignore[arg-type]
        )

    ratios_full = sorted(s[1] / s[0] for s in samples)
    ratios_verify = sorted(s[2] / s[0] for s in samples)
    mid = len(samples) // 2
    return [
        measurement(0, RUN),
        measurement(
            1,
            "full replay (re-execute, compare)",
            baseline=RUN,
            target="≤ 1.0× the run",
            target_ratio=1.0,
            notes=f"per-repetition ratio to its run: median {ratios_full[mid]:.2f}× "
            f"({ratios_full[0]:.2f}–{ratios_full[-1]:.2f}); whole call, reading and comparing included",
        ),
        measurement(
            2,
            "replay --verify (re-derive governance and effects, compare)",
            baseline=RUN,
            target="≤ 0.3× the run",
            target_ratio=1 / 0.3,
            notes=f"per-repetition ratio to its run: median {ratios_verify[mid]:.2f}× "
            f"({ratios_verify[0]:.2f}–{ratios_verify[-1]:.2f}); whole call, reading and comparing included",
        ),
    ]
