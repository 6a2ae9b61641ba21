"""Phrase screens: a let that searches a text for a literal list of phrases is computed in Python, once per
proposal, and handed to CEL as a value; it holds exactly what CEL computes from the let as written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coalition.bus.messages import ActionProposed
from coalition.domain.cel_language import cel
from coalition.governance import GovernanceState, default_policy, evaluate
from coalition.governance.expressions import normal
from coalition.governance.rules.expression import rules_by_action
from coalition.governance.rules.flat import FLAT_VARIABLES
from coalition.governance.rules.screens import Screen, Unlisted, screens_of, unlisted_of

pytestmark = pytest.mark.unit

POLICY = default_policy()
BANNED = POLICY.limits.claims.banned
NOW = datetime(2025, 3, 10, tzinfo=UTC)


def _value(name: str) -> bool:
    return name.split("__", maxsplit=1)[0] in FLAT_VARIABLES


def _campaign(copy: Any, claims: list[Any]) -> ActionProposed:
    args = {"campaign_id": "c", "region": "CA", "channel": "email", "copy": copy, "claims": claims,
            "budget_usd": 10, "discount_pct": 0}  # fmt: skip
    return ActionProposed(proposal_id="p", agent="marketing", action="launch_campaign", args=args, rationale="r")


class TestTheShippedPolicy:
    @pytest.mark.parametrize("action", ["launch_campaign", "notify_customers"])
    def test_the_banned_phrase_search_is_a_screen(self, action: str) -> None:
        """The conditions read the phrases found, not the texts searched: CEL runs no loop over the phrases."""
        flat = rules_by_action(POLICY, [action])[action]._flat
        assert flat is not None
        screens = [s for s in flat.screens if isinstance(s, Screen)]
        assert [s.phrases for s in screens] == [tuple(normal(p) for p in BANNED)]
        assert {s.name for s in flat.screens} <= set(flat.decides)
        assert not {"normalized__copy", "joined__claims", "normalized__message"} & set(flat.decides)

    def test_a_claim_outside_the_library_is_computed_in_python(self) -> None:
        """`normalized.claims.exists(c, !(c in normal(limits.claims.approved)))`: no loop in CEL, and neither the
        claims nor the library handed over to decide it."""
        flat = rules_by_action(POLICY, ["launch_campaign"])["launch_campaign"]._flat
        assert flat is not None
        unlisted = [s for s in flat.screens if isinstance(s, Unlisted)]
        assert [(u.value, u.listed) for u in unlisted] == [
            ("normalized__claims", frozenset(normal(c) for c in POLICY.limits.claims.approved))
        ]
        assert "normalized__claims" not in flat.decides
        library = [normal(c) for c in POLICY.limits.claims.approved]
        assert library not in [value for _, value in flat.constants]

    @pytest.mark.parametrize(
        ("copy", "claims"),
        [
            ("Guaranteed   SAVINGS today", []),
            ("Hi", ["Buy directly from local solar and wind producers", "no fees EVER"]),
            ("risk-free\ncheapest energy", ["100% uptime"]),
            ("Hi", []),
        ],
    )
    def test_same_findings_as_the_nested_layout(self, copy: str, claims: list[str]) -> None:
        rules = rules_by_action(POLICY, ["launch_campaign"])["launch_campaign"]
        state = GovernanceState.initial(POLICY).at(NOW)
        flat = rules.flat_findings(_campaign(copy, claims), state)
        assert flat is not None
        assert flat == rules.nested_findings(_campaign(copy, claims), state)

    @pytest.mark.parametrize("copy", ["Guaranteed savings \ud800", 5])
    def test_a_text_cel_cannot_search_is_decided_nested(self, copy: Any) -> None:
        """A lone surrogate (CEL cannot take it) or a number: the nested layout decides, as before screens."""
        rules = rules_by_action(POLICY, ["launch_campaign"])["launch_campaign"]
        state = GovernanceState.initial(POLICY).at(NOW)
        proposal = _campaign(copy, [])
        assert rules.flat_findings(proposal, state) is None
        assert evaluate(proposal, state, POLICY).outcome == "deny"


texts = st.text(alphabet=st.sampled_from(["a", "b", " ", "\n", "é", "ß", "\u0130", "%", "-"]), max_size=12)


class TestScreensComputeWhatCelComputes:
    LET = 'x + "\\n" + y'

    @settings(max_examples=300, deadline=None)
    @given(phrases=st.lists(texts, max_size=5), x=texts, y=texts)
    def test_the_hits_of_a_joined_text(self, phrases: list[str], x: str, y: str) -> None:
        listed = "[" + ", ".join(_literal(p) for p in phrases) + "]"
        hits = f"{listed}.filter(p, (copy_and_claims).contains(p))"
        screens = screens_of([("copy_and_claims", self.LET.replace("x", "normalized__x").replace("y", "joined__y")),
                              ("hits", hits)], _value)  # fmt: skip
        assert list(screens) == ["hits"]
        values = {"normalized__x": x, "joined__y": y}
        written = f"{listed}.filter(p, (normalized__x + '\\n' + joined__y).contains(p))"
        assert screens["hits"].compute(values) == cel.compile(written).execute(values)

    @pytest.mark.parametrize(
        "text",
        [
            '["a"].filter(p, p.contains(normalized__x))',  # the phrase searches the text: another loop
            '["a"].filter(p, normalized__x + joined__y.contains(p))',  # `contains` binds to joined__y alone
            '["a"].filter(p, normalized__x.contains(p) || true)',
            '["a"].filter(p, normalized__x.contains(p))[0]',
            '["a"].filter(p, size(normalized__x).contains(p))',
            '["a", 1].filter(p, normalized__x.contains(p))',
            '[b"a"].filter(p, normalized__x.contains(p))',
            '["a"].filter(p, (normalized__x + p).contains(p))',
            '["a"].filter(p, unknown.contains(p))',
            '["a"].exists(p, normalized__x.contains(p))',
        ],
    )
    def test_other_shapes_stay_in_cel(self, text: str) -> None:
        assert screens_of([("hits", text)], _value) == {}

    @settings(max_examples=300, deadline=None)
    @given(items=st.lists(texts, max_size=4), listed=st.lists(texts, max_size=4))
    def test_an_unlisted_element_as_cel_finds_it(self, items: list[str], listed: list[str]) -> None:
        literal = "[" + ", ".join(_literal(p) for p in listed) + "]"
        written = f"normalized__x.exists(c, !(c in {literal}))"
        unlisted = unlisted_of("u", written, _value)
        assert unlisted is not None
        assert unlisted.compute({"normalized__x": items}) == cel.compile(written).execute({"normalized__x": items})

    @pytest.mark.parametrize(
        "text",
        [
            'normalized__x.exists(c, c in ["a"])',
            'normalized__x.exists(c, !(c in ["a"]) || true)',
            'normalized__x.exists(c, !(c in ["a", 1]))',
            "normalized__x.exists(c, !(c in y))",
            'normalized__x.all(c, !(c in ["a"]))',
            'unknown.exists(c, !(c in ["a"]))',
            'normalized__x.exists(c, !(d in ["a"]))',
        ],
    )
    def test_other_conditions_stay_in_cel(self, text: str) -> None:
        assert unlisted_of("u", text, _value) is None

    def test_an_unlisted_over_anything_but_strings_gives_none(self) -> None:
        unlisted = unlisted_of("u", 'normalized__x.exists(c, !(c in ["a"]))', _value)
        assert unlisted is not None
        assert unlisted.compute({"normalized__x": ["a", "b"]}) is True
        assert unlisted.compute({"normalized__x": [1.0]}) is None
        assert unlisted.compute({"normalized__x": "ab"}) is None
        assert unlisted.compute({"normalized__x": ["\ud800"]}) is None

    def test_a_value_that_is_no_string_gives_none(self) -> None:
        screen = screens_of([("hits", '["a"].filter(p, normalized__x.contains(p))')], _value)["hits"]
        assert screen.compute({"normalized__x": "xa"}) == ["a"]
        assert screen.compute({"normalized__x": ["a"]}) is None
        assert screen.compute({"normalized__x": "a\udc00"}) is None


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
