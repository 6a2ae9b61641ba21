"""Scenarios: the run loop over a pack's world, the executor that changes it, the scenario file format, scripted
board decisions and the expectations a run is checked against."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coalition.lazy_exports import lazy_package

if TYPE_CHECKING:  # the names below load on first use, so importing one submodule loads only that one
    from coalition.scenarios.board import Board, PendingEscalation
    from coalition.scenarios.errors import ExecutionRefused, RunnerError, ScenarioError, ScenariosError, WorldError
    from coalition.scenarios.events import event_observation, make_observation
    from coalition.scenarios.executor import Executor, validate_args
    from coalition.scenarios.expectations import ExpectationResult, check_expectations
    from coalition.scenarios.spec import (
        BoardDecision,
        Expectation,
        Scenario,
        ScheduledEvent,
        list_library,
        load_scenario,
        observation_kinds,
        parse_scenario,
        scenario_hash,
    )

_LAZY: dict[str, str] = {
    "Board": "coalition.scenarios.board",
    "BoardDecision": "coalition.scenarios.spec",
    "ExecutionRefused": "coalition.scenarios.errors",
    "Executor": "coalition.scenarios.executor",
    "Expectation": "coalition.scenarios.spec",
    "ExpectationResult": "coalition.scenarios.expectations",
    "PendingEscalation": "coalition.scenarios.board",
    "RunnerError": "coalition.scenarios.errors",
    "Scenario": "coalition.scenarios.spec",
    "ScenarioError": "coalition.scenarios.errors",
    "ScenariosError": "coalition.scenarios.errors",
    "ScheduledEvent": "coalition.scenarios.spec",
    "WorldError": "coalition.scenarios.errors",
    "check_expectations": "coalition.scenarios.expectations",
    "event_observation": "coalition.scenarios.events",
    "list_library": "coalition.scenarios.spec",
    "load_scenario": "coalition.scenarios.spec",
    "make_observation": "coalition.scenarios.events",
    "observation_kinds": "coalition.scenarios.spec",
    "parse_scenario": "coalition.scenarios.spec",
    "scenario_hash": "coalition.scenarios.spec",
    "validate_args": "coalition.scenarios.executor",
}
lazy_package(__name__, _LAZY)

__all__ = [
    "Board",
    "BoardDecision",
    "ExecutionRefused",
    "Executor",
    "Expectation",
    "ExpectationResult",
    "PendingEscalation",
    "RunnerError",
    "Scenario",
    "ScenarioError",
    "ScenariosError",
    "ScheduledEvent",
    "WorldError",
    "check_expectations",
    "event_observation",
    "list_library",
    "load_scenario",
    "make_observation",
    "observation_kinds",
    "parse_scenario",
    "scenario_hash",
    "validate_args",
]
