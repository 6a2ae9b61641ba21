"""Every way a run can stop short of finishing ends the same way: one line saying why, the command that resumes
it, and an exit code that says which kind of stop it was (documented in the README):

    2    bad input (a file, an option, a setting) — nothing ran
    3    could not write: disk full, a read-only data directory, the ledger file lost or unwritable
    4    a service failed mid-run: the bus (Redis) or a model provider
    128+N  stopped by signal N: 130 Ctrl-C (SIGINT), 143 SIGTERM, 129 SIGHUP

A write that failed was rolled back (the ledger appends in transactions), so nothing is half-written and the
resume re-executes deterministically from what the ledger holds.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType

import typer
from rich.console import Console

from coalition.agents.errors import AgentError
from coalition.bus.errors import BusError
from coalition.cli.common import EXIT_COULD_NOT_WRITE, EXIT_SERVICE_FAILED, EXIT_USAGE
from coalition.cli.terminal import clean
from coalition.ledger.errors import LedgerError, LedgerWriteFailed
from coalition.scenarios.errors import ScenariosError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the run is, exactly like Ctrl-C's KeyboardInterrupt (same clean-up path)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP interrupt the run like Ctrl-C (the first one; more while it stops are ignored)."""
    stopping = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise Signalled(signum)

    previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: the caller's own signal handling applies
        pass
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old if old is not None else signal.SIG_DFL)


def _say(console: Console, text: str) -> None:
    with suppress(OSError):  # SIGHUP: the terminal may be gone; the exit code still tells
        console.print(text, soft_wrap=True, highlight=False, markup=False)


def _one_line(text: str, code: int) -> typer.Exit:
    with suppress(OSError):
        typer.echo(f"error: {clean(' '.join(text.split()))}", err=True)
    return typer.Exit(code)


@contextmanager
def stops_cleanly(console: Console, resume: Callable[[], str]) -> Iterator[None]:
    """Turn every stop of a run into one line with `resume()` (the command that continues it) and its exit code."""
    with signals_interrupt():
        try:
            yield
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, Signalled) else int(signal.SIGINT)
            how = signal.Signals(signum).name if isinstance(exc, Signalled) else "Ctrl-C"
            _say(console, f"\ninterrupted ({how}); continue with: {resume()}")
            raise typer.Exit(128 + signum) from None
        except LedgerWriteFailed as exc:
            raise _one_line(f"{exc}; nothing half-written; continue with: {resume()}", EXIT_COULD_NOT_WRITE) from None
        except OSError as exc:  # a file of the run (the data directory, a socket) could not be written
            reason = f"could not write {exc.filename}: {exc.strerror}" if exc.filename else f"could not write: {exc}"
            raise _one_line(f"{reason}; continue with: {resume()}", EXIT_COULD_NOT_WRITE) from None
        except (BusError, AgentError) as exc:
            raise _one_line(f"{exc}; continue with: {resume()}", EXIT_SERVICE_FAILED) from None
        except (ScenariosError, LedgerError) as exc:
            raise _one_line(str(exc), EXIT_USAGE) from None
