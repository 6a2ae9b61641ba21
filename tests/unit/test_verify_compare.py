"""replay --verify compares each recorded body with its re-derived one on every field but position, without
building both sides' content fields first: the recorded body, given the re-derived one's position, encodes to the
bytes the re-derived one was sealed as. Anything it does not find equal is compared field by field as before."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import patch

import pytest

from coalition.bus.canonical import canonical_json
from coalition.scenarios.replay_verify import _keys_sorted, _same_content

pytestmark = pytest.mark.unit

# as a ledger stores it: keys in canonical (sorted) order at every level
BODY: dict[str, Any] = {
    "kind": "verdict",
    "outcome": "allow",
    "payload": {"agent": "pricing", "args": {"price": 71.4}},
    "prev_hash": "a" * 64,
    "run_id": "orig",
    "seq": 7,
    "wall_time": "2026-01-01T00:00:00Z",
}

Same = Callable[[dict[str, Any], dict[str, Any]], bool]


@pytest.fixture(params=[False, True], ids=["encoded-canonically", "encoded-as-it-comes"])
def presorted(request: pytest.FixtureRequest) -> bool:
    """Every judgement holds both ways the recorded side is encoded: canonically, and in the order its keys come
    (a backend's stored bodies, parsed from canonical bytes)."""
    return bool(request.param)


@pytest.fixture
def same(presorted: bool) -> Same:
    """_same_content of a recorded body and a re-derived one sealed as a ledger seals it (canonical JSON)."""

    def judge(recorded: dict[str, Any], derived: dict[str, Any]) -> bool:
        return _same_content(recorded, derived, canonical_json(derived), presorted=presorted)

    return judge


def test_bodies_that_differ_only_in_position_are_the_same_content(same: Same) -> None:
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
def test_any_other_difference_is_not(derived: dict[str, Any], same: Same) -> None:
    assert not same(BODY, derived)


def test_a_recorded_body_short_of_a_position_field_does_not_hide_an_extra_field(same: Same) -> None:
    recorded = {k: v for k, v in BODY.items() if k != "wall_time"}
    assert not same(recorded, {**BODY, "gate": "market_entry"})


@pytest.mark.parametrize(("recorded", "derived"), [(False, 0), (0, False), (1, 1.0), (True, 1), ([0], [False])])
def test_values_equal_in_python_but_not_as_json_differ(recorded: Any, derived: Any, same: Same) -> None:
    """An edit of a recorded `false` into `0` (or `1` into `1.0`) is a difference, though Python holds them equal."""
    assert not same({**BODY, "approvals_required": recorded}, {**BODY, "approvals_required": derived})


def test_a_recorded_body_in_another_key_order_is_the_same_content(same: Same) -> None:
    """The recorded side is encoded canonically too: a body whose keys an editor reordered (nothing else) agrees."""
    reordered = dict(reversed(list({**BODY, "payload": {"args": {"price": 71.4}, "agent": "pricing"}}.items())))
    assert same(reordered, BODY)


def test_a_stored_body_as_it_comes_is_encoded_once() -> None:
    """Bodies in canonical order, judged the same, are encoded in the order they come: canonical_json (which sorts)
    is not called for them."""
    derived = {**BODY, "seq": 3, "prev_hash": "b" * 64, "run_id": "verify-of"}
    sealed = canonical_json(derived)
    with patch("coalition.scenarios.replay_verify.canonical_json", side_effect=AssertionError("encoded again")):
        assert _same_content(BODY, derived, sealed, presorted=True)


def test_whether_bodies_come_sorted_is_read_from_their_keys() -> None:
    assert _keys_sorted(BODY)
    assert not _keys_sorted(dict(reversed(list(BODY.items()))))
