"""Rules written in the policy (`rules:`): CEL expressions compiled once per policy, run per action.

All the rules of one action are evaluated by ONE CEL program (a list of their conditions), so the context — the
proposal's arguments and the state fields the rules read — is converted once per proposal. They run over the flat
layout first (flat.py: one variable per field read, the cheapest for CEL to take); anything unusual there is
decided again here, over the nested layout (`args.price`). When its program fails (a missing argument, a wrong
type), the rules are run one by one in order to find which one failed: a rule that cannot be evaluated denies,
fail closed, with a reason naming it; a deny of an earlier rule still wins.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from coalition.bus.messages import ActionProposed
from coalition.domain import catalog
from coalition.domain.cel_language import cel
from coalition.governance.expressions import (
    FUNCTIONS,
    VARIABLES,
    Compiled,
    Environment,
    ExpressionProblem,
    cel_value,
    compile_expression,
    compile_template,
    environment,
    let_order,
    render,
)
from coalition.governance.money import to_decimal
from coalition.governance.rules.flat import FlatRules, joined_value, normal_value
from coalition.governance.rules.gates import escalation
from coalition.governance.state import GovernanceState
from coalition.governance.verdict import Finding

if TYPE_CHECKING:
    from coalition.governance.policy import Gate, Policy, RuleSpec

RULE_ERROR = "governance.rule_error"


def _spend(state: GovernanceState) -> dict[str, Decimal]:
    period = state.period_key()
    agents = {agent for agent, p in (*state.spent, *state.reserved) if p == period}
    return {agent: state.committed(agent, period) for agent in sorted(agents)}


@dataclass(frozen=True, slots=True)
class StateField:
    """One field of the governance state as expressions see it. A map field (`entries`) read only as
    `state.f[args.x]` or `args.x in state.f` is handed over with just the entries the proposal names."""

    read: Callable[[GovernanceState], Any] | None = None
    entries: Callable[[GovernanceState], Mapping[str, Any]] | None = None
    entry: Callable[[Any], Any] = cel_value

    def value(self, state: GovernanceState, keys: Sequence[object] | None) -> Any:
        if self.entries is None:
            assert self.read is not None
            return self.read(state)
        raw = self.entries(state)
        if keys is None:
            return {str(k): self.entry(v) for k, v in raw.items()}
        return {k: self.entry(raw[k]) for k in keys if isinstance(k, str) and k in raw}


# The governance state an expression may read as `state.<field>` (docs/policy.md "Variables"), besides the fields
# the policy's pack declares (GovernanceDecl.state_fields, see state_fields_of).
STATE_FIELDS: dict[str, StateField] = {
    "credits": StateField(entries=lambda s: s.credits),  # credit authorized so far per account
    "spend": StateField(entries=_spend),  # spend + reservations per agent in the current budget period
    "open_escalations": StateField(lambda s: float(len(s.open_escalations()))),
}


def state_fields_of(policy: Policy) -> dict[str, StateField]:
    """The state fields the policy's rules may read: its pack's, then governance's own."""
    return {**policy.of_pack().governance.state_fields, **STATE_FIELDS}


@dataclass(frozen=True, slots=True)
class Needs:
    """What the expressions of one action read: which arguments (None: all), whether proposer and action, and
    each state field with the arguments naming its entries (None: the whole field)."""

    args: frozenset[str] | None
    normalized: frozenset[str] | None
    joined: frozenset[str] | None
    proposer: bool
    action: bool
    state: tuple[tuple[str, tuple[str, ...] | None], ...]

    @classmethod
    def of(cls, sources: Sequence[str]) -> Needs:
        text = "\n".join(sources)
        state: dict[str, set[str] | None] = {}
        for match in _STATE_USE.finditer(text):
            name = match.group(1)
            keys = _projection(text, match)
            if keys is None or state.get(name, set()) is None:
                state[name] = None
            else:
                state.setdefault(name, set()).add(keys)  # type: ignore[union-attr]
        return cls(
            _members(text, "args"),
            _members(text, "normalized"),
            _members(text, "joined"),
            re.search(r"\bproposer\b", text) is not None,
            re.search(r"\baction\b", text) is not None,
            tuple((f, tuple(sorted(k)) if k is not None else None) for f, k in sorted(state.items())),
        )


