"""The CLI loads a command's module only when that command runs; what `--help` lists never drifts from it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from coalition.cli import app
from coalition.cli.lazy import COMMANDS, LazyCommand, load

pytestmark = pytest.mark.unit


def _first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n")[0].split())


class TestLazyCommands:
    """Each listed command is the real one under the listed name, with the listed one-line help."""

    @pytest.mark.parametrize("entry", COMMANDS, ids=lambda e: e.name)
    def test_listed_help_is_the_commands_own(self, entry: LazyCommand) -> None:
        command = load(entry)
        assert command.name == entry.name
        assert _first_paragraph(command.help or "") == " ".join(entry.help.split())

    def test_top_level_help_imports_no_command_module(self) -> None:
        """`coalition --help` lists every command without importing LangChain, the agents or the console."""
        probe = (
            "import sys\n"
            "from typer.testing import CliRunner\n"
            "from coalition.cli import app\n"
            "result = CliRunner().invoke(app, ['--help'])\n"
            "assert result.exit_code == 0, result.output\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'langchain', 'langchain_core', 'langgraph',"
            " 'fastapi', 'argon2', 'plotly'} or m.startswith(('coalition.agents', 'coalition.cli.', 'coalition.web'))"
            " and m not in {'coalition.cli.lazy', 'coalition.cli.common'})\n"
            "print(','.join(heavy))\n"
        )
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == ""

    @pytest.mark.parametrize("module", ["coalition.cli.ledger_cmd", "coalition.cli.approvals_cmd"])
    def test_quick_commands_import_no_agents_or_scenarios(self, module: str) -> None:
        """`ledger list` and `approvals list` start without LangChain, LangGraph, the agents or the scenarios (the
        scenarios package pulls in every agent graph: a second's import on a loaded machine)."""
        probe = (
            "import sys, importlib\n"
            f"importlib.import_module({module!r})\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'langchain', 'langchain_core', 'langgraph',"
            " 'langsmith', 'fastapi', 'argon2'} or m.startswith(('coalition.agents', 'coalition.scenarios',"
            " 'coalition.web')))\n"
            "print(','.join(heavy))\n"
        )
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == ""

    def test_every_listed_command_appears_in_help_and_runs_its_own_help(self) -> None:
        listing = CliRunner().invoke(app, ["--help"], terminal_width=200)
        assert listing.exit_code == 0
        for entry in COMMANDS:
            assert entry.name in listing.output
        sub = CliRunner().invoke(app, ["ledger", "--help"])
        assert sub.exit_code == 0
        assert "verify" in sub.output

    def test_a_typo_is_one_line_with_a_suggestion(self) -> None:
        result = CliRunner().invoke(app, ["ledgr"])
        assert result.exit_code == 2
        assert "Did you mean 'ledger'" in result.output
