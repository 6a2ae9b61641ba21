"""The `coalition` console script: the CLI, started with Python's cyclic garbage collector out of the way.

A command imports a few thousand modules' worth of objects (LangChain, LangGraph, pydantic schemas) that live as
long as the process. While they load, the collector keeps re-scanning the growing heap for cycles that are not
there; once they are loaded, every full collection of the run scans them again. So the collector is paused while
the command's modules load, and what they created is then frozen (`gc.freeze`: moved to a generation no collection
visits) before it resumes. Measured on a 90-day library scenario run: about a quarter of the process's CPU time.

A run goes on loading after that: its scenario, policy, packs and agents (and the modules and pydantic schemas they
load on first use) are built before its first day and kept until it ends. They are frozen too once built
(`setup_done`), so the run's collections scan only what its days create (the default demo: no full collection left;
the collector's time per run, 8 interleaved runs each: median 31 → 22 ms, fastest 22 → 12 ms).

Only the console script does this (`coalition …`, `python -m coalition`); code that imports `coalition.cli`
(tests, an embedding application) keeps its collector as it is.
"""

from __future__ import annotations

import gc


class _Collector:
    paused = False  # set by main() when it paused the collector; cleared when imports_done() resumes it
    managed = False  # set by main() when it paused the collector: this process's collector is the script's to tune


def main() -> None:
    """Entry point of the `coalition` script."""
    if gc.isenabled():
        gc.disable()
        _Collector.paused = True
        _Collector.managed = True
    from coalition.cli import main as run_cli  # imported here: with the collector paused

    run_cli()  # coalition.cli.lazy calls imports_done() once the command's module is loaded


def imports_done() -> None:
    """The command's modules are loaded: freeze what they created and resume the collector (once; only if
    `main` paused it)."""
    if _Collector.paused:
        _Collector.paused = False
        gc.freeze()
        gc.enable()


def setup_done() -> None:
    """A long command built what it keeps until it ends (a run's agents, policy and packs): freeze that as well, so
    that the collections of its days no longer scan it (only when `main` paused the collector)."""
    if _Collector.managed and not _Collector.paused:
        gc.freeze()