_STATE_USE = re.compile(r"\bstate\s*\.\s*([A-Za-z_]\w*)")
_INDEXED = re.compile(r"\s*\[\s*args\s*\.\s*([A-Za-z_]\w*)\s*\]")
_TESTED = re.compile(r"args\s*\.\s*([A-Za-z_]\w*)\s+in\s+$")


def _projection(text: str, match: re.Match[str]) -> str | None:
    """The argument whose value selects the entry read here, or None when the use needs the whole field."""
    indexed = _INDEXED.match(text, match.end())
    if indexed is not None:
        return indexed.group(1)
    tested = _TESTED.search(text[max(0, match.start() - 80) : match.start()])
    if tested is not None and not re.match(r"\s*[\[.(]", text[match.end() :]):
        return tested.group(1)
    return None


def _members(text: str, variable: str) -> frozenset[str] | None:
    """The fields of `variable` the text reads (`args.region`), or None when it uses the variable otherwise."""
    names: set[str] = set()
    for match in re.finditer(rf"\b{variable}\b(\s*\.\s*([A-Za-z_]\w*))?", text):
        if match.group(2) is None:
            return None
        names.add(match.group(2))
    return frozenset(names)


class RuleProblem(ValueError):
    """A rule that cannot be compiled: where in the policy (e.g. `rules[3].when`) and what (with the column)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule of the policy, compiled."""

    rule_id: str
    listed_as: str
    actions: frozenset[str]
    outcome: str
    gate_name: str | None
    gate: Gate | None
    when: Compiled
    amount: Compiled | None
    reason: tuple[str | tuple[Compiled, str], ...]
    # The reason again, reading each `let` as a variable (`let__name`) evaluated once, in order, instead of
    # expanded in place: a let used inside a comprehension is otherwise computed again for every element.
    lets: tuple[tuple[str, Compiled], ...] = ()  # (variable name, the let over the lets before it)
    reason_over_lets: tuple[str | tuple[Compiled, str], ...] = ()
    when_over_lets: Compiled | None = None

    @property
    def state_fields(self) -> frozenset[str]:
        fields = set(self.when.state_fields)
        if self.amount is not None:
            fields |= self.amount.state_fields
        for part in self.reason:
            if not isinstance(part, str):
                fields |= part[0].state_fields
        return frozenset(fields)

    def finding(self, context: Environment, shown: Environment) -> Finding:
        """The deny or escalation of this rule, its reason rendered with the values that fired it (`shown`: numeric
        arguments as their decimal text, so a reason shows 25 as 25 and 25.0 as 25.0, as given)."""
        reason = render(self.reason, shown)
        if self.outcome == "deny" or self.amount is None:
            return self.decided(reason, None)
        return self.decided(reason, self.amount.program.execute(context))

    def decided(self, reason: str, amount_value: Any) -> Finding:
        """The deny or escalation of this rule with its reason rendered and its amount's value (None: none)."""
        if self.outcome == "deny":
            return Finding("deny", self.rule_id, reason)
        assert self.gate is not None
        assert self.gate_name is not None
        amount = None
        if self.amount is not None:
            value = amount_value
            if value is not None:
                amount = Decimal(repr(float(value)))
                if not amount.is_finite() or amount < 0:  # raised here, so evaluate denies it (fail closed)
                    raise ValueError(f"amount of rule {self.rule_id} is {amount}, not a finite amount of at least 0")
        return escalation(self.rule_id, self.gate_name, self.gate, reason, amount)


