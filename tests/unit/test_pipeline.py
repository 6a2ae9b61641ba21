"""A fixed pipeline run straight gives what LangGraph gives for the same nodes over a TypedDict without reducers:
the same values, the same ignored keys, the same isolation of each node's dict, the same errors."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from coalition.agents.pipeline import GRAPH_VARIABLE, LANGGRAPH, STRAIGHT, GraphChoiceError, Pipeline, graph_choice

pytestmark = pytest.mark.unit


class State(TypedDict):
    seen: list[str]
    count: int
    note: str | None


class Boom(RuntimeError):
    pass


def first(state: State) -> dict[str, Any]:
    return {"seen": [*state["seen"], "first"], "count": state["count"] + 1, "undeclared": "dropped"}


def nothing(state: State) -> None:
    return None


def meddle(state: State) -> dict[str, Any]:
    state["count"] = 1000  # a node's own dict: changing it is no update
    return {}


def second(state: State) -> dict[str, Any]:
    return {"seen": [*state["seen"], f"second saw {state['count']}"], "note": None}


def fail(state: State) -> dict[str, Any]:
    raise Boom(f"failed after {state['seen']}")


def not_a_dict(state: State) -> Any:
    return ["seen", "count"]


def pipeline(*nodes: Any) -> Pipeline[State]:
    return Pipeline(State, tuple((node.__name__, node) for node in nodes))


BOTH = pytest.mark.parametrize("choice", [STRAIGHT, LANGGRAPH])


class TestSameAsLangGraph:
    """Each behaviour holds for the straight run and for the compiled graph alike."""

    @BOTH
    def test_updates_replace_values_and_undeclared_keys_are_ignored(self, choice: str) -> None:
        run = pipeline(first, nothing, meddle, second).runner(choice)
        out = run({"seen": [], "count": 1, "note": "kept until replaced", "extra": 1})  # type: ignore[typeddict-unknown-key]
        assert out == {"seen": ["first", "second saw 2"], "count": 2, "note": None}

    @BOTH
    def test_the_input_is_not_changed(self, choice: str) -> None:
        given: State = {"seen": [], "count": 1, "note": "n"}
        pipeline(first, second).runner(choice)(given)
        assert given == {"seen": [], "count": 1, "note": "n"}

    @BOTH
    def test_a_node_error_propagates_as_it_is_with_a_note_naming_the_node(self, choice: str) -> None:
        with pytest.raises(Boom) as caught:
            pipeline(first, fail, second).runner(choice)({"seen": [], "count": 0, "note": None})
        assert str(caught.value) == "failed after ['first']"
        assert any("'fail'" in note for note in caught.value.__notes__)

    @BOTH
    def test_a_node_that_returns_no_dict_is_an_error(self, choice: str) -> None:
        with pytest.raises(Exception, match=r"not_a_dict|Expected dict"):
            pipeline(first, not_a_dict).runner(choice)({"seen": [], "count": 0, "note": None})

    @BOTH
    def test_a_node_raising_stop_iteration_is_a_runtime_error(self, choice: str) -> None:
        """Not a StopIteration leaking out of the step (a caller iterating would take it for the end)."""

        def stops(state: State) -> dict[str, Any]:
            raise StopIteration

        with pytest.raises(RuntimeError):
            pipeline(first, stops).runner(choice)({"seen": [], "count": 0, "note": None})

    @BOTH
    def test_a_missing_input_key_fails_in_the_node_that_reads_it(self, choice: str) -> None:
        with pytest.raises(KeyError, match="count"):
            pipeline(first).runner(choice)({"seen": [], "note": None})  # type: ignore[typeddict-item]


class TestGraphChoice:
    """COALITION_AGENT_GRAPH picks the runner; anything else is one line naming it."""

    def test_straight_unless_langgraph_is_asked_for(self) -> None:
        assert graph_choice({}) == STRAIGHT
        assert graph_choice({GRAPH_VARIABLE: ""}) == STRAIGHT
        assert graph_choice({GRAPH_VARIABLE: "langgraph"}) == LANGGRAPH

    def test_the_runner_follows_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        steps = pipeline(first)
        monkeypatch.delenv(GRAPH_VARIABLE, raising=False)
        assert steps.runner() == steps.straight
        monkeypatch.setenv(GRAPH_VARIABLE, LANGGRAPH)
        assert steps.runner() == steps.graph.invoke

    def test_an_unknown_choice_is_one_line(self) -> None:
        with pytest.raises(GraphChoiceError) as caught:
            graph_choice({GRAPH_VARIABLE: "pregel"})
        assert str(caught.value) == "COALITION_AGENT_GRAPH: 'pregel' is not one of straight, langgraph"

    def test_the_setting_offers_exactly_these_choices(self) -> None:
        from typing import get_args

        from coalition.agents.pipeline import GRAPH_CHOICES
        from coalition.settings import Settings

        assert get_args(Settings.model_fields["agent_graph"].annotation) == GRAPH_CHOICES
