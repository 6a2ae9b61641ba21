"""Drift's arithmetic: the divergences are right on known cases, bounded, symmetric and zero only for the same
mix; the decision mix per agent and action counts what governance and humans decided."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalition.scenarios.drift import compare, jensen_shannon, total_variation
from coalition.scenarios.whatif import Decision

pytestmark = pytest.mark.unit

counts = st.dictionaries(st.sampled_from("abcdef"), st.integers(min_value=0, max_value=50), max_size=6)


def decision(agent: str, action: str, outcome: str, resolution: str | None = None, **args: object) -> Decision:
    return Decision(f"{agent}-{action}-{len(args)}", agent, action, dict(args), outcome, (), None, resolution)


class TestDivergences:
    def test_known_values(self) -> None:
        """p = (1, 0) against q = (½, ½): m = (¾, ¼), JS = ½·log2(4/3) + ½·(½·log2(2/3) + ½·log2 2)."""
        expected = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
        assert jensen_shannon({"a": 2}, {"a": 1, "b": 1}) == round(expected, 4)
        assert total_variation({"a": 2}, {"a": 1, "b": 1}) == 0.5

    def test_nothing_in_common_is_one(self) -> None:
        assert jensen_shannon({"a": 3}, {"b": 7}) == 1.0
        assert total_variation({"a": 3}, {"b": 7}) == 1.0

    def test_an_empty_side_has_no_mix_to_compare(self) -> None:
        assert jensen_shannon({}, {"a": 1}) is None
        assert total_variation({"a": 1}, {"a": 0}) is None

    @given(counts, counts)
    def test_bounded_and_symmetric(self, left: dict[str, int], right: dict[str, int]) -> None:
        js, tv = jensen_shannon(left, right), total_variation(left, right)
        if not sum(left.values()) or not sum(right.values()):
            assert js is None
            assert tv is None
            return
        assert js is not None
        assert tv is not None
        assert 0.0 <= js <= 1.0
        assert 0.0 <= tv <= 1.0
        assert js == jensen_shannon(right, left)
        assert tv == total_variation(right, left)

    @given(counts, st.integers(min_value=1, max_value=5))
    def test_the_same_mix_at_any_scale_is_zero(self, left: dict[str, int], scale: int) -> None:
        if not sum(left.values()):
            return
        assert jensen_shannon(left, {k: v * scale for k, v in left.items()}) == 0.0
        assert total_variation(left, {k: v * scale for k, v in left.items()}) == 0.0


class TestCompare:
    def test_identical_runs_do_not_drift(self) -> None:
        runs = [decision("ops", "issue_credit", "allow", amount=10), decision("finance", "set_price", "deny", p=1)]
        result = compare("a", runs, "b", list(runs))
        assert (result.overall_js, result.overall_tv, result.decision_js) == (0.0, 0.0, 0.0)
        assert (result.paired, result.only_a, result.only_b, result.decided_otherwise) == (2, 0, 0, [])

    def test_rates_per_agent_and_action_and_what_was_decided_otherwise(self) -> None:
        a = [
            decision("finance", "set_price", "allow", price=70),
            decision("finance", "set_price", "allow", price=80),
            decision("finance", "enter_market", "escalate", "approved", region="TX"),
        ]
        b = [
            decision("finance", "set_price", "allow", price=70),
            decision("finance", "set_price", "deny", price=80),
            decision("finance", "enter_market", "escalate", "rejected", region="TX"),
            decision("finance", "commit_capital", "escalate", amount=1),
        ]
        result = compare("a", a, "b", b)
        rows = {(r.agent, r.action): r for r in result.rows}
        price = rows[("finance", "set_price")]
        assert (price.a.rate("allow"), price.b.rate("allow"), price.b.rate("deny")) == (1.0, 0.5, 0.5)
        assert price.delta("deny") == 0.5
        assert rows[("finance", "commit_capital")].a.proposals == 0
        assert rows[("finance", "commit_capital")].delta("escalate") is None
        assert rows[("finance", "enter_market")].b.resolutions == {"approved": 0, "rejected": 1, "expired": 0}
        assert (result.paired, result.only_a, result.only_b) == (3, 0, 1)
        otherwise = {(d.action, d.a, d.b) for d in result.decided_otherwise}
        assert otherwise == {("set_price", "allow", "deny"), ("enter_market", "escalate/approved", "escalate/rejected")}
        finance = result.agents[0]
        expected = jensen_shannon(
            Counter(set_price=2, enter_market=1), Counter(set_price=2, enter_market=1, commit_capital=1)
        )
        assert finance.action_js == expected
        assert expected is not None
        assert expected > 0
        assert result.to_json()["pairing"]["only_b"] == 1