def constants_of(policy: Policy) -> dict[str, dict[str, Any]]:
    """What `limits.…` and `gates.…` read: the policy's validated sections (numbers as numbers, whether the
    document wrote them as YAML numbers or, dumped as JSON, as decimal text)."""
    limits = policy.limits.model_dump()
    gates = {name: gate.model_dump() for name, gate in policy.all_gates().items()}
    return {"limits": limits, "gates": gates}


def compile_rules(policy: Policy) -> tuple[CompiledRule, ...]:
    """Compile every rule of the policy; RuleProblem names the first expression that cannot be used."""
    constants = constants_of(policy)
    fields = state_fields_of(policy)
    gates = policy.all_gates()
    out: list[CompiledRule] = []
    for i, spec in enumerate(policy.rules):
        where = f"rules[{i}]"
        try:
            written = let_order(spec.let)
        except ExpressionProblem as exc:
            raise RuleProblem(f"{where}.let", _at(exc)) from None
        lets: dict[str, Compiled] = {}
        for name, text in written.items():
            lets[name] = _compile(text, constants, lets, f"{where}.let.{name}", fields)
        when = _compile(spec.when, constants, lets, f"{where}.when", fields)
        amount = None
        if spec.amount is not None:
            amount = _compile(spec.amount, constants, lets, f"{where}.amount", fields)
        _check_arguments(
            spec.actions,
            where,
            {
                "when": spec.when,
                "amount": spec.amount or "",
                "reason": spec.reason,
                **{f"let.{k}": v for k, v in spec.let.items()},
            },
        )
        try:
            reason = compile_template(spec.reason, constants, lets)
        except ExpressionProblem as exc:
            raise RuleProblem(f"{where}.reason", _at(exc)) from None
        hoisted, reason_over_lets, when_over_lets = _over_lets(f"let{i}__", spec, written, constants, lets)
        out.append(
            CompiledRule(
                spec.id,
                spec.listed_as,
                frozenset(spec.actions),
                spec.outcome,
                spec.gate,
                gates.get(spec.gate) if spec.gate is not None else None,
                when,
                amount,
                reason,
                hoisted,
                reason_over_lets,
                when_over_lets,
            )
        )
    return tuple(out)


def _over_lets(
    prefix: str, spec: RuleSpec, written: Mapping[str, str], constants: Mapping[str, Any], lets: Mapping[str, Compiled]
) -> tuple[tuple[tuple[str, Compiled], ...], tuple[str | tuple[Compiled, str], ...], Compiled | None]:
    """The lets compiled each over the ones before it as variables (`<prefix><name>`, the prefix naming the rule),
    and the reason and the condition over all of them (all already checked in place, so a problem here only means
    they keep their expanded form)."""
    if not spec.let:
        return (), (), None
    names = frozenset(f"{prefix}{name}" for name in spec.let)
    variables: dict[str, Compiled] = {}
    hoisted: list[tuple[str, Compiled]] = []
    try:
        for name, text in written.items():
            compiled = compile_expression(text, constants, variables, variables=VARIABLES | names)
            hoisted.append((f"{prefix}{name}", compiled))
            variables[name] = Compiled(name, f"{prefix}{name}", lets[name].program, lets[name].state_fields)
        reason = compile_template(spec.reason, constants, variables)
        when = compile_expression(spec.when, constants, variables, variables=VARIABLES | names)
    except ExpressionProblem:
        return (), (), None
    return tuple(hoisted), reason, when


def _check_arguments(actions: Sequence[str], where: str, texts: Mapping[str, str]) -> None:
    """Every `args.<name>` a rule reads is an argument of one of its actions (their one schema), or RuleProblem:
    a misspelt argument would otherwise load and then deny every proposal it covers as a rule error."""
    declared = catalog().actions
    known = {name for action in actions if action in declared for name in declared[action].argument_names()}
    for part, text in texts.items():
        for match in re.finditer(r"\bargs\s*\.\s*([A-Za-z_]\w*)", text):
            if match.group(1) not in known:
                raise RuleProblem(
                    f"{where}.{part}",
                    f"args.{match.group(1)} is not an argument of {', '.join(actions)} "
                    f"(arguments: {', '.join(sorted(known))}) (column {match.start() + 1})",
                )


