"""Every kind an agent's `react` compares against is declared in its REACTS_TO, so no step with work is skipped."""

from __future__ import annotations

import ast
import inspect

import pytest

from coalition.agents.registry import agent_types

AGENT_TYPES = agent_types()

pytestmark = pytest.mark.unit


def _compared_kinds(module_source: str) -> set[str]:
    """String literals compared with `<x>.kind` (==, !=, in) anywhere in the agent's module."""
    kinds: set[str] = set()
    for node in ast.walk(ast.parse(module_source)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        if not any(isinstance(side, ast.Attribute) and side.attr == "kind" for side in sides):
            continue
        for side in sides:
            for const in ast.walk(side):
                if isinstance(const, ast.Constant) and isinstance(const.value, str):
                    kinds.add(const.value)
    return kinds


@pytest.mark.parametrize("name", sorted(AGENT_TYPES))
def test_every_kind_react_looks_at_is_declared(name: str) -> None:
    agent_type = AGENT_TYPES[name]
    compared = _compared_kinds(inspect.getsource(inspect.getmodule(agent_type)))  # type: ignore[arg-type]
    assert compared, "the scan found no kind comparisons: it would prove nothing"
    assert compared <= agent_type.REACTS_TO
