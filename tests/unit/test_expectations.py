"""Expectations: counting and ordering ledger entries, and checking the final world."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from coalition.ledger.entry import GENESIS_HASH, EntryDraft, LedgerEntry, seal
from coalition.packs.helios.world import World
from coalition.scenarios import Expectation, ExpectationResult, check_expectations, load_scenario
from coalition.scenarios.expectations import resolve_path, world_view

pytestmark = pytest.mark.unit

WHEN = datetime(2025, 3, 3, tzinfo=UTC)


def ledger(*drafts: dict[str, Any]) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    prev = GENESIS_HASH
    for seq, fields in enumerate(drafts, start=1):
        draft = EntryDraft(run_id="run-1", sim_time=WHEN, rationale="because", **fields)
        entry = seal(draft, seq=seq, wall_time=WHEN, prev_hash=prev)
        entries.append(entry)
        prev = entry.hash
    return entries


def proposal(pid: str, agent: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
    payload = {"proposal_id": pid, "agent": agent, "action": action, "args": args, "rationale": "r"}
    return {"actor": f"agent:{agent}", "actor_kind": "agent", "kind": "proposal", "subject": pid, "payload": payload}


def verdict(
    pid: str, agent: str, action: str, outcome: str, gate: str | None = None, rules: list[str] | None = None
) -> dict[str, Any]:
    payload = {"proposal_id": pid, "agent": agent, "action": action, "outcome": outcome, "gate": gate}
    return {
        "actor": "governance",
        "actor_kind": "governance",
        "kind": "verdict",
        "subject": pid,
        "payload": payload,
        "outcome": outcome,
        "gate": gate,
        "rule_ids": rules or [],
        "message_type": "verdict.issued",
    }


def resolution(pid: str, outcome: str) -> dict[str, Any]:
    payload = {"proposal_id": pid, "outcome": outcome}
    return {
        "actor": "governance",
        "actor_kind": "governance",
        "kind": "resolution",
        "subject": pid,
        "payload": payload,
        "outcome": outcome,
    }


RUN = ledger(
    proposal("p1", "finance", "enter_market", {"region": "CA", "sequence": 1, "investment_usd": 150000}),
    proposal("p2", "finance", "enter_market", {"region": "CO", "sequence": 2, "investment_usd": 120000}),
    verdict("p1", "finance", "enter_market", "escalate", "market_entry", ["gate.market_entry"]),
    verdict("p2", "finance", "enter_market", "escalate", "market_entry", ["gate.market_entry"]),
    proposal("p3", "marketing", "launch_campaign", {"campaign_id": "c1", "region": "TX"}),
    verdict("p3", "marketing", "launch_campaign", "deny", None, ["limits.claims.banned"]),
    resolution("p1", "approved"),
    resolution("p2", "rejected"),
    proposal("p4", "marketing", "launch_campaign", {"campaign_id": "c1-r1", "region": "TX"}),
    verdict("p4", "marketing", "launch_campaign", "allow"),
)


def expectation(**check: Any) -> Expectation:
    return Expectation.model_validate({"id": "e", "description": "d", **check})


@pytest.fixture(scope="module")
def world() -> World:
    scenario = load_scenario("helios-launch")
    return World.from_spec(scenario.world, scenario.seed, scenario.load_policy().limits.pricing)


def check(final: World, **spec: Any) -> ExpectationResult:
    return check_expectations([expectation(**spec)], RUN, final)[0]


class TestCounts:
    """Entry counts with matches on entry fields, payload, and the proposal's action and args."""

    def test_min_passes(self, world: World) -> None:
        """Two market_entry escalations ≥ 2."""
        result = check(
            world, count={"match": {"kind": "verdict", "gate": "market_entry", "outcome": "escalate"}, "min": 2}
        )
        assert (result.passed, result.observed, result.expected) == (True, 2, "count >= 2")

    def test_equals_fails_with_a_clear_detail(self, world: World) -> None:
        """One denial is not two."""
        result = check(world, count={"match": {"kind": "verdict", "outcome": "deny"}, "equals": 2})
        assert not result.passed
        assert result.detail == "e: FAILED: expected count == 2, observed 1"

    def test_max(self, world: World) -> None:
        """At most zero executions: none happened."""
        assert check(world, count={"match": {"kind": "execution"}, "max": 0}).passed
        assert not check(world, count={"match": {"kind": "proposal"}, "max": 3}).passed

    def test_args_are_found_through_the_proposal(self, world: World) -> None:
        """A resolution carries no args: the matching proposal's args are used."""
        spec = {"match": {"kind": "resolution", "action": "enter_market", "args": {"region": "CA"}}, "equals": 1}
        result = check(world, count=spec)
        assert (result.passed, result.observed) == (True, 1)
        spec["match"]["outcome"] = "rejected"
        assert check(world, count=spec).observed == 0

    def test_numbers_match_by_value(self, world: World) -> None:
        """150000 in a match equals 150000.0 in a payload."""
        spec = {"match": {"kind": "proposal", "args": {"investment_usd": 150000.0}}, "equals": 1}
        assert check(world, count=spec).passed

    def test_agent_matches_actor_or_payload(self, world: World) -> None:
        """Governance's verdicts count for the proposing agent."""
        assert check(world, count={"match": {"kind": "verdict", "agent": "marketing"}, "equals": 2}).passed

    def test_rule_ids_contains(self, world: World) -> None:
        """rule_ids is a containment test."""
        assert check(world, count={"match": {"rule_ids": ["limits.claims.banned"]}, "equals": 1}).passed
        assert check(world, count={"match": {"rule_ids": ["limits.claims.banned", "x"]}, "equals": 0}).passed

    def test_payload_subset_and_message_type(self, world: World) -> None:
        """payload matches as a subset; message_type is an entry field."""
        spec = {"match": {"message_type": "verdict.issued", "payload": {"outcome": "allow"}}, "equals": 1}
        assert check(world, count=spec).passed


