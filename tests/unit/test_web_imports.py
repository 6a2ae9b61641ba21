"""The web package has no import cycle: app.py composes the console and imports the routes; nothing in
coalition.web imports app.py back (ConsoleState lives in coalition/web/state.py, path_segment in urls.py).

Imports inside functions and under TYPE_CHECKING count too: a cycle hidden in a function is still a cycle."""

from __future__ import annotations

from collections.abc import Mapping, Set

import grimp
import pytest

pytestmark = pytest.mark.unit


def cycles(imports: Mapping[str, Set[str]]) -> list[list[str]]:
    """Every module that takes part in a cycle, as one cycle per strongly connected group (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(imports.get(module, ())):
            if target not in imports:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1 or module in imports.get(module, ()):
                found.append(sorted(group))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return sorted(found)


def web_imports() -> dict[str, set[str]]:
    graph = grimp.build_graph("coalition")
    web = {m for m in graph.modules if m == "coalition.web" or m.startswith("coalition.web.")}
    return {m: set(graph.find_modules_directly_imported_by(m)) & web for m in web}


def test_the_web_package_has_no_import_cycle() -> None:
    imports = web_imports()
    assert "coalition.web.routes_runs" in imports  # the graph is the real package
    assert cycles(imports) == []


def test_no_web_module_imports_the_composition() -> None:
    importers = sorted(m for m, targets in web_imports().items() if "coalition.web.app" in targets)
    assert importers == []


def test_the_cycle_finder_finds_one() -> None:
    # the shape this test guards against: app imports the routes, a route imports app for ConsoleState
    imports = {"app": {"routes", "state"}, "routes": {"app", "pages"}, "pages": {"state"}, "state": set()}
    assert cycles(imports) == [["app", "routes"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
