"""The console script pauses the garbage collector while a command's modules load, then freezes what they created
and resumes it; code that imports coalition.cli (tests, an embedding application) keeps its collector untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_a_run_freezes_what_it_built_before_its_first_day(tmp_path: Path) -> None:
    """A run loads packs, agents and schemas after its command's modules: they are frozen too before the first day,
    so the day's collections do not scan them again and again."""
    lines = _probe(
        "import gc, sys\n"
        "from coalition import console\n"
        "import coalition.cli.lazy as lazy\n"
        "seen = {}\n"
        "real_done = lazy.imports_done\n"
        "def done():\n"
        "    real_done()\n"
        "    seen['loaded'] = gc.get_freeze_count()\n"
        "lazy.imports_done = done\n"
        "from coalition.scenarios.runner import Runner\n"
        "real_run = Runner.run\n"
        "def run(self):\n"
        "    seen['first_day'] = gc.get_freeze_count()\n"
        "    seen['enabled'] = gc.isenabled()\n"
        "    return real_run(self)\n"
        "Runner.run = run\n"
        f"sys.argv = ['coalition', 'run', 'helios-launch', '--bus', 'memory', '--ledger', {str(tmp_path / 'l.db')!r}]\n"
        "try:\n"
        "    console.main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print(f\"RESULT {seen['enabled']} {seen['first_day'] - seen['loaded'] > 1_000}\")\n"
    )
    assert lines[-1] == "RESULT True True"


def test_setup_done_leaves_an_embedding_applications_collector_alone() -> None:
    lines = _probe(
        "import gc\n"
        "from coalition import console\n"
        "console.setup_done()\n"
        "print(f'RESULT {gc.isenabled()} {gc.get_freeze_count()}')\n"
    )
    assert lines[-1] == "RESULT True 0"
