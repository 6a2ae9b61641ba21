"""The billing desk's eligibility rules, read from its policy's `eligibility:` section: decision tables whose
conditions and values are CEL expressions (common-expression-language), compiled once per policy.

A table is an ordered list of rows; the first row whose `when` holds decides, and its `id` is the rule path
recorded with the decision. Every table ends with a catch-all row (`when: "true"`), so every case is decided.
A `then` value that is a string is an expression (a literal string is quoted inside it: `'"gold"'`); numbers
and booleans are constants. Expressions read `case`, `account`, `outage`, `today` and `limits` (the policy's
`limits:` section, resolved when the policy loads: governance's compiler, coalition.governance.expressions);
every number is a CEL double, so write `10.0`, not `10`, in arithmetic.

Nothing about eligibility is written in Python: the engines ask `Eligibility.decide(table, …)` and act on the
answer, so changing a number in the YAML changes the decision with no code change.

Example::

    eligibility:
      fee_waiver:
        - id: late_fee.first_in_12_months
          when: case.fee_kind == "late_fee" && case.days_late <= limits.late_fee_grace_days && account.waivers_12m == 0
          then: {waive: true}
        - id: otherwise
          when: "true"
          then: {waive: false}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

from coalition.bus.documents import DocumentError, load_document
from coalition.domain.cel_language import cel
from coalition.governance.expressions import ExpressionProblem, cel_value, compile_expression

TABLES = (
    "escalation",
    "fee_waiver",
    "billing_error",
    "outage_tier",
    "cancellation",
    "retention_offer",
    "outreach_priority",
    "reengagement",
)
VARIABLES = frozenset({"case", "account", "outage", "today"})  # and `limits`, resolved when the policy loads
CATCH_ALL = "true"


class PolicyProblem(ValueError):
    """The pack's policy cannot be used: one line naming the file, the YAML path and the problem."""

    def __init__(self, source: str, where: str, reason: str) -> None:
        super().__init__(f"{source}: {where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Decision:
    """What a table decided: the rule path (`table/row id`) and the row's values."""

    table: str
    rule: str
    values: Mapping[str, Any]

    @property
    def path(self) -> str:
        return f"{self.table}/{self.rule}"

    def flag(self, name: str) -> bool:
        return self.values.get(name) is True

    def number(self, name: str) -> Decimal:
        return Decimal(str(self.values[name]))

    def text(self, name: str) -> str:
        return str(self.values[name])


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    when: cel.Program
    then: Mapping[str, cel.Program | bool | float]
    where: str


class Eligibility:
    """The compiled decision tables of one policy."""

    def __init__(self, tables: Mapping[str, tuple[_Row, ...]], limits: Mapping[str, Any], source: str) -> None:
        self._tables = dict(tables)
        self.source = source
        self.limits = limits

    @classmethod
    def from_policy(cls, policy: Mapping[str, Any], source: str = "policy") -> Eligibility:
        """Compile the `eligibility:` tables of a parsed policy; PolicyProblem (one line) for the first problem."""
        limits = policy.get("limits") or {}
        if not isinstance(limits, Mapping):
            raise PolicyProblem(source, "limits", "must be a mapping")
        section = policy.get("eligibility")
        if not isinstance(section, Mapping):
            raise PolicyProblem(source, "eligibility", "must be a mapping of decision tables")
        missing = [t for t in TABLES if t not in section]
        if missing:
            raise PolicyProblem(source, "eligibility", f"missing tables: {', '.join(missing)}")
        unknown = sorted(str(t) for t in section if t not in TABLES)
        if unknown:
            raise PolicyProblem(
                source, f"eligibility.{unknown[0]}", f"is not a table (expected one of {', '.join(TABLES)})"
            )
        tables = {name: _compile_table(source, name, section[name], limits) for name in TABLES}
        return cls(tables, limits, source)

    @classmethod
    def from_text(cls, text: str, source: str) -> Eligibility:
        try:
            parsed = load_document(text)  # the bounded loader of every document (libyaml's: every process loads it)
        except DocumentError as exc:
            raise PolicyProblem(source, exc.where, f"not valid YAML ({exc.reason})") from None
        if not isinstance(parsed, Mapping):
            raise PolicyProblem(source, "(file)", "must be a mapping")
        return cls.from_policy(parsed, source)

    def decide(self, table: str, **context: Any) -> Decision:
        """The first row of `table` whose condition holds, with its values (PolicyProblem when an expression fails
        on these inputs, e.g. it reads a field the case does not have)."""
        env = cel.Context()
        for name in sorted(VARIABLES):
            env.add_variable(name, cel_value(context.get(name, {})))
        for row in self._tables[table]:
            if _run(row.when, env, self.source, f"{row.where}.when") is True:
                values = {
                    k: (v if isinstance(v, (bool, float)) else _run(v, env, self.source, f"{row.where}.then.{k}"))
                    for k, v in row.then.items()
                }
                return Decision(table, row.id, values)
        raise PolicyProblem(self.source, f"eligibility.{table}", "no row matched (the last row must be a catch-all)")


def default_policy_text() -> str:
    return resources.files("coalition.packs.billing_desk").joinpath("policy.yaml").read_text(encoding="utf-8")


def default_eligibility() -> Eligibility:
    """The pack's default policy's tables."""
    return Eligibility.from_text(default_policy_text(), "packs/billing_desk/policy.yaml")


def _run(program: cel.Program, env: cel.Context, source: str, where: str) -> Any:
    try:
        return program.execute(env)
    except Exception as exc:  # CEL raises KeyError/TypeError/ValueError for inputs an expression cannot read
        reason = " ".join(str(exc).split())[:200]
        raise PolicyProblem(source, where, f"cannot be evaluated ({type(exc).__name__}: {reason})") from None


def _compile(source: str, where: str, text: object, limits: Mapping[str, Any]) -> cel.Program:
    """One expression, compiled by governance's CEL compiler: `limits.…` paths become the policy's values (a
    misspelt limit is an error here, not at the first case), and only the desk's variables may be read."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyProblem(source, where, f"must be a non-empty CEL expression, got {text!r}")
    try:
        return compile_expression(text, {"limits": limits}, variables=VARIABLES).program
    except ExpressionProblem as exc:
        at = f" (column {exc.column})" if exc.column else ""
        raise PolicyProblem(source, where, f"{exc.reason}{at}") from None


def _compile_table(source: str, name: str, rows: object, limits: Mapping[str, Any]) -> tuple[_Row, ...]:
    where = f"eligibility.{name}"
    if not isinstance(rows, list) or not rows:
        raise PolicyProblem(source, where, "must be a non-empty list of rows")
    compiled: list[_Row] = []
    seen: set[str] = set()
    for n, row in enumerate(rows):
        at = f"{where}[{n}]"
        if not isinstance(row, Mapping):
            raise PolicyProblem(source, at, "must be a mapping with id, when and then")
        extra = sorted(str(k) for k in row if k not in ("id", "when", "then", "why"))
        if extra:
            raise PolicyProblem(source, f"{at}.{extra[0]}", "is not a row field (expected id, when, then, why)")
        rule_id = row.get("id")
        if not isinstance(rule_id, str) or not rule_id.strip():
            raise PolicyProblem(source, f"{at}.id", "must be a non-empty string")
        if rule_id in seen:
            raise PolicyProblem(source, f"{at}.id", f"{rule_id!r} is used twice in {name}")
        seen.add(rule_id)
        then = row.get("then") or {}
        if not isinstance(then, Mapping):
            raise PolicyProblem(source, f"{at}.then", "must be a mapping of values")
        values: dict[str, cel.Program | bool | float] = {}
        for key, value in then.items():
            if isinstance(value, bool):
                values[str(key)] = value
            elif isinstance(value, (int, float)):
                values[str(key)] = float(value)
            else:
                values[str(key)] = _compile(source, f"{at}.then.{key}", value, limits)
        compiled.append(_Row(rule_id, _compile(source, f"{at}.when", row.get("when"), limits), values, at))
    if str(rows[-1].get("when")).strip() != CATCH_ALL:
        raise PolicyProblem(source, f"{where}[{len(rows) - 1}].when", 'the last row must be the catch-all "true"')
    return tuple(compiled)