def _compile(
    text: str, constants: Mapping[str, Any], lets: Mapping[str, Compiled], where: str, fields: Mapping[str, StateField]
) -> Compiled:
    try:
        compiled = compile_expression(text, constants, lets)
    except ExpressionProblem as exc:
        raise RuleProblem(where, _at(exc)) from None
    unknown = compiled.state_fields - fields.keys()
    if unknown:
        name = sorted(unknown)[0]
        column = text.find(f"state.{name}") + 7 if f"state.{name}" in text else 0
        known = ", ".join(fields)
        at = f" (column {column})" if column > 6 else ""
        raise RuleProblem(where, f"unknown state field state.{name} (known: {known}){at}")
    return compiled


def _at(exc: ExpressionProblem) -> str:
    return f"{exc.reason} (column {exc.column})" if exc.column else exc.reason


class ActionRules:
    """The policy's rules for one action, evaluated together (one CEL program, one context)."""

    def __init__(self, action: str, rules: Sequence[CompiledRule], fields: Mapping[str, StateField]) -> None:
        self.action = action
        self._fields = fields
        self.rules = tuple(rules)
        self.rule_id = self.rules[0].listed_as if self.rules else "rules"
        self.listed = tuple(dict.fromkeys(r.listed_as for r in self.rules))
        self._numbers = numeric_arguments(action)
        sources = [r.when.expanded for r in self.rules]
        sources += [r.amount.expanded for r in self.rules if r.amount is not None]
        sources += [p[0].expanded for r in self.rules for p in r.reason if not isinstance(p, str)]
        self._needs = Needs.of(sources)
        source = "[" + ", ".join(f"({r.when.expanded})" for r in self.rules) + "]"
        self._program = cel.compile(source)
        whens = "\n".join(r.when.expanded for r in self.rules)
        self._functions = any(re.search(rf"\b{name}\s*\(", whens) for name in FUNCTIONS)
        self._flat = FlatRules.of(self.rules, self._needs, self._numbers)

    def context(self, proposal: ActionProposed, state: GovernanceState) -> dict[str, Any]:
        """What the rules read, and only that (every value handed to CEL is converted, which is most of the
        cost): numeric arguments as doubles (numeric text too), the state fields used."""
        needs = self._needs
        given = proposal.args
        names = given.keys() if needs.args is None else [n for n in needs.args if n in given]
        args: dict[str, Any] = {}
        for name in names:
            value = given[name]
            if isinstance(value, str) and name in self._numbers:
                with contextlib.suppress(ValueError):  # else left as text: comparing it with a number fails closed
                    value = to_decimal(value)
            args[name] = cel_value(value)
        context: dict[str, Any] = {"args": args}
        if needs.normalized is None or needs.normalized:
            wanted = given.keys() if needs.normalized is None else [n for n in needs.normalized if n in given]
            context["normalized"] = {n: normal_value(given[n]) for n in wanted}
        if needs.joined is None or needs.joined:
            wanted = given.keys() if needs.joined is None else [n for n in needs.joined if n in given]
            context["joined"] = {n: joined_value(given[n]) for n in wanted}
        if needs.proposer:
            context["proposer"] = proposal.agent
        if needs.action:
            context["action"] = proposal.action
        if needs.state:
            context["state"] = {
                field: self._fields[field].value(state, None if keys is None else [given.get(k) for k in keys])
                for field, keys in needs.state
            }
        return context

    @property
    def runs_flat(self) -> bool:
        """Whether these rules can run over the flat layout (none reads a map variable whole)."""
        return self._flat is not None

    def findings(self, proposal: ActionProposed, state: GovernanceState) -> list[Finding]:
        """The findings of the rules that fired, in policy order, ending at the first deny. The rules run over
        the flat layout (`args__price`) when they can; anything unusual there (a missing argument, an error, a
        rule that cannot be evaluated) is decided again over the nested layout, whose errors name what failed."""
        flat = self._flat  # flat_findings, inlined: this runs on every proposal the rules cover
        found = None if flat is None else flat.findings(self.rules, proposal, state, self._needs, self._fields)
        return found if found is not None else self.nested_findings(proposal, state)

    def flat_findings(self, proposal: ActionProposed, state: GovernanceState) -> list[Finding] | None:
        """The findings over the flat layout (flat.py); None when the nested layout must decide."""
        if self._flat is None:
            return None
        return self._flat.findings(self.rules, proposal, state, self._needs, self._fields)

    def nested_findings(self, proposal: ActionProposed, state: GovernanceState) -> list[Finding]:
        """The findings over the nested layout (`args.price`), which runs every rule and names what failed."""
        context = self.context(proposal, state)
        env = environment(context, FUNCTIONS if self._functions else None)
        try:
            fired = self._program.execute(env)
            if not isinstance(fired, list) or not all(isinstance(f, bool) for f in fired):
                raise TypeError("a rule's condition is not true or false")
        except Exception:  # find which rule failed, one by one
            return self._one_by_one(env, self.shown(proposal, context))
        out: list[Finding] = []
        shown: Environment | None = None  # built once, when the first rule fires
        for rule, hit in zip(self.rules, fired, strict=True):
            if hit:
                try:
                    if shown is None:
                        shown = self.shown(proposal, context)
                    finding = rule.finding(env, shown)
                except Exception as exc:  # a reason that cannot be rendered must not allow
                    return [*out, _failed(rule, exc)]
                out.append(finding)
                if finding.outcome == "deny":
                    break
        return out

    def shown(self, proposal: ActionProposed, context: dict[str, Any]) -> Environment:
        """The environment reasons are rendered in: numeric arguments as the decimal text governance shows."""
        return environment({**context, "args": {**context["args"], **self._shown_args(proposal)}}, FUNCTIONS)

    def _shown_args(self, proposal: ActionProposed) -> dict[str, str]:
        shown: dict[str, str] = {}
        for name in self._numbers:
            value = proposal.args.get(name)
            if value is not None:
                with contextlib.suppress(ValueError):
                    shown[name] = str(to_decimal(value))
        return shown

    def _one_by_one(self, context: Environment, shown: Environment) -> list[Finding]:
        out: list[Finding] = []
        for rule in self.rules:
            try:
                hit = rule.when.program.execute(context)
                if not isinstance(hit, bool):
                    raise TypeError(f"the condition gave {type(hit).__name__}, not true or false")
                if not hit:
                    continue
                finding = rule.finding(context, shown)
            except Exception as exc:  # fail closed
                return [*out, _failed(rule, exc)]
            out.append(finding)
            if finding.outcome == "deny":
                break
        return out


def numeric_arguments(action: str) -> tuple[str, ...]:
    """The arguments the action's model declares as numbers (an agent may write them as numeric text)."""
    declared = catalog().actions.get(action)
    if declared is None:
        return ()
    fields = declared.args.model_fields
    return tuple(f.alias or n for n, f in fields.items() if f.annotation in (Decimal, int, float))


def _failed(rule: CompiledRule, exc: Exception) -> Finding:
    what = " ".join(str(exc).split())[:200]
    if isinstance(exc, KeyError):
        what = f"no such key {what}"
    reason = f"rule {rule.rule_id} could not be evaluated ({type(exc).__name__}: {what}); denied, fail closed"
    return Finding("deny", RULE_ERROR, reason)


def rules_by_action(policy: Policy, actions: Sequence[str]) -> dict[str, ActionRules]:
    """The compiled rules of a policy grouped per action (actions without rules are left out)."""
    compiled: tuple[CompiledRule, ...] = policy.compiled_rules()
    fields = state_fields_of(policy)
    out: dict[str, ActionRules] = {}
    for action in actions:
        mine = [r for r in compiled if action in r.actions]
        if mine:
            out[action] = ActionRules(action, mine, fields)
    return out
