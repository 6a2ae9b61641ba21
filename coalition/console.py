"""The `coalition` console script: the CLI, started with Python's cyclic garbage collector out of the way.

A command imports a few thousand modules' worth of objects (LangChain, LangGraph, pydantic schemas) that live as
long as the process. While they load, the collector keeps re-scanning the growing heap for cycles that are not
there; once they are loaded, every full collection of the run scans them again. So the collector is paused while
the command's modules load, and what they created is then frozen (`gc.freeze`: moved to a generation no collection
visits) before it resumes. Measured on a 90-day library scenario run: about a quarter of the process's CPU time.

Only the console script does this (`coalition …`, `python -m coalition`); code that imports `coalition.cli`
(tests, an embedding application) keeps its collector as it is.
"""

from __future__ import annotations

import gc


class _Collector:
    paused = False  # set by main() when it paused the collector; cleared when imports_done() resumes it


def main() -> None:
    """Entry point of the `coalition` script."""
    if gc.isenabled():
        gc.disable()
        _Collector.paused = True
    from coalition.cli import main as run_cli  # imported here: with the collector paused

    run_cli()  # coalition.cli.lazy calls imports_done() once the command's module is loaded


def imports_done() -> None:
    """The command's modules are loaded: freeze what they created and resume the collector (once; only if
    `main` paused it)."""
    if _Collector.paused:
        _Collector.paused = False
        gc.freeze()
        gc.enable()