class TestOrder:
    """The first A comes before the first B."""

    def test_denial_before_revision(self, world: World) -> None:
        """The denied campaign (6th entry) precedes the allowed revision (10th)."""
        spec = {
            "first": {"kind": "verdict", "action": "launch_campaign", "outcome": "deny"},
            "then": {"kind": "verdict", "action": "launch_campaign", "outcome": "allow"},
        }
        result = check(world, order=spec)
        assert (result.passed, result.observed) == (True, {"first_at": 6, "then_at": 10})

    def test_reversed_order_fails(self, world: World) -> None:
        """The allow does not come before the deny."""
        spec = {
            "first": {"kind": "verdict", "action": "launch_campaign", "outcome": "allow"},
            "then": {"kind": "verdict", "action": "launch_campaign", "outcome": "deny"},
        }
        assert not check(world, order=spec).passed

    def test_missing_side_fails(self, world: World) -> None:
        """Nothing to order: failed, with None observed."""
        spec = {"first": {"kind": "verdict", "outcome": "deny"}, "then": {"kind": "execution"}}
        result = check(world, order=spec)
        assert (result.passed, result.observed) == (False, {"first_at": 6, "then_at": None})


class TestWorld:
    """Dotted paths into the final world, compared exactly."""

    @pytest.mark.parametrize(
        ("path", "op", "value", "passed"),
        [
            ("regions.TX.price", "<=", 250, True),
            ("regions.TX.price", "==", 58, True),
            ("regions.TX.price", ">", 58, False),
            ("regions.TX.status", "in", ["allowed", "restricted"], True),
            ("regions.TX.status", "!=", "allowed", False),
            ("settlement.window", "==", "T+1", True),
            ("regions.*.price", ">=", 48, True),
            ("regions.*.price", ">", 48, False),
            ("kpis.prices_in_band", "==", True, True),
            ("regions.CA.active", "==", False, True),
            ("regions.TX.status", "<=", 3, False),
        ],
    )
    def test_comparisons(self, world: World, path: str, op: str, value: Any, passed: bool) -> None:
        """Money strings compare as decimals; '*' needs every child to pass; wrong types fail, never crash."""
        assert check(world, world={"path": path, "op": op, "value": value}).passed is passed

    def test_missing_path_fails_with_a_reason(self, world: World) -> None:
        """A typo in a path is reported, not silently passed."""
        result = check(world, world={"path": "regions.ZZ.price", "op": "<=", "value": 1})
        assert not result.passed
        assert result.expected == "regions.ZZ.price <= 1 (path not found)"

    def test_wildcard_reports_each_value(self, world: World) -> None:
        """The observed value of a wildcard lists every concrete path."""
        result = check(world, world={"path": "regions.*.active", "op": "==", "value": False})
        assert not result.passed
        assert result.observed["regions.TX.active"] is True
        assert len(result.observed) == 12


def test_results_follow_the_expectation_order(world: World) -> None:
    """One result per expectation, in file order, with id and description."""
    expectations = [
        Expectation.model_validate(
            {"id": "a", "description": "A", "world": {"path": "cash_usd", "op": ">", "value": 0}}
        ),
        Expectation.model_validate({"id": "b", "description": "B", "count": {"match": {"kind": "run"}, "min": 1}}),
    ]
    results = check_expectations(expectations, RUN, world)
    assert [(r.id, r.description, r.passed) for r in results] == [("a", "A", True), ("b", "B", False)]
    assert results[0].observed == str(Decimal("5000000.00"))


def test_world_checks_see_the_fields_they_name_as_the_whole_snapshot_has_them(world: World) -> None:
    """The world dumps only the fields the checks' paths start with (snapshot_of), the same values as snapshot's."""
    whole = world_view(world)
    named = {"regions", "settlement", "kpis", "no_such_field"}
    assert world_view(world, named) == {k: whole[k] for k in named if k in whole}
    assert world_view(world, {"*", "regions"}) == whole  # a path starting with `*` reads every field
    paths = ["regions.TX.price", "settlement.window", "kpis.margin_pct", "regions.*.active", "*.day", "fee_pct"]
    checks = [expectation(world={"path": path, "op": "!=", "value": None}) for path in paths]
    for path, result in zip(paths, check_expectations(checks, RUN, world), strict=True):
        found = resolve_path(whole, path)
        assert found, path
        assert result.observed == (found[0][1] if "*" not in path else dict(found)), path
