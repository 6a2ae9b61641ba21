"""A third-party pack whose entry point cannot be imported, as an operator meets it: every command says so on one
line naming the pack (exit 2) instead of a traceback, nothing is recorded, and `coalition doctor` reports it as a
failed check in its table (exit 1). The pack is a dist-info on PYTHONPATH whose `coalition.packs` entry point names
a module that raises on import: importlib.metadata finds it as it finds an installed one."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
SCENARIO = "price-spike"  # short
PROBLEM = "pack 'brokenpack': entry point brokenpack_mod:pack cannot be loaded (RuntimeError: broken on import)"


def cli(*args: str, data_dir: Path, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS", "COALITION_LEDGER"}}
    env["COALITION_DATA_DIR"] = str(data_dir)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [COALITION, *args], capture_output=True, text=True, timeout=300, env=env, check=False, cwd=data_dir
    )


def runs_in(ledger: Path) -> list[str]:
    with sqlite3.connect(ledger) as db:
        bodies = [json.loads(body) for (body,) in db.execute("SELECT body FROM entries ORDER BY seq")]
    return [b["run_id"] for b in bodies if b.get("message_type") == "run.started"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A ledger with one run recorded while the packs were fine, and a site folder holding the broken pack."""
    data = tmp_path_factory.mktemp("broken-pack")
    done = cli("run", SCENARIO, "--bus", "memory", "--ledger", "l.db", "--run-id", "before", data_dir=data)
    assert done.returncode == 0, done.stderr
    site = tmp_path_factory.mktemp("site")
    info = site / "brokenpack-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenpack\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[coalition.packs]\nbrokenpack = brokenpack_mod:pack\n", encoding="utf-8")
    (site / "brokenpack_mod.py").write_text('raise RuntimeError("broken on import")\n', encoding="utf-8")
    return data, site


class TestBrokenPack:
    @pytest.mark.parametrize(
        "args",
        [
            ("run", SCENARIO, "--bus", "memory", "--ledger", "l.db", "--run-id", "after"),
            ("approvals", "list", "--ledger", "l.db", "--run", "before"),
            ("report", "before", "--ledger", "l.db"),
        ],
        ids=["run", "approvals-list", "report"],
    )
    def test_one_line_naming_the_pack_exit_2(self, setup: tuple[Path, Path], args: tuple[str, ...]) -> None:
        data, site = setup
        done = cli(*args, data_dir=data, site=site)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip() == f"error: {PROBLEM}"
        assert "Traceback" not in done.stdout + done.stderr
        assert runs_in(data / "l.db") == ["before"]  # the run that could not start recorded nothing

    def test_doctor_reports_a_failed_check(self, setup: tuple[Path, Path]) -> None:
        data, site = setup
        done = cli("doctor", "--bus", "memory", "--ledger", "l.db", data_dir=data, site=site)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        row = [line for line in done.stdout.splitlines() if "packs" in line]
        assert row, done.stdout
        assert "FAIL pack 'brokenpack'" in row[0], done.stdout
        assert "ledger" in done.stdout  # the other checks still ran
        assert "bus" in done.stdout
        report = json.loads(cli("doctor", "--bus", "memory", "--json", data_dir=data, site=site).stdout)
        assert report["packs"] == {"ok": False, "detail": PROBLEM}
        assert report["bus"]["ok"] is True

    def test_doctor_without_the_broken_pack_passes_the_check(self, setup: tuple[Path, Path]) -> None:
        data, _ = setup
        done = cli("doctor", "--bus", "memory", "--ledger", "l.db", "--json", data_dir=data)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["packs"]["ok"] is True
