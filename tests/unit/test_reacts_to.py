"""Every kind an agent's `react` compares against is declared in its REACTS_TO, so no step with work is skipped."""

from __future__ import annotations

import ast
import inspect

import pytest

from coalition.agents.registry import agent_types

AGENT_TYPES = agent_types()

pytestmark = pytest.mark.unit


# What agents name the message they react to; `case.kind` (a dispute's own kind, data inside a message) is not one.
MESSAGE_NAMES = frozenset({"payload", "observation", "message", "envelope", "delivery"})


def _message_kind(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "kind"
        and isinstance(node.value, ast.Name)
        and node.value.id in MESSAGE_NAMES
    )


def _compared_kinds(module_source: str) -> set[str]:
    """String literals compared with a message's `.kind` (==, !=, in) anywhere in the agent's module."""
    kinds: set[str] = set()
    for node in ast.walk(ast.parse(module_source)):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        if not any(_message_kind(side) for side in sides):
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
