"""`python -m benchmarks.section NAME [--quick]`: run one bench section and print its measurements as JSON lines.

`python -m benchmarks` runs every section this way, each in a fresh interpreter, so that no section inherits
another's heap: the ledger section's million-entry fixture, or a long run's day-by-day state, made every later full
garbage collection walk hundreds of MiB, and that cost landed on whichever timed call crossed the collector's
threshold. Each command a user runs is a fresh process too."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import sys

from benchmarks.harness import Measurement
from coalition.logs import configure_logging


def run_section(section: str, *, quick: bool) -> list[Measurement]:
    configure_logging("warning", "json")  # library code logs through structlog: no debug lines in a measurement
    module = importlib.import_module(f"benchmarks.bench_{section}")
    results: list[Measurement] = module.run(quick=quick)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.section", description=__doc__)
    parser.add_argument("section")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # a section's own lines are progress: stdout carries only the JSON
        measurements = run_section(args.section, quick=args.quick)
    for measurement in measurements:
        print(json.dumps(dataclasses.asdict(measurement)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
