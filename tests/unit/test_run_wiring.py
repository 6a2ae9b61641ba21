"""One wiring of a run: `assemble_run` (scenarios/assembly.py) is the only code that constructs a Runner or the
parts it drives, and the commands and the console reach it only through `bootstrap.build_run`."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("bus", "ledger", "domain", "governance", "agents", "scenarios", "coalition", "packs")
EVERYWHERE = (*PRODUCTION, "tests", "benchmarks", "docs")
ASSEMBLY = ("scenarios/assembly.py", "assemble_run")


def _sources(folders: tuple[str, ...]) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _found(node: ast.AST, names: set[str], function: str = "") -> Iterator[tuple[str, int, str]]:
    """(enclosing function, line, name) of each call to one of `names` and each class deriving from one."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        function = node.name
    if isinstance(node, ast.Call) and _name(node.func) in names:
        yield function, node.lineno, str(_name(node.func))
    if isinstance(node, ast.ClassDef):
        yield from ((node.name, node.lineno, f"class({_name(b)})") for b in node.bases if _name(b) in names)
    for child in ast.iter_child_nodes(node):
        yield from _found(child, names, function)


def _uses(folders: tuple[str, ...], names: set[str]) -> list[tuple[str, str, int, str]]:
    """(file, enclosing function, line, name) of every call to one of `names` and every class deriving from one."""
    found: list[tuple[str, str, int, str]] = []
    for path in _sources(folders):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        found.extend((rel, *use) for use in _found(tree, names))
    return found


class TestOneWiring:
    """A second place that wires a run (or a Runner subclass wiring its own) fails here, naming the place."""

    def test_only_assemble_run_constructs_a_runner(self) -> None:
        uses = _uses(EVERYWHERE, {"Runner", "RunParts"})
        assert [(f, fn, name) for f, fn, _, name in uses] == [(*ASSEMBLY, "RunParts"), (*ASSEMBLY, "Runner")]

    def test_only_assemble_run_builds_the_parts_of_a_run(self) -> None:
        parts = {"GovernanceService", "Executor", "Recorder", "SignedBus", "ephemeral"}
        outside = [u for u in _uses(PRODUCTION, parts) if u[0] != ASSEMBLY[0]]
        assert outside == []

    def test_commands_and_console_start_runs_through_build_run(self) -> None:
        callers = {(f, fn) for f, fn, _, _ in _uses(("coalition",), {"assemble_run"})}
        assert callers == {("coalition/bootstrap.py", "build_run")}
        built = {f for f, _, _, _ in _uses(("coalition",), {"build_run"})}
        assert built == {"coalition/cli/run_cmd.py", "coalition/web/live_runs.py"}
