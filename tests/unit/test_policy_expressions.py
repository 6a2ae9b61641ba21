"""Rules as data: a bad or hostile expression is one line naming the policy file, the YAML path and the column;
a rule that cannot be evaluated at run time denies, fail closed, with a reason naming it."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from coalition.bus.canonical import canonical_json
from coalition.bus.messages import ActionProposed
from coalition.domain.cel_language import cel
from coalition.governance import GovernanceState, Policy, default_policy, evaluate, load_policy, parse_policy
from coalition.governance.errors import PolicyError
from coalition.governance.expressions import (
    ExpressionProblem,
    _shape,
    check_shape,
    flattened,
    folded_normal,
    literal_spans,
    normal,
)
from coalition.governance.rules.expression import rules_by_action
from coalition.governance.rules.flat import MAX_ENVIRONMENTS
from coalition.governance.rules.gates import escalation
from coalition.packs.helios.learned import RegionPrice

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = default_policy().document
NOW = datetime(2025, 3, 10, tzinfo=UTC)
CREDIT = {"customer_id": "C-1", "incident_id": "i", "tier": "minor", "amount_usd": 25}


def with_rules(*rules: dict[str, Any], **limits: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    document["rules"] = [*rules, *document["rules"]]  # the shipped rules stay (after): rules replace the code's
    document["limits"].update(limits)
    return document


def rule(when: str, **extra: Any) -> dict[str, Any]:
    return {"id": "limit.test", "actions": ["issue_credit"], "when": when, "outcome": "deny", "reason": "no"} | extra


def problem(document: dict[str, Any]) -> PolicyError:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document, source="p.yaml")
    assert "\n" not in str(caught.value)
    return caught.value


def decide(policy: Policy, action: str = "issue_credit", agent: str = "ops", **args: Any) -> Any:
    proposal = ActionProposed(proposal_id="p", agent=agent, action=action, args=args or CREDIT, rationale="r")
    return evaluate(proposal, GovernanceState.initial(policy).at(NOW), policy)


class TestBadExpressions:
    def test_syntax_error_names_file_path_and_column(self) -> None:
        exc = problem(with_rules(rule("true"), rule("args.amount_usd >")))
        assert exc.path == "p.yaml"
        assert exc.field_path == "rules[1].when"
        assert "(column 18)" in exc.reason
        assert "syntax error" in exc.reason

    def test_unknown_variable(self) -> None:
        exc = problem(with_rules(rule("true && customer.disputes_90d >= 3")))
        assert exc.field_path == "rules[0].when"
        assert "unknown variable 'customer'" in exc.reason
        assert "(column 9)" in exc.reason

    def test_unknown_limit_names_the_known_ones(self) -> None:
        exc = problem(with_rules(rule("args.amount_usd > limits.max_credit")))
        assert "unknown name limits.max_credit" in exc.reason
        assert "max_credit_usd" in exc.reason
        assert "(column 26)" in exc.reason

    def test_unknown_state_field_function_and_gate(self) -> None:
        assert "unknown state field state.mood" in problem(with_rules(rule("state.mood > 1"))).reason
        assert "unknown function 'open'" in problem(with_rules(rule('open("/etc/passwd") == ""'))).reason
        exc = problem(with_rules(rule("true", outcome="escalate", gate="nope")))
        assert exc.field_path == "rules[0].gate"
        assert "unknown gate 'nope'" in exc.reason

    def test_unknown_action_and_escalation_without_gate(self) -> None:
        assert problem(with_rules(rule("true", actions=["fly"]))).field_path == "rules[0].actions"
        assert problem(with_rules(rule("true", outcome="escalate"))).field_path == "rules[0].gate"

    def test_bad_reason_template_and_let(self) -> None:
        exc = problem(with_rules(rule("true", reason="over {args.amount_usd|money}")))
        assert exc.field_path == "rules[0].reason"
        assert "unknown format 'money'" in exc.reason
        exc = problem(with_rules(rule("true", reason="over {args.amount_usd")))
        assert "never closed" in exc.reason
        exc = problem(with_rules(rule("big", let={"big": "args.amount_usd >> 2"})))
        assert exc.field_path == "rules[0].let.big"

    def test_a_named_limit_of_any_name_is_readable(self) -> None:
        policy = parse_policy(
            with_rules(rule("args.amount_usd > limits.max_refund", reason="{args.amount_usd|usd}"), max_refund=20),
            source="p.yaml",
        )
        verdict = decide(policy)
        assert verdict.outcome == "deny"
        assert verdict.reasons == ("25.00",)
        assert verdict.rule_ids == ("limit.test",)


class TestHostileExpressions:
    def test_huge(self) -> None:
        exc = problem(with_rules(rule(" || ".join(["args.amount_usd > 1.0"] * 200))))
        assert "characters long" in exc.reason

    def test_deeply_nested(self) -> None:
        exc = problem(with_rules(rule("(" * 40 + "true" + ")" * 40)))
        assert "nest 40 deep" in exc.reason

    def test_nested_comprehensions_that_multiply(self) -> None:
        text = "[1,2].all(a, [1,2].all(b, [1,2].all(c, a + b + c > 0.0)))"
        assert "comprehensions nest" in problem(with_rules(rule(text))).reason

    @pytest.mark.parametrize(
        "text",
        ['__import__("os").system("id") == 0', 'open("x") == ""', 'exec("1") == 1', "args.__class__ == 1"],
    )
    def test_no_io_and_no_python(self, text: str) -> None:
        """CEL has no I/O and no way into Python: a call to anything but CEL's and ours is refused at load; a
        field named like a Python attribute is only a missing key at run time (denied, fail closed)."""
        try:
            policy = parse_policy(with_rules(rule(text)), source="p.yaml")
        except PolicyError as exc:
            reason = exc.reason
        else:
            reason = ""
        if reason:
            assert "unknown function" in reason or "syntax error" in reason or "is not an argument of" in reason
            return
        verdict = decide(policy)
        assert verdict.outcome == "deny"
        assert verdict.rule_ids == ("governance.rule_error",)

    def test_unbalanced_and_unterminated(self) -> None:
        assert "unterminated string" in problem(with_rules(rule('args.tier == "minor'))).reason
        assert "unbalanced" in problem(with_rules(rule("args.amount_usd > 1.0)"))).reason


class TestFailClosed:
    def test_missing_argument_denies_naming_the_rule(self) -> None:
        policy = parse_policy(
            with_rules(rule("state.credits[args.customer_id] > 1.0", id="limit.refund")), source="p.yaml"
        )
        verdict = decide(policy)
        assert verdict.outcome == "deny"
        assert verdict.rule_ids == ("governance.rule_error",)
        assert verdict.reasons[0].startswith("rule limit.refund could not be evaluated (KeyError: no such key")
        assert "denied, fail closed" in verdict.reasons[0]

    def test_wrong_type_denies(self) -> None:
        policy = parse_policy(with_rules(rule("args.tier > 3.0")), source="p.yaml")
        assert decide(policy).rule_ids == ("governance.rule_error",)

    def test_a_condition_that_is_not_a_boolean_denies(self) -> None:
        policy = parse_policy(with_rules(rule("args.amount_usd")), source="p.yaml")
        assert decide(policy).rule_ids == ("governance.rule_error",)

    def test_an_earlier_deny_still_wins_over_a_later_failure(self) -> None:
        first = rule("args.amount_usd > 1.0", id="limit.first", reason="first {args.amount_usd|usd}")
        policy = parse_policy(with_rules(first, rule("state.credits[args.customer_id] > 1.0")), source="p.yaml")
        verdict = decide(policy)
        assert verdict.rule_ids == ("limit.first",)
        assert verdict.reasons == ("first 25.00",)

    def test_a_reason_that_cannot_be_rendered_denies(self) -> None:
        policy = parse_policy(with_rules(rule("true", reason="{state.credits[args.customer_id]}")), source="p.yaml")
        assert decide(policy).rule_ids == ("governance.rule_error",)


class TestEscalationRule:
    def test_every_escalation_of_a_gate_shares_its_expiry(self) -> None:
        """A gate's expiry is built once per value of its hours (a timedelta from a float of hours cost more than
        the rest of the finding), and is the gate's hours."""
        gate = default_policy().gate("market_entry")
        first = escalation("gate.market_entry", "market_entry", gate, "r", None)
        second = escalation("gate.market_entry", "market_entry", gate, "s", Decimal(300_000))
        assert first.expires_after == timedelta(hours=gate.expires_after_hours)
        assert first.expires_after is second.expires_after
        assert (first.approvals_required, second.approvals_required) == (1, 2)

    def test_refund_style_escalation_with_four_eyes_amount(self) -> None:
        """The issue's example: escalate when the amount is high OR the customer disputes often."""
        written = {
            "id": "gate.big_credit",
            "actions": ["issue_credit"],
            "when": "args.amount_usd > 20.0 || (args.customer_id in state.credits"
            " && state.credits[args.customer_id] > 3.0)",
            "outcome": "escalate",
            "gate": "capital_commitment",
            "amount": "args.amount_usd * 1000000.0",
            "reason": "credit {args.amount_usd|usd} to {args.customer_id} needs a human",
        }
        policy = parse_policy(with_rules(written), source="p.yaml")
        verdict = decide(policy)
        assert verdict.outcome == "escalate"
        assert verdict.gate == "capital_commitment"
        assert verdict.reasons == ("credit 25.00 to C-1 needs a human",)
        assert verdict.approvals_required == 2  # 25 M USD at stake: above the gate's four-eyes threshold
        assert decide(policy, **{**CREDIT, "amount_usd": 5}).outcome == "allow"


