"""`coalition run` of a pack whose agents are fixed pipelines does not import LangGraph; COALITION_AGENT_GRAPH=langgraph
runs them as LangGraph graphs and records the same run; a bad value is one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def coalition(
    cwd: Path, *argv: str, graph: str | None = None, imports: bool = False
) -> subprocess.CompletedProcess[str]:
    """`python -m coalition ARGV` in `cwd` with COALITION_AGENT_GRAPH=`graph` (unset: None); `imports` lists every
    module it imports on stderr (-X importtime)."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS", "COALITION_AGENT_GRAPH"}}
    if graph is not None:
        env["COALITION_AGENT_GRAPH"] = graph
    python = [sys.executable, "-X", "importtime"] if imports else [sys.executable]
    return subprocess.run(
        [*python, "-m", "coalition", *argv], capture_output=True, text=True, timeout=300, env=env, cwd=cwd, check=False
    )


def run(tmp_path: Path, name: str, graph: str | None) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`coalition run helios-launch` into NAME.db and the modules it imported."""
    argv = ("run", "helios-launch", "--bus", "memory", "--ledger", str(tmp_path / f"{name}.db"), "--run-id", "r")
    done = coalition(tmp_path, *argv, graph=graph, imports=True)
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, imported


def langgraph_modules(imported: set[str]) -> set[str]:
    return {m for m in imported if m.split(".")[0] in {"langgraph", "langgraph_sdk"}}


def digest(tmp_path: Path, name: str) -> str:
    done = coalition(tmp_path, "ledger", "digest", "--ledger", str(tmp_path / f"{name}.db"), "--run", "r")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split()[-1]


class TestAgentGraphSetting:
    """The straight step loads no LangGraph; the LangGraph step does, and both record the same run."""

    def test_a_run_imports_langgraph_only_when_asked_to(self, tmp_path: Path) -> None:
        straight, imported = run(tmp_path, "straight", None)
        assert straight.returncode == 0, straight.stderr[-2000:]
        assert "coalition.agents.workflow" in imported  # the probe sees the run's imports
        assert langgraph_modules(imported) == set()
        graph, imported = run(tmp_path, "langgraph", "langgraph")
        assert graph.returncode == 0, graph.stderr[-2000:]
        assert "langgraph.graph.state" in langgraph_modules(imported)
        assert digest(tmp_path, "straight") == digest(tmp_path, "langgraph")

    def test_a_bad_value_is_one_line_and_exit_2(self, tmp_path: Path) -> None:
        done = coalition(tmp_path, "run", "helios-launch", "--bus", "memory", graph="pregel")
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("error: bad setting COALITION_AGENT_GRAPH: "), lines[0]  # the variable set
        assert "'straight' or 'langgraph'" in lines[0]

    def test_an_empty_value_is_the_default(self, tmp_path: Path) -> None:
        """COALITION_AGENT_GRAPH= (set, empty) runs straight, in the CLI as in coalition.agents.pipeline."""
        done, imported = run(tmp_path, "empty", "")
        assert done.returncode == 0, done.stderr[-2000:]
        assert langgraph_modules(imported) == set()

    def test_a_value_in_dot_env_reaches_the_agents(self, tmp_path: Path) -> None:
        (tmp_path / ".env").write_text("COALITION_AGENT_GRAPH=langgraph\n", encoding="utf-8")
        done, imported = run(tmp_path, "dotenv", None)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "langgraph.graph.state" in langgraph_modules(imported)
