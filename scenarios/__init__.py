"""Scenarios: the simulated Helios business, the executor that changes it, the scenario file format, scripted
board decisions and the expectations a run is checked against."""

from coalition.scenarios.board import Board, PendingEscalation
from coalition.scenarios.errors import ExecutionRefused, RunnerError, ScenarioError, ScenariosError, WorldError
from coalition.scenarios.events import event_observation, make_observation, open_day, snapshot_observation
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
from coalition.scenarios.world import World, WorldSpec, WorldState, cents, money_json

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
    "World",
    "WorldError",
    "WorldSpec",
    "WorldState",
    "cents",
    "check_expectations",
    "event_observation",
    "list_library",
    "load_scenario",
    "make_observation",
    "money_json",
    "observation_kinds",
    "open_day",
    "parse_scenario",
    "scenario_hash",
    "snapshot_observation",
    "validate_args",
]
