"""Runs the console started: each in a background thread with the Runner, its DayProgress kept for the live page."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from coalition.bootstrap import BusChoice, LedgerLocation, build_run, open_ledger
from coalition.governance.errors import PolicyError
from coalition.scenarios.errors import ScenarioError, ScenariosError
from coalition.scenarios.runner import DayProgress, RunnerOptions
from coalition.scenarios.spec import list_library, load_scenario
from coalition.web.errors import Refused

log = structlog.get_logger("coalition.web")


@dataclass
class LiveRun:
    """One console-started run: its latest progress, and how it ended (status or error)."""

    run_id: str
    scenario: str
    interactive: bool
    progress: DayProgress | None = None
    status: str = "running"
    error: str | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        """Whether its thread still runs (a "running" status with a dead thread means it died unreported)."""
        return self.thread is not None and self.thread.is_alive()


class LiveRuns:
    """Starts runs on the in-memory bus against the console's ledger file; thread-safe progress lookups."""

    def __init__(self, ledger_path: LedgerLocation, on_finished: Callable[[str], None] | None = None) -> None:
        self._ledger_path = ledger_path
        self.on_finished = on_finished  # e.g. build the run page's figures once, as soon as the run ends
        self._runs: dict[str, LiveRun] = {}
        self._lock = threading.Lock()

    def get(self, run_id: str) -> LiveRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def running(self) -> list[LiveRun]:
        with self._lock:
            return [r for r in self._runs.values() if r.status == "running" and r.alive]

    def start(self, scenario_ref: str, *, interactive: bool, approval_wait_seconds: float = 600.0) -> LiveRun:
        if scenario_ref not in list_library():  # the console runs library scenarios only, never arbitrary paths
            raise Refused(400, f"no scenario {scenario_ref!r} in the library ({', '.join(list_library())})")
        try:
            scenario = load_scenario(scenario_ref)
            policy = scenario.load_policy()
        except (ScenarioError, ScenariosError, PolicyError) as exc:
            raise Refused(400, str(exc)) from None
        run_id = f"{scenario.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        live = LiveRun(run_id, scenario.name, interactive)

        def on_day(progress: DayProgress) -> None:
            live.progress = progress

        def target() -> None:
            try:
                options = RunnerOptions(
                    interactive=interactive,
                    approval_wait_seconds=approval_wait_seconds,
                    on_day=on_day,
                    settings={"started_from": "web"},
                )
                with (
                    open_ledger(self._ledger_path) as ledger,
                    build_run(
                        scenario,
                        bus=BusChoice("memory"),
                        namespace=f"web-{run_id}",
                        ledger=ledger,
                        run_id=run_id,
                        policy=policy,
                        options=options,
                    ) as runner,
                ):
                    live.status = runner.run().status
            except Exception as exc:  # a background run must report its failure, not die silently
                log.exception("web.run_failed", run_id=run_id)
                live.status, live.error = "failed", f"{type(exc).__name__}: {exc}"
                return
            if self.on_finished is not None:
                try:
                    self.on_finished(run_id)
                except Exception:  # only a cache warm-up: the page builds it on first view instead
                    log.exception("web.run_view_warmup_failed", run_id=run_id)

        live.thread = threading.Thread(target=target, name=f"run-{run_id}", daemon=True)
        live.thread.start()  # before it is listed, so a listed "running" run always has a started thread
        with self._lock:
            self._runs[run_id] = live
        return live
