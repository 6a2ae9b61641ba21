"""A fixed pipeline of nodes over a TypedDict state, run straight through by default or as a compiled LangGraph graph.

A function agent's step is a straight line (observe → analyze → draft → propose): no branch, no wait, no checkpoint.
LangGraph's per-call machinery (channels, tasks, a callback manager, a config per node) was most of an agent step's
time for nothing it used, so the line runs as a plain loop with the semantics LangGraph gives such a graph: each node
gets a fresh dict of the current values, returns the keys it updates (None: nothing), keys the state does not declare
are ignored and a declared key's new value replaces the old one (no reducers); an error raised by a node propagates
as it is, with a note naming the node (a StopIteration becomes a RuntimeError, as in LangGraph; an update that is not
a dict is a TypeError where LangGraph raises its InvalidUpdateError). `COALITION_AGENT_GRAPH=langgraph` runs the
same nodes as the compiled graph, for LangGraph's tracing and callbacks on every step; both record the same ledger
(tests/integration/test_step_pipeline.py). Agents that branch or wait (agents/graph_agent.py) are LangGraph graphs
and keep it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Generic, TypeVar

from coalition.agents.errors import AgentError

GRAPH_VARIABLE = "COALITION_AGENT_GRAPH"
STRAIGHT = "straight"
LANGGRAPH = "langgraph"
GRAPH_CHOICES = (STRAIGHT, LANGGRAPH)

StateT = TypeVar("StateT", bound=Mapping[str, Any])
Node = Callable[[StateT], Mapping[str, Any] | None]
Runner = Callable[[StateT], StateT]


class GraphChoiceError(AgentError):
    """COALITION_AGENT_GRAPH names no way to run a step."""

    def __init__(self, value: str) -> None:
        super().__init__(f"{GRAPH_VARIABLE}: {value[:40]!r} is not one of {', '.join(GRAPH_CHOICES)}")
        self.value = value


def graph_choice(environ: Mapping[str, str] = os.environ) -> str:
    """How fixed pipelines run in this process: `straight` (unset or empty) or `langgraph`."""
    value = environ.get(GRAPH_VARIABLE, "") or STRAIGHT
    if value not in GRAPH_CHOICES:
        raise GraphChoiceError(value)
    return value


class Pipeline(Generic[StateT]):
    """Named nodes run in order over `schema` (a TypedDict whose keys have no reducers)."""

    def __init__(self, schema: type[StateT], nodes: tuple[tuple[str, Node[StateT]], ...]) -> None:
        self.schema = schema
        self.nodes = nodes
        self._keys = frozenset(schema.__annotations__)

    def runner(self, choice: str | None = None) -> Runner[StateT]:
        """The straight run, or the compiled graph's invoke for `langgraph` (default: the environment's choice)."""
        choice = graph_choice() if choice is None else choice
        if choice == LANGGRAPH:
            return self.graph.invoke  # type: ignore[no-any-return]
        if choice != STRAIGHT:
            raise GraphChoiceError(choice)
        return self.straight

    def straight(self, state: StateT) -> StateT:
        values = {key: value for key, value in state.items() if key in self._keys}
        for name, node in self.nodes:
            try:
                update = node(dict(values))  # type: ignore[arg-type]
            except StopIteration as exc:  # as LangGraph has it: not taken for the end of whatever iterates the step
                raise RuntimeError(f"pipeline node {name!r} raised StopIteration") from exc
            except Exception as exc:
                exc.add_note(f"During task with name {name!r} (a straight pipeline)")
                raise
            if update is None:
                continue
            if not isinstance(update, dict):
                raise TypeError(f"pipeline node {name!r} returned {type(update).__name__}, not a dict of updates")
            values.update((key, value) for key, value in update.items() if key in self._keys)
        return values  # type: ignore[return-value]

    @cached_property
    def graph(self) -> Any:
        """The nodes as a LangGraph StateGraph, compiled once (without a checkpointer); LangGraph loads only here."""
        from langgraph.graph import END, START, StateGraph

        graph: Any = StateGraph(self.schema)  # any TypedDict: LangGraph types its schema more narrowly
        previous = START
        for name, node in self.nodes:
            graph.add_node(name, node)
            graph.add_edge(previous, name)
            previous = name
        graph.add_edge(previous, END)
        return graph.compile()
