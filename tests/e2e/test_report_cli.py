"""The issue-4 commands end to end through the real CLI: help with an example, reports, audit, replay, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coalition.agents.model_choice import choose_models
from coalition.bus.memory import MemoryBus
from coalition.domain import catalog
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.runner import RunnerOptions
from coalition.scenarios.spec import load_scenario

pytestmark = pytest.mark.e2e
COMMANDS = (["replay"], ["whatif"], ["consistency"], ["report"], ["audit"], ["scenario", "new"], ["scenario", "list"])


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COALITION_DATA_DIR": str(cwd / ".coalition"), "COALITION_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "-m", "coalition", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("cli")
    done = cli("run", "fraud-ring", "--bus", "memory", "--run-id", "fr-1", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return cwd


class TestHelp:
    """Every new command explains itself with an example."""

    @pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
    def test_help_has_example(self, command: list[str], tmp_path: Path) -> None:
        """--help exits 0 and shows an Example: line."""
        done = cli(*command, "--help", cwd=tmp_path)
        assert done.returncode == 0
        assert "Example:" in done.stdout


class TestCommands:
    """Real runs in a temporary data directory."""

    def test_replay_identical(self, run_dir: Path) -> None:
        """Exit 0 and IDENTICAL with the digest."""
        done = cli("replay", "fr-1", cwd=run_dir)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("IDENTICAL")

    def test_report_formats(self, run_dir: Path) -> None:
        """html to a file, md/json/csv to stdout."""
        done = cli("report", "fr-1", "--out", "r.html", cwd=run_dir)
        assert done.returncode == 0
        assert (run_dir / "r.html").stat().st_size > 1_000_000
        for fmt, marker in (("md", "# Run report"), ("json", '"run_id"'), ("csv", "seq,sim_time")):
            out = cli("report", "fr-1", "--format", fmt, cwd=run_dir)
            assert out.returncode == 0
            assert marker in out.stdout

    def test_audit_zip(self, run_dir: Path) -> None:
        """An audit zip for a time range is written and verified."""
        done = cli("audit", "fr-1", "--from", "2025-05-07", "--to", "2025-05-07", "--out", "a.zip", cwd=run_dir)
        assert done.returncode == 0
        assert "verified" in done.stdout
        assert (run_dir / "a.zip").exists()

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("report", "fr-1", "--format", "pdf"), "--format 'pdf'"),
            (("report", "nope"), "no run 'nope'"),
            (("whatif", "fr-1"), "--policy"),
            (("audit", "fr-1", "--from", "yesterday"), "--from 'yesterday'"),
            (("audit", "fr-1", "--from", "2030-01-01"), "no entry of run 'fr-1' falls between 2030-01-01 00:00"),
            (("audit", "fr-1", "--incident", "nope"), "no entry of run 'fr-1' mentions incident 'nope'"),
            (("consistency", "no-such-scenario"), "no such scenario"),
            (("scenario", "new", "Bad Name"), "must be a slug"),
        ],
    )
    def test_bad_input_is_one_line_exit_2(self, run_dir: Path, args: tuple[str, ...], message: str) -> None:
        """One line on stderr, exit 2, no traceback."""
        done = cli(*args, cwd=run_dir)
        assert done.returncode == 2
        assert message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr

    @pytest.mark.parametrize("scope", [("--from", "2020-01-01", "--to", "2020-01-02"), ("--incident", "nope")])
    def test_an_empty_audit_slice_writes_no_package(self, run_dir: Path, scope: tuple[str, ...]) -> None:
        """Exit 2 and neither the directory nor the zip exists afterwards."""
        for out in ("empty-dir", "empty.zip"):
            done = cli("audit", "fr-1", *scope, "--out", out, cwd=run_dir)
            assert done.returncode == 2
            assert not (run_dir / out).exists()

    def test_a_replay_the_recording_cannot_answer_is_one_line_exit_2(self, tmp_path: Path) -> None:
        """A run that claims paid models but recorded no calls: the replay misses; one line, exit 2."""
        claimed = choose_models(per_agent=dict.fromkeys(catalog().agent_names, "openai:gpt-4o-mini"))
        settings = {"models": {agent: c.model_dump(mode="json") for agent, c in claimed.items()}}
        with SqliteLedger(tmp_path / "l.db", create=True) as ledger:
            options = RunnerOptions(models=choose_models(), settings=settings)  # offline, but says otherwise
            assemble_run(
                load_scenario("fraud-ring"), bus=MemoryBus(), ledger=ledger, run_id="claims", options=options
            ).run()
        done = cli("replay", "claims", "--ledger", str(tmp_path / "l.db"), cwd=tmp_path)
        assert done.returncode == 2
        (line,) = done.stderr.strip().splitlines()
        assert "no recorded model answer" in line
        assert "Traceback" not in done.stderr

    def test_scenario_new_runs(self, tmp_path: Path) -> None:
        """The scaffolded file is a valid scenario whose expectations hold."""
        assert cli("scenario", "new", "my-first", cwd=tmp_path).returncode == 0
        done = cli("run", "my-first.yaml", "--bus", "memory", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr

    def test_scenario_new_starts_from_the_named_packs_template(self, tmp_path: Path) -> None:
        """Each pack ships its own template: the desk's is a desk scenario whose expectations hold; an unknown
        pack is one line."""
        assert cli("scenario", "new", "desk-first", "--pack", "billing-desk", cwd=tmp_path).returncode == 0
        text = (tmp_path / "desk-first.yaml").read_text(encoding="utf-8")
        assert "pack: billing-desk" in text
        assert "Helios" not in text
        done = cli("run", "desk-first.yaml", "--bus", "memory", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        unknown = cli("scenario", "new", "x", "--pack", "nope", cwd=tmp_path)
        assert unknown.returncode == 2
        assert unknown.stderr.strip().startswith("error: pack 'nope': is not installed")
        assert not (tmp_path / "x.yaml").exists()
