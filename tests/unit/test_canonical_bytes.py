"""Stored bytes must be exactly the canonical JSON of their value: the project's check (bus/canonical.py, what every
ledger's derived-data check runs first) and the audit package's standalone one (ledger/offline_verifier.py, no
Coalition import) accept every value the ledger writes and name a repeated key, which readers take differently."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalition.bus.canonical import canonical_json, canonical_problem
from coalition.ledger import offline_verifier
from coalition.ledger.entry import noncanonical_body_problem

pytestmark = pytest.mark.unit

CHECKS = {"project": canonical_problem, "offline": offline_verifier.canonical_problem}

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_every_canonical_encoding_passes_both_checks(value: Any) -> None:
    """Floats in any spelling orjson picks (1e-7, 0.00003), every character, any nesting: both say canonical."""
    data = canonical_json(value)
    assert canonical_problem(data) is None
    assert offline_verifier.canonical_problem(data) is None


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'{"outcome":"allow","outcome":"deny"}', "the key 'outcome' appears twice in one object"),
        (b'{"a":{"k":1,"k":1},"b":2}', "the key 'k' appears twice in one object"),  # the same value twice still
        (b'{"b":1,"a":2}', "its key order, spacing"),
        (b'{"a": 1}', "its key order, spacing"),
        (b'{"a":"\\u0041"}', "its key order, spacing"),  # an escape the canonical form does not use
        (b'{"a":-0}', "its key order, spacing"),
        (b'{"a":1', "not JSON"),
        (b'{"a":NaN}', "not JSON"),
    ],
)
def test_other_bytes_are_named(check: Any, data: bytes, why: str) -> None:
    problem = check(data)
    assert problem is not None
    assert problem.startswith(why), problem


def test_the_derived_data_verdict_names_the_first_body_that_is_not_canonical() -> None:
    """Over (seq, bytes) in seq order: the first body whose bytes are not its value's canonical JSON, by seq and
    cause, in the derived-data check's words; canonical bodies give None."""
    good = [(seq, canonical_json({"seq": seq, "outcome": "allow"})) for seq in (1, 2)]
    assert noncanonical_body_problem(good) is None
    bad = [*good, (3, b'{"outcome":"allow","outcome":"deny"}'), (4, b'{"a": 1}')]
    assert noncanonical_body_problem(bad) == (
        "derived data: seq 3's stored JSON is not canonical: the key 'outcome' appears twice in one object"
        " (readers disagree on its value)"
    )
