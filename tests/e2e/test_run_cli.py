"""`coalition run`, `demo` and `doctor` as a user runs them: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from coalition.cli import app
from coalition.cli.lazy import load

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS"}}
    full_env.update(env or {})
    return subprocess.run(
        [COALITION, *args], capture_output=True, text=True, timeout=300, env=full_env, cwd=cwd, check=False
    )


class TestRun:
    """`coalition run` completes helios-launch and reports it; bad input is one line and exit 2."""

    def test_run_on_the_memory_bus_prints_json_and_exits_0(self, tmp_path: Path) -> None:
        ledger = tmp_path / "l.db"
        done = cli("run", "helios-launch", "--bus", "memory", "--ledger", str(ledger), "--run-id", "r1", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["run_id"] == "r1"
        assert all(e["passed"] for e in report["expectations"])
        assert {e["gate"] for e in report["escalations"]} >= {"market_entry", "capital_commitment"}
        verify = cli("ledger", "verify", "--ledger", str(ledger))
        assert verify.returncode == 0, verify.stderr
        digest = cli("ledger", "digest", "--ledger", str(ledger), "--run", "r1")
        assert digest.stdout.strip().endswith(report["digest"])

    def test_a_bad_scenario_file_is_one_line_naming_file_and_path(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text("name: bad\ndescription: x\nseed: 1\nstart: 2025-13-01\ndays: 3\nworld: {}\n", encoding="utf-8")
        done = cli("run", str(bad), "--bus", "memory", "--ledger", str(tmp_path / "l.db"))
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "bad.yaml" in lines[0]
        assert "start" in lines[0]
        assert "Traceback" not in done.stderr

    def test_an_unknown_bus_is_exit_2(self, tmp_path: Path) -> None:
        done = cli("run", "helios-launch", "--bus", "carrier-pigeon", "--ledger", str(tmp_path / "l.db"))
        assert done.returncode == 2
        assert "--bus" in done.stderr

    def test_a_run_id_cannot_be_reused(self, tmp_path: Path) -> None:
        ledger = str(tmp_path / "l.db")
        assert cli("run", "helios-launch", "--bus", "memory", "--ledger", ledger, "--run-id", "x").returncode == 0
        again = cli("run", "helios-launch", "--bus", "memory", "--ledger", ledger, "--run-id", "x")
        assert again.returncode == 2
        assert "already" in again.stderr


class TestStreamsLifetime:
    """A run's streams are deleted when it ends: a shared Redis does not fill up with old runs."""

    def test_a_run_on_a_redis_url_leaves_no_streams(self, tmp_path: Path, redis_url: str) -> None:
        import redis

        done = cli("run", "helios-launch", "--bus", redis_url, "--ledger", str(tmp_path / "l.db"), "--run-id", "gone")
        assert done.returncode == 0, done.stderr
        client = redis.Redis.from_url(redis_url)
        try:
            assert list(client.scan_iter(match="run-gone-*")) == []
        finally:
            client.close()


class TestDemo:
    """`coalition demo` needs no server: it starts a private redis-server and stops it again."""

    def test_demo_runs_on_an_embedded_redis_and_shows_next_steps(self, tmp_path: Path) -> None:
        done = cli("demo", env={"COALITION_DATA_DIR": str(tmp_path / "data")}, cwd=tmp_path)
        assert done.returncode == 0, done.stderr + done.stdout
        assert "embedded" in done.stdout
        assert "Escalations" in done.stdout
        assert "coalition ledger explain" in done.stdout
        assert "coalition run helios-launch --interactive" in done.stdout  # the default pack's demo scenario
        assert (tmp_path / "data" / "ledger.db").exists()
        assert (tmp_path / "data" / "redis" / "appendonly.aof").exists() or (tmp_path / "data" / "redis").is_dir()
        assert not (tmp_path / "data" / "redis" / "redis").exists()
        leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "data")], capture_output=True, check=False)
        assert leftover.stdout == b"", "the embedded redis-server must be stopped when the demo ends"


class TestDoctor:
    """`coalition doctor` reports versions, the LLM choice and reachability."""

    def test_doctor_on_the_memory_bus(self, tmp_path: Path) -> None:
        done = cli("doctor", "--bus", "memory", "--json", env={"COALITION_DATA_DIR": str(tmp_path)})
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["llm"]["choice"] == "offline"
        assert report["bus"]["ok"] is True


def _commands(group: typer.Typer) -> list[list[str]]:
    root = get_command(group)
    paths: list[list[str]] = []

    def walk(cmd: object, prefix: list[str]) -> None:
        sub = getattr(cmd, "commands", None)
        if sub:
            for name, child in sub.items():
                entry = getattr(child, "entry", None)  # a command not loaded yet (coalition.cli.lazy)
                walk(load(entry) if entry is not None else child, [*prefix, name])
        else:
            paths.append(prefix)

    walk(root, [])
    return paths


class TestHelp:
    """Every command documents itself with an example (sqlite-utils' habit)."""

    @pytest.mark.parametrize("path", _commands(app), ids=" ".join)
    def test_every_command_has_help_with_an_example(self, path: list[str]) -> None:
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output


class _Stop(Exception):
    """Raised from the progress callback to cut a run short, as Ctrl-C would."""


class TestResume:
    """`coalition run --resume --run-id X` continues an interrupted run from what its ledger recorded."""

    def test_resume_completes_an_interrupted_run_with_the_same_content(self, tmp_path: Path) -> None:
        from coalition.bus.memory import MemoryBus
        from coalition.ledger.sqlite import SqliteLedger
        from coalition.scenarios.assembly import assemble_run
        from coalition.scenarios.runner import DayProgress, RunnerOptions
        from coalition.scenarios.spec import load_scenario

        def stop(progress: DayProgress) -> None:
            if progress.day == 30:
                raise _Stop

        ledger_path = tmp_path / "l.db"
        with SqliteLedger(ledger_path) as ledger:
            runner = assemble_run(
                load_scenario("helios-launch"),
                bus=MemoryBus(namespace="cut"),
                ledger=ledger,
                run_id="cut",
                options=RunnerOptions(on_day=stop),
            )
            with pytest.raises(_Stop):
                runner.run()
        assert (
            cli("run", "helios-launch", "--bus", "memory", "--ledger", str(ledger_path), "--run-id", "whole").returncode
            == 0
        )
        resumed = cli("run", "--resume", "--run-id", "cut", "--bus", "memory", "--ledger", str(ledger_path), "--json")
        assert resumed.returncode == 0, resumed.stderr
        digest = {
            r: cli("ledger", "digest", "--run", r, "--ledger", str(ledger_path)).stdout.split()[-1]
            for r in ("cut", "whole")
        }
        assert digest["cut"] == digest["whole"]
        again = cli("run", "--resume", "--run-id", "cut", "--bus", "memory", "--ledger", str(ledger_path))
        assert again.returncode == 2
        assert "already completed" in again.stderr

    def test_resume_needs_a_run_id_and_a_scenario_is_needed_otherwise(self, tmp_path: Path) -> None:
        assert "--run-id" in cli("run", "--resume", "--ledger", str(tmp_path / "l.db")).stderr
        missing = cli("run", "--bus", "memory", "--ledger", str(tmp_path / "l.db"))
        assert missing.returncode == 2
        assert "SCENARIO is required" in missing.stderr
