"""The CLI loads a command's module only when that command runs; what `--help` lists never drifts from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coalition.bus.memory import MemoryBus
from coalition.cli import app
from coalition.cli.lazy import COMMANDS, LazyCommand, load
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.spec import load_scenario

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
        """`coalition --help` lists every command without importing LangChain, the agents, the console, or even the
        composition root, the settings, the ledger, the bus and pydantic (coalition.cli.common defers them)."""
        probe = (
            "import sys\n"
            "from typer.testing import CliRunner\n"
            "from coalition.cli import app\n"
            "result = CliRunner().invoke(app, ['--help'])\n"
            "assert result.exit_code == 0, result.output\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'langchain', 'langchain_core', 'langgraph',"
            " 'fastapi', 'argon2', 'plotly', 'pydantic'} or m.startswith(('coalition.agents', 'coalition.cli.',"
            " 'coalition.web', 'coalition.bootstrap', 'coalition.settings', 'coalition.ledger', 'coalition.bus'))"
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


# What a quick command must not load while it runs: the model libraries, the graphs, the agents, the console, and
# CEL's interactive shell (`import cel` pulls prompt_toolkit; coalition.domain.cel_language loads the engine alone).
# The installed packs are loaded to check the run's policy; their declarations name three plain-data modules of
# coalition.agents (payload shapes, money rounding, facts), which import no model library and no graph.
_AGENT_DATA = frozenset({"coalition.agents.payloads", "coalition.agents.money", "coalition.agents.facts"})
_HEAVY_LIBRARIES = frozenset(
    {"langchain", "langchain_core", "langgraph", "langsmith", "fastapi", "argon2", "prompt_toolkit", "plotly"}
)
_HEAVY_PARTS = (
    "coalition.agents.",
    "coalition.web",
    "coalition.packs.helios.agents",
    "coalition.packs.billing_desk.agents",
)

# Nor, since issue 16, structlog: importing it loads its development renderer, and with it rich's traceback
# machinery and pygments (a tenth of a second), for commands that log nothing. `ledger list` reads entries only:
# it loads no pack, no governance, no CEL and no YAML either.
_NO_LOGGING = ("structlog", "rich.traceback", "pygments")
# Nor PyYAML: `approvals list` reads the run's policy as its ledger recorded it (JSON), never a YAML file, and
# coalition.bus.documents loads PyYAML on the first document it parses, not at import.
_NO_YAML = ("yaml", "_yaml")
# Nor the data models of the packs' observations (WorldDecl tables LoadedOnUse): only a scenario or a world reads
# them, and validating a run's policy loads every installed pack.
_NO_WORLD_MODELS = (
    "coalition.packs.helios.payloads",
    "coalition.packs.helios.observation_models",
    "coalition.packs.helios.scenario_checks",
    "coalition.packs.billing_desk.engines",
)
_LEDGER_LIST_ONLY = ("coalition.packs", "coalition.governance", "coalition.domain.catalog", "cel", "yaml")


def _heavy(modules: list[str]) -> list[str]:
    return [
        m
        for m in modules
        if m.split(".")[0] in _HEAVY_LIBRARIES
        or m in {"cel", "cel.cli"}
        or (m.startswith(_HEAVY_PARTS) and m not in _AGENT_DATA)
    ]


def _under(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are one of `packages` or inside one."""
    return [m for m in modules if m in packages or m.startswith(tuple(p + "." for p in packages))]


def _run_in_fresh_process(argv: list[str], ledger: Path) -> tuple[str, list[str]]:
    """What `coalition ARGV --ledger LEDGER` printed, and every module loaded when it finished (a new interpreter)."""
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from coalition.cli import app\n"
        f"result = CliRunner().invoke(app, {[*argv, '--ledger', str(ledger)]!r}, terminal_width=200)\n"
        "assert result.exit_code == 0, result.output\n"
        "print(result.output)\n"
        "print('MODULES=' + ','.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    output, _, modules = out.stdout.rpartition("MODULES=")
    return output, modules.strip().split(",")


@pytest.fixture(scope="module")
def chaos_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recorded chaos-week run (escalations left pending) in a SQLite ledger of this module."""
    path = tmp_path_factory.mktemp("quick") / "ledger.db"
    with SqliteLedger(path, create=True) as ledger:
        assemble_run(
            load_scenario("chaos-week"), bus=MemoryBus(namespace="quick"), ledger=ledger, run_id="quick-1"
        ).run()
    return path


class TestQuickCommandsWhileRunning:
    """The commands a person types while a run waits on them load only what they use: checked on the modules a
    whole `approvals list` / `ledger list` process has loaded when it finishes, not only on importing the module."""

    @pytest.mark.parametrize(
        ("argv", "shows"),
        [(["approvals", "list"], "run quick-1"), (["ledger", "list", "--limit", "5"], "quick-1")],
        ids=["approvals-list", "ledger-list"],
    )
    def test_runs_without_models_graphs_agents_or_cel_shell(
        self, chaos_ledger: Path, argv: list[str], shows: str
    ) -> None:
        output, modules = _run_in_fresh_process(argv, chaos_ledger)
        assert shows in output.lower()  # the command did its work: the check below is about a real run
        assert _heavy(modules) == []

    @pytest.mark.parametrize(
        ("argv", "forbidden"),
        [
            (["approvals", "list"], _NO_LOGGING + _NO_YAML + _NO_WORLD_MODELS),
            (["ledger", "list", "--limit", "5"], _NO_LOGGING + _LEDGER_LIST_ONLY),
        ],
        ids=["approvals-list", "ledger-list"],
    )
    def test_loads_no_log_renderer_and_ledger_list_no_pack(
        self, chaos_ledger: Path, argv: list[str], forbidden: tuple[str, ...]
    ) -> None:
        output, modules = _run_in_fresh_process(argv, chaos_ledger)
        assert "quick-1" in output.lower()
        assert _under(modules, forbidden) == []


class TestReplayVerifyWhileRunning:
    """`replay --verify` takes what the agents said from the ledger and runs no agent: its whole process loads no
    model library, no graph and no agent (importing them was a third of the command's time)."""

    # besides the agents' plain data: which model each agent was given (read from the run record) and its errors
    _CHOICES = frozenset({"coalition.agents.model_choice", "coalition.agents.errors"})

    def test_verify_runs_without_models_graphs_or_agents(self, chaos_ledger: Path) -> None:
        output, modules = _run_in_fresh_process(["replay", "quick-1", "--verify"], chaos_ledger)
        assert output.startswith("IDENTICAL")  # the command did its work: the check below is about a real verify
        assert [m for m in _heavy(modules) if m not in self._CHOICES] == []
