"""The console script pauses the garbage collector while a command's modules load, then freezes what they created
and resumes it; code that imports coalition.cli (tests, an embedding application) keeps its collector untouched."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def _probe(body: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()


def test_the_script_resumes_the_collector_once_the_command_is_loaded() -> None:
    """After a command ran, the collector is on again (a long run must not grow without it) and the modules the
    command loaded are frozen out of later collections."""
    lines = _probe(
        "import gc, sys\n"
        "sys.argv = ['coalition', 'pack', 'list']\n"
        "from coalition import console\n"
        "try:\n"
        "    console.main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print(f'RESULT {code or 0} {gc.isenabled()} {gc.get_freeze_count() > 10_000}')\n"
    )
    assert any(line.startswith("helios") or "helios" in line for line in lines)  # the command really ran
    assert lines[-1] == "RESULT 0 True True"


def test_the_collector_is_paused_only_while_the_script_starts() -> None:
    """Between the script's start and the command's load the collector is off: that is the whole point."""
    lines = _probe(
        "import gc\n"
        "from coalition import console\n"
        "import coalition.cli.lazy as lazy\n"
        "seen = []\n"
        "real = lazy.load\n"
        "lazy.load = lambda entry: (seen.append(gc.isenabled()), real(entry))[1]\n"
        "import sys\n"
        "sys.argv = ['coalition', 'pack', 'list']\n"
        "try:\n"
        "    console.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(f'RESULT {seen} {gc.isenabled()}')\n"
    )
    assert lines[-1] == "RESULT [False] True"


def test_importing_the_cli_leaves_the_collector_alone() -> None:
    lines = _probe(
        "import gc\n"
        "from typer.testing import CliRunner\n"
        "from coalition.cli import app\n"
        "result = CliRunner().invoke(app, ['pack', 'list'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(f'RESULT {gc.isenabled()} {gc.get_freeze_count()}')\n"
    )
    assert lines[-1] == "RESULT True 0"


def test_python_dash_m_coalition_runs_through_the_script() -> None:
    out = subprocess.run([sys.executable, "-m", "coalition", "--help"], capture_output=True, text=True, check=True)
    assert "approvals" in out.stdout
