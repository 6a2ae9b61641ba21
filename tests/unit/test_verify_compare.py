"""replay --verify compares each recorded body with its re-derived one on every field but position, without
building both sides' content fields first: the recorded body, given the re-derived one's position, encodes to the
bytes the re-derived one was sealed as. Anything it does not find equal is compared field by field as before."""

from __future__ import annotations

from typing import Any

import pytest

from coalition.bus.canonical import canonical_json
from coalition.scenarios.replay_verify import _same_content

pytestmark = pytest.mark.unit

BODY: dict[str, Any] = {
    "seq": 7,
    "wall_time": "2026-01-01T00:00:00Z",
    "prev_hash": "a" * 64,
    "run_id": "orig",
    "kind": "verdict",
    "outcome": "allow",
    "payload": {"agent": "pricing", "args": {"price": 71.4}},
}


def same(recorded: dict[str, Any], derived: dict[str, Any]) -> bool:
    """_same_content of a recorded body and a re-derived one sealed as a ledger seals it (canonical JSON)."""
    return _same_content(recorded, derived, canonical_json(derived))


def test_bodies_that_differ_only_in_position_are_the_same_content() -> None:
    derived = {**BODY, "seq": 3, "wall_time": "2026-12-06T17:00:00Z", "prev_hash": "b" * 64, "run_id": "verify-of"}
    assert same(BODY, derived)


@pytest.mark.parametrize(
    "derived",
    [
        {**BODY, "outcome": "deny"},
        {**BODY, "payload": {"agent": "pricing", "args": {"price": 71.41}}},
        {**BODY, "gate": "market_entry"},  # a field the recorded body lacks
        {k: v for k, v in BODY.items() if k != "outcome"},  # a field the re-derived body lacks
        {**BODY, "payload": {"agent": "pricing", "args": {"price": 71.4, "approved": 0}}},
    ],
)
def test_any_other_difference_is_not(derived: dict[str, Any]) -> None:
    assert not same(BODY, derived)


def test_a_recorded_body_short_of_a_position_field_does_not_hide_an_extra_field() -> None:
    recorded = {k: v for k, v in BODY.items() if k != "wall_time"}
    assert not same(recorded, {**BODY, "gate": "market_entry"})


@pytest.mark.parametrize(("recorded", "derived"), [(False, 0), (0, False), (1, 1.0), (True, 1), ([0], [False])])
def test_values_equal_in_python_but_not_as_json_differ(recorded: Any, derived: Any) -> None:
    """An edit of a recorded `false` into `0` (or `1` into `1.0`) is a difference, though Python holds them equal."""
    assert not same({**BODY, "approvals_required": recorded}, {**BODY, "approvals_required": derived})


def test_a_recorded_body_in_another_key_order_is_the_same_content() -> None:
    """The recorded side is encoded canonically too: a body whose keys an editor reordered (nothing else) agrees."""
    reordered = dict(reversed(list({**BODY, "payload": {"args": {"price": 71.4}, "agent": "pricing"}}.items())))
    assert same(reordered, BODY)
