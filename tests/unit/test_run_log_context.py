"""A run's log lines carry its own run id and superstep, never another run's: a sweep worker runs one run after
another in one process, and its second run's first lines used to carry the first run's last superstep."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import orjson
import pytest
import structlog

from coalition.bus.memory import MemoryBus
from coalition.ledger.memory import MemoryLedger
from coalition.logs import configure_logging
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.consistency import offline_options
from coalition.scenarios.spec import load_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "packs" / "helios" / "scenarios"


@pytest.fixture
def json_logs() -> Iterator[None]:
    configure_logging("info", "json")  # lines go to the stderr of the moment: capsys's
    try:
        yield
    finally:
        configure_logging("warning", "console")  # what the test session configured (tests/conftest.py)
        structlog.contextvars.clear_contextvars()


def _run(tmp_path: Path, run_id: str) -> None:
    text = (LIBRARY / "poisoned-feed.yaml").read_text(encoding="utf-8").replace("\ndays: 8\n", "\ndays: 3\n")
    path = tmp_path / f"{run_id}.yaml"
    path.write_text(text, encoding="utf-8")
    scenario = load_scenario(path)
    with closing(MemoryBus.for_run(run_id)) as bus, MemoryLedger() as ledger:
        assemble_run(scenario, bus=bus, ledger=ledger, run_id=run_id, seed=1, options=offline_options()).run()


@pytest.mark.usefixtures("json_logs")
def test_two_runs_in_one_process_log_each_its_own_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path, "first-run")
    assert structlog.contextvars.get_contextvars() == {}, "the run left its context bound"
    _run(tmp_path, "second-run")
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    starts = [line for line in lines if line["event"] == "run.start"]
    assert [line["run_id"] for line in starts] == ["first-run", "second-run"]
    assert all("superstep" not in line for line in starts), starts
    second = lines[lines.index(starts[1]) :]
    assert all(line.get("run_id") == "second-run" for line in second), second[:3]
    assert structlog.contextvars.get_contextvars() == {}
