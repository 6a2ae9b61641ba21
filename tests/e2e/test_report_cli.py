"""The issue-4 commands end to end through the real CLI: help with an example, reports, audit, replay, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
            (("consistency", "no-such-scenario"), "no such scenario"),
            (("scenario", "new", "Bad Name"), "must be a slug"),
        ],
    )
    def test_bad_input_is_one_line_exit_2(self, run_dir: Path, args: tuple[str, ...], message: str) -> None:
        """One line on stderr, exit 2, no traceback."""
        done = cli(*args, cwd=run_dir)
        assert done.returncode == 2
        assert message in done.stderr
        assert "Traceback" not in done.stderr

    def test_scenario_new_runs(self, tmp_path: Path) -> None:
        """The scaffolded file is a valid scenario whose expectations hold."""
        assert cli("scenario", "new", "my-first", cwd=tmp_path).returncode == 0
        done = cli("run", "my-first.yaml", "--bus", "memory", cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