def run_with_policy(path: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`coalition run price-spike --policy PATH` as an operator types it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "coalition",
            "run",
            "price-spike",
            "--policy",
            str(path),
            "--bus",
            "memory",
            "--ledger",
            str(tmp_path / "l.db"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestThroughTheCli:
    def test_bad_expression_is_one_line_and_exit_2(self, tmp_path: Path) -> None:
        path = tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump(with_rules(rule("true"), rule("args.amount_usd > > 1"))), encoding="utf-8")
        with pytest.raises(PolicyError):
            load_policy(path)
        done = run_with_policy(path, tmp_path)
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, done.stderr
        assert "policy.yaml" in lines[0]
        assert "rules[1].when" in lines[0]
        assert "column" in lines[0]
        assert "Traceback" not in done.stderr + done.stdout


class TestLetsInAnyOrder:
    """A run records its policy document with the keys sorted, so its replay meets a rule's lets in name order:
    a let may come before one it reads. The lets are compiled in an order where each reads only lets before it."""

    def test_the_recorded_document_compiles_and_decides_as_the_written_one(self) -> None:
        lets = {"zprice": "double(args.amount_usd)", "over": "zprice > 90.0"}  # `over` reads a let named after it
        written = with_rules(rule("over", let=lets, reason="credit {zprice|usd} is over 90"))
        recorded = orjson.loads(canonical_json(written))
        assert list(recorded["rules"][0]["let"]) == ["over", "zprice"]
        first, again = parse_policy(written, source="p.yaml"), parse_policy(recorded, source="the ledger")
        assert first.version == again.version
        for amount, outcome in ((95, "deny"), (25, "allow")):
            verdicts = [decide(p, **{**CREDIT, "amount_usd": amount}) for p in (first, again)]
            assert verdicts[0] == verdicts[1]
            assert verdicts[0].outcome == outcome
        assert decide(again, **{**CREDIT, "amount_usd": 95}).reasons == ("credit 95.00 is over 90",)

    def test_lets_that_read_one_another_in_a_cycle_are_one_line(self) -> None:
        exc = problem(with_rules(rule("a", let={"a": "b", "b": "a || true"})))
        assert exc.field_path == "rules[0].let"
        assert "the lets a, b read one another in a cycle" in exc.reason

    def test_a_run_replays_identical_through_the_cli(self, tmp_path: Path) -> None:
        """As an operator: a policy whose let reads a let named after it runs, and the run replays IDENTICAL
        from the policy its ledger recorded (before, the replay refused the recorded policy)."""
        price = rule("over", actions=["set_price"], let={"zprice": "double(args.price)", "over": "zprice > 9000.0"})
        path = tmp_path / "policy.yaml"
        path.write_text(yaml.safe_dump(with_rules(price), sort_keys=False), encoding="utf-8")
        done = run_with_policy(path, tmp_path, "--run-id", "lets-order")
        assert done.returncode == 0, done.stderr
        replayed = subprocess.run(
            [sys.executable, "-m", "coalition", "replay", "lets-order", "--ledger", str(tmp_path / "l.db")],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "IDENTICAL" in replayed.stdout


class TestConstants:
    def test_a_policy_rebuilt_from_its_json_dump_decides_the_same(self) -> None:
        """JSON mode writes the policy's numbers as decimal text: limits are read from the validated model, so the
        rules still compare numbers (a what-if under the recorded policy itself changes nothing)."""
        policy = default_policy()
        dumped = parse_policy(policy.model_dump(mode="json"), source="dump")
        args = {"region": "CA", "price": 300}
        assert (
            decide(dumped, "set_price", "finance", **args).reasons
            == decide(policy, "set_price", "finance", **args).reasons
        )
        assert decide(dumped, "set_price", "finance", **args).rule_ids == ("limit.price.ceiling",)


class TestWrittenRulesReplaceTheCode:
    """A policy that writes rules is enforced by them alone: what it declares must be used by them, or it is
    refused at load (it would look enforced and be enforced by nothing)."""

    def test_one_rule_alone_is_refused_at_load_through_the_cli(self, tmp_path: Path) -> None:
        """The attack: the shipped policy with its rules replaced by one harmless rule allowed a 1,000,000 USD
        transfer, a prohibited market and a price above the ceiling."""
        document = copy.deepcopy(BASE)
        document["rules"] = [
            {
                "id": "x.only",
                "actions": ["rotate_credentials"],
                "when": "true",
                "outcome": "escalate",
                "gate": "credential_change",
                "reason": "credentials",
            }
        ]
        path = tmp_path / "onerule.yaml"
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        done = run_with_policy(path, tmp_path)
        assert done.returncode == 2, done.stderr
        (line,) = [x for x in done.stderr.splitlines() if x.strip()]
        assert "gates.capital_commitment" in line  # the first gate of the document (safe_dump sorts the keys)
        assert "no rule escalates through it" in line
        assert "Run " not in done.stdout  # refused before anything ran

    def test_a_built_in_limit_no_rule_reads_is_refused(self) -> None:
        document = copy.deepcopy(BASE)
        document["rules"] = [r for r in document["rules"] if "limits.max_credit_usd" not in str(r)]
        exc = problem(document)
        assert exc.field_path == "limits.max_credit_usd"
        assert "no rule reads it" in exc.reason

    def test_a_misspelt_argument_is_refused_at_load(self) -> None:
        exc = problem(with_rules(rule("args.amount > 1.0")))
        assert exc.field_path == "rules[0].when"
        assert "args.amount is not an argument of issue_credit" in exc.reason
        assert "(column 1)" in exc.reason
        exc = problem(with_rules(rule("true", reason="{args.nope|usd}")))
        assert exc.field_path == "rules[0].reason"

    @pytest.mark.parametrize("amount", ["1.0/0.0", "-5.0"])
    def test_an_amount_that_is_no_amount_denies(self, amount: str) -> None:
        policy = parse_policy(
            with_rules(rule("true", outcome="escalate", gate="capital_commitment", amount=amount)), source="p.yaml"
        )
        verdict = decide(policy)
        assert verdict.outcome == "deny"
        assert verdict.rule_ids == ("governance.rule_error",)

    def test_a_huge_hostile_policy_error_stays_short(self) -> None:
        document = copy.deepcopy(BASE)
        document["rules"] = [{"id": "r", "actions": ["issue_credit"]}] * 3000
        exc = problem(document)
        assert len(str(exc)) < 600


class TestFlatLayout:
    """`args.price` read as the variable `args__price`, or None when the expression needs the map itself."""

    @pytest.mark.parametrize(
        ("text", "flat"),
        [
            ("args.price > 1.0", "args__price > 1.0"),
            (
                "args . price > state.prices[args.region].base_price",
                "args__price > state__prices[args__region].base_price",
            ),
            ('"args.a" == args.b', '"args.a" == args__b'),  # a string literal is text, not a read
            ("x.args.y", "x.args.y"),  # a field named args is no variable
            ("args.claims.exists(c, normal(c) == 'x')", "args__claims.exists(c, normal(c) == 'x')"),
            ("args", None),
            ("size(args) > 2", None),
            ("has(args.x)", None),
            ("[1.0].exists(args, args > 0.0)", None),
        ],
    )
    def test_flattened(self, text: str, flat: str | None) -> None:
        assert flattened(text, frozenset({"args", "normalized", "state"})) == flat

    @pytest.mark.parametrize(
        ("text", "folded"),
        [
            (
                '["Risk-FREE", "A  b"].filter(p, normal(p) == h)',
                '[["Risk-FREE", "risk-free"], ["A  b", "a b"]].filter(p, p[1] == h).map(p, p[0])',
            ),
            # the first element of a normal form: a lookup, the first of each normal form kept
            (
                '["Risk-FREE", "A  b", "risk-free"].filter(p, normal(p) == h)[0]',
                '{"risk-free": "Risk-FREE", "a b": "A  b"}[h]',
            ),
            ('["A"].filter(p, (h)[0] == normal(p))[0]', '{"a": "A"}[(h)[0]]'),
            ('["A"].filter(p, normal(p) == a || b)[0]', '[["A", "a"]].filter(p, p[1] == a || b).map(p, p[0])[0]'),
            ('["A"].filter(p, normal(p) == x in y)[0]', '[["A", "a"]].filter(p, p[1] == x in y).map(p, p[0])[0]'),
            ('["A"].filter(p, normal(p) == p)[0]', '[["A", "a"]].filter(p, p[1] == p[0]).map(p, p[0])[0]'),
            ('["A"].filter(p, normal(p) == h)[1]', '[["A", "a"]].filter(p, p[1] == h).map(p, p[0])[1]'),
            (
                '["A"].exists(x, normal(x) == y && x != "A" && z.x)',
                '[["A", "a"]].exists(x, x[1] == y && x[0] != "A" && z.x)',
            ),
            ('["A"].filter(p, p == y)', '["A"].filter(p, p == y)'),  # no normal(p): as it was
            ("args__claims.filter(c, normal(c) == h)", "args__claims.filter(c, normal(c) == h)"),  # no literal
            ('["A"].all(p, ["B"].exists(p, normal(p) == p))', '["A"].all(p, [["B", "b"]].exists(p, p[1] == p[0]))'),
        ],
    )
    def test_normal_folded_over_literal_lists(self, text: str, folded: str) -> None:
        assert folded_normal(text) == folded

    @pytest.mark.parametrize("h", ["risk-free", "a b", "A  b", "", 1.0, None])
    def test_a_lookup_gives_what_the_loop_gives(self, h: Any) -> None:
        """The same element, or an error for both where no element has that normal form."""
        written = '["Risk-FREE", "A  b", "risk-free"].filter(p, normal(p) == h)[0]'
        context = cel.Context({"h": h}, {"normal": normal})
        try:
            expected = cel.compile(written).execute(context)
        except Exception:
            expected = "error"
        try:
            got = cel.compile(folded_normal(written)).execute(context)
        except Exception:
            got = "error"
        assert got == expected

    @pytest.mark.parametrize(
        ("text", "literals"),
        [
            ('(s != null ? s : {"floor": 20.0, "c": [1.0, null]}).floor', ['{"floor": 20.0, "c": [1.0, null]}']),
            ('x in ["CA", "TX"] && y[0] == "a"', ['["CA", "TX"]']),
            ('["a]", "b"].filter(p, p == ["c"][0])', ['["a]", "b"]', '["c"]']),
            ("[1u, 2] + [x] + [1e5] + f(y)[0]", []),  # a uint, a variable, an exponent, an index
        ],
    )
    def test_literal_spans(self, text: str, literals: list[str]) -> None:
        assert [text[a:b] for a, b in literal_spans(text)] == literals

    def test_a_rule_that_fails_flat_is_decided_again_nested(self) -> None:
        """The reason a failing rule gives is the nested layout's (TestFailClosed checks its words)."""
        policy = parse_policy(
            with_rules(rule("state.credits[args.customer_id] > 1.0", id="limit.refund")), source="p.yaml"
        )
        rules = rules_by_action(policy, ["issue_credit"])["issue_credit"]
        proposal = ActionProposed(proposal_id="p", agent="ops", action="issue_credit", args=CREDIT, rationale="r")
        state = GovernanceState.initial(policy).at(NOW)
        assert rules.runs_flat
        assert rules.flat_findings(proposal, state) is None
        assert rules.findings(proposal, state) == rules.nested_findings(proposal, state)
        assert rules.findings(proposal, state)[0].rule_id == "governance.rule_error"

    @pytest.mark.parametrize(
        ("let", "reason"),
        [
            ("[args.amount_usd, 3.0].filter(x, x > 1.0)", "{size(big)} over"),  # reads a number: again as text
            ("['a', 'b'].filter(x, x == args.customer_id || x == 'a')", "first {big[0]}"),  # reads none
        ],
    )
    def test_a_looping_let_is_computed_once_and_decides_as_nested(self, let: str, reason: str) -> None:
        policy = parse_policy(
            with_rules(rule("size(big) > 0", id="limit.loop", let={"big": let}, reason=reason)), source="p.yaml"
        )
        rules = rules_by_action(policy, ["issue_credit"])["issue_credit"]
        proposal = ActionProposed(proposal_id="p", agent="ops", action="issue_credit", args=CREDIT, rationale="r")
        state = GovernanceState.initial(policy).at(NOW)
        assert rules.findings(proposal, state) == rules.nested_findings(proposal, state)
        assert rules.findings(proposal, state)[0].rule_id in ("limit.loop", "governance.rule_error")

    def test_joined_searches_every_string_of_a_list_at_once(self) -> None:
        """`joined.claims`: the claims normalized and joined by line breaks; a phrase is found in one claim, never
        across two (the line break between them is in no normalized phrase)."""
        policy = parse_policy(
            with_rules(
                rule(
                    'joined.claims.contains("risk-free") || joined.claims.contains("wind cheap")',
                    id="limit.joined",
                    actions=["launch_campaign"],
                    reason="banned in {quote(joined.claims)}",
                )
            ),
            source="p.yaml",
        )
        rules = rules_by_action(policy, ["launch_campaign"])["launch_campaign"]
        assert rules.runs_flat
        state = GovernanceState.initial(policy).at(NOW)
        outcomes = []
        for claims in (["Solar  and WIND", "cheap power"], ["Totally   RISK-free", "x"], []):
            args = {"campaign_id": "c", "region": "CA", "channel": "email", "copy": "Hi", "claims": claims,
                    "budget_usd": 10, "discount_pct": 0}  # fmt: skip
            proposal = ActionProposed(proposal_id="p", agent="marketing", action="launch_campaign", args=args,
                                      rationale="r")  # fmt: skip
            flat = rules.flat_findings(proposal, state)
            assert flat is not None
            assert flat == rules.nested_findings(proposal, state)
            outcomes.append([f.reason for f in flat if f.rule_id == "limit.joined"])
        assert outcomes == [[], ["banned in 'totally risk-free\\nx'"], []]

    def test_an_argument_the_environment_holds_is_not_handed_again(self) -> None:
        """An argument the last proposal of the action gave too is not converted into CEL again; one that changed
        is, so each verdict reads its own arguments."""
        policy = default_policy()
        rules = rules_by_action(policy, ["set_price"])["set_price"]
        compiled = rules._flat
        state = GovernanceState.initial(policy).at(NOW)
        verdicts = []
        for region, price in [("CA", 30.0), ("CA", 30.0), ("ZZ", 30.0), ("CA", 300), ("CA", 30.0)]:
            proposal = ActionProposed(proposal_id="p", agent="finance", action="set_price",
                                      args={"region": region, "price": price}, rationale="r")  # fmt: skip
            flat = rules.flat_findings(proposal, state)
            assert flat == rules.nested_findings(proposal, state)
            verdicts.append([f.rule_id for f in flat or []])
            assert compiled is not None
            assert compiled.scratch.envs[repr([region])].held["args__region"] == repr(region)
        assert verdicts == [["limit.price.base_unknown"]] * 3 + [["limit.price.ceiling"], ["limit.price.base_unknown"]]

    def test_a_fired_rule_writes_as_text_only_the_numbers_its_reason_shows(self) -> None:
        """The decimal text of a numeric argument (`{args.discount_pct|dec}`) is built when a rule whose reason
        shows it fired, not for every rule that fired."""
        rules = rules_by_action(default_policy(), ["launch_campaign"])["launch_campaign"]
        flat = rules._flat
        assert flat is not None
        assert {r.rule_id: f.texts for r, f in zip(rules.rules, flat.rules, strict=True)} == {
            "limit.claims.banned": (), "limit.claims.unapproved": (), "limit.discount": ("discount_pct",),
            "limit.jurisdiction.prohibited": (),
        }  # fmt: skip

    def test_one_environment_per_region_each_holding_its_own_values(self) -> None:
        """Proposals alternating between regions find their region and its price entry held (not converted into
        CEL again); past MAX_ENVIRONMENTS regions the least recently used environment is re-keyed, and every
        verdict still reads its own arguments and state."""
        policy = default_policy()
        rules = rules_by_action(policy, ["set_price"])["set_price"]
        compiled = rules._flat
        assert compiled is not None
        assert compiled.selectors == ("region",)
        regions = [f"R{i}" for i in range(MAX_ENVIRONMENTS + 3)]
        learned = {"prices": {r: RegionPrice(Decimal(50 + i), Decimal(50 + i)) for i, r in enumerate(regions)},
                   "pricing": None, "jurisdictions": {}}  # fmt: skip
        state = dataclasses.replace(GovernanceState.initial(policy).at(NOW), learned=learned)
        for region in ["CA", "R1", "CA", "R1", *regions, "R1", "CA"]:
            for price in (60, 70, 300):
                proposal = ActionProposed(proposal_id="p", agent="finance", action="set_price",
                                          args={"region": region, "price": price}, rationale="r")  # fmt: skip
                assert rules.flat_findings(proposal, state) == rules.nested_findings(proposal, state)
        envs = compiled.scratch.envs
        assert len(envs) == MAX_ENVIRONMENTS
        assert list(envs)[-2:] == [repr(["R1"]), repr(["CA"])]
        assert [env.held["args__region"] for env in envs.values()] == [key[1:-1] for key in envs]
        assert envs[repr(["R1"])].held["state__prices"] == repr({"R1": {"price": 51.0, "base_price": 51.0}})


def test_a_policy_loaded_again_compiles_no_expression_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A text compiles to one program per process: a replay or verify loading the policy its run loaded, or the
    console loading a run's policy for each decision, pays no CEL compile; a text that fails is not kept."""
    parse_policy(BASE, source="first load")
    compiled: list[str] = []
    real = cel.compile
    monkeypatch.setattr(cel, "compile", lambda text: compiled.append(text) or real(text))
    again = parse_policy(BASE, source="second load")
    assert compiled == []
    assert again.version == parse_policy(BASE, source="first load").version
    bad = with_rules(rule("args.amount_usd >"))
    assert problem(bad).field_path == problem(bad).field_path == "rules[0].when"
    assert compiled  # the text that failed was compiled both times


def test_a_texts_shape_is_checked_once_in_a_process() -> None:
    """A load checks the same texts for its lets' order and each compile, and a second load (a replay or verify of
    the run that loaded it) checks none again: the shape is a function of the text alone."""
    document = default_policy().document
    _shape.cache_clear()
    parse_policy(document, source="first")
    first = _shape.cache_info()
    assert first.hits > 0
    parse_policy(document, source="second")
    assert _shape.cache_info().misses == first.misses


@pytest.mark.parametrize("text", [["a"], {"a": 1}, None, "   "])
def test_a_text_that_is_no_string_is_one_problem_not_a_cache_error(text: Any) -> None:
    with pytest.raises(ExpressionProblem, match="empty"):
        check_shape(text)
