"""Faults of the disk under a run, made real: a tmpfs that fills up, one remounted read-only, a ledger file deleted
while the run writes to it. Each ends with one line naming the fault, the resume command and exit code 3 ("could
not write"); nothing is half-written (the ledger verifies), and the resumed run has the content of a run that
never failed (the same digest)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
EXIT_COULD_NOT_WRITE = 3


def cli(*args: str, cwd: Path, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_") and k != "REDIS_URL"}
    env["COALITION_DATA_DIR"] = str(data_dir or cwd / ".coalition")
    return subprocess.run(
        [COALITION, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False
    )


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    return lines[0]


def redis_servers_on(data_dir: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if "redis" in os.readlink(proc / "exe") and any(
                    os.readlink(fd).startswith(str(data_dir)) for fd in (proc / "fd").iterdir()
                ):
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def digest(ledger: Path, run_id: str, cwd: Path) -> str:
    done = cli("ledger", "digest", "--ledger", str(ledger), "--run", run_id, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split()[-1]


class TestFullDisk:
    """ENOSPC from a real filesystem, in the middle of a run."""

    def test_the_ledger_fills_the_disk_then_the_run_resumes_to_the_same_content(
        self, tmp_path: Path, tmpfs: Callable[[str], Path]
    ) -> None:
        disk = tmpfs("600k")
        ledger = disk / "l.db"
        full = cli("run", "helios-launch", "--bus", "memory", "--ledger", str(ledger), "--run-id", "full", cwd=tmp_path)
        assert full.returncode == EXIT_COULD_NOT_WRITE, full.stderr[-2000:]
        line = one_line(full.stderr)
        assert "disk is full" in line
        assert str(ledger) in line
        assert "coalition run --resume --run-id full" in line
        verify = cli("ledger", "verify", "--ledger", str(ledger), cwd=tmp_path)
        assert verify.returncode == 0, verify.stdout + verify.stderr  # nothing half-written

        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)
        resumed = cli("run", "--resume", "--run-id", "full", "--bus", "memory", "--ledger", str(ledger), cwd=tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        listed = cli("ledger", "list", "--ledger", str(ledger), "--run", "full", "--kind", "execution", "--limit", "0",
                     "--json", cwd=tmp_path)  # fmt: skip
        executions = [e["message_id"] for e in json.loads(listed.stdout)]
        assert executions
        assert len(executions) == len(set(executions)), "an execution was recorded twice"
        # The same content as a run that never failed: this fault lands between two of the scripted board's
        # decisions on day 1 (the first written, the second not); the resume takes both at that same point.
        reference = tmp_path / "reference.db"
        whole = cli("run", "helios-launch", "--bus", "memory", "--ledger", str(reference), "--run-id", "whole",
                    cwd=tmp_path)  # fmt: skip
        assert whole.returncode == 0, whole.stderr[-2000:]
        assert digest(ledger, "full", tmp_path) == digest(reference, "whole", tmp_path)

    def test_a_full_data_directory_with_the_embedded_redis_leaves_no_server(
        self, tmp_path: Path, tmpfs: Callable[[str], Path]
    ) -> None:
        data = tmpfs("400k") / "d"
        done = cli("run", "helios-launch", "--run-id", "full-redis", cwd=tmp_path, data_dir=data)
        assert done.returncode in (EXIT_COULD_NOT_WRITE, 4), done.stderr[-2000:]  # ledger or redis fills it first
        line = one_line(done.stderr)
        assert "coalition run --resume --run-id full-redis" in line
        assert redis_servers_on(data) == []


class TestReadOnlyDataDirectory:
    """A data directory on read-only media: refused before anything runs, exit 3, nothing written."""

    def test_run_on_a_read_only_disk(self, tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
        disk = tmpfs("1m")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        done = cli("run", "helios-launch", "--bus", "memory", cwd=tmp_path, data_dir=disk / "d")
        assert done.returncode == EXIT_COULD_NOT_WRITE, done.stderr[-2000:]
        assert "read-only" in one_line(done.stderr)
        assert list(disk.iterdir()) == []


class TestLostDatabase:
    """The ledger file is deleted while a run is writing to it: refused, not written into a file nobody sees."""

    def test_ledger_deleted_mid_run(self, tmp_path: Path) -> None:
        ledger = tmp_path / "l.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_") and k != "REDIS_URL"}
        env["COALITION_LOG_LEVEL"] = "error"  # the wait expiring is a warning worth logging, not the line under test
        child = subprocess.Popen(
            [COALITION, "run", "helios-launch", "--bus", "memory", "--ledger", str(ledger), "--run-id", "lost",
             "--interactive", "--approval-wait", "4"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not _has_escalation(ledger):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the run never reached an escalation"
            time.sleep(0.1)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{ledger}{suffix}").unlink(missing_ok=True)
        _, stderr = child.communicate(timeout=120)
        assert child.returncode == EXIT_COULD_NOT_WRITE, stderr[-2000:]
        line = one_line(stderr)
        assert "the database file is gone" in line
        assert "coalition run --resume --run-id lost" in line


def _has_escalation(ledger: Path) -> bool:
    if not ledger.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT count(*) FROM entries WHERE kind = 'verdict' AND outcome = 'escalate'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return bool(row[0])
