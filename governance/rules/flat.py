"""The written rules of one action over the flat layout: what runs per proposal when nothing is unusual.

Handing a value to CEL is most of what a rule costs: the binding converts each one by trying bool, int, unsigned,
double, timestamps... in turn, and every failed try raises and drops a Python exception (about 1 µs a double, 3 µs
a string, more for each map and its keys). So, per proposal:

- each field an expression reads is its own variable (`args.price` → `args__price`: no map to convert);
- a numeric argument is handed over as an int when it is a whole number (converted without a failed try) and read
  as `double(args__price)`, the same double `args.price` is elsewhere; any other number as the double itself;
- one CEL program decides all the action's conditions, returning which fired as the bits of one int;
- the CEL environment lives on between proposals (per thread and action, one for each value of the arguments
  that select state entries, up to MAX_ENVIRONMENTS: one per region for `state.prices[args.region]`): a value it
  holds already (a state value that has not changed, the region and its price entry, an argument the last
  proposal of the action gave too) is not handed over again; state values are computed once per state;
- the binding caches the environment it builds from the variables, and every value handed over drops that cache:
  the next program run builds it again, copying every variable it holds (about 0.2 µs a variable and 0.07 µs a
  list element). So values are handed over in one go before a program runs, never between two programs: a let
  that loops is bound inside the program that reads it (`[<let>].map(let4__hits, <conditions>)[0]`, CEL having
  no `let`), and when rules fired, what all their reasons read is handed over at once, then each rule's reason
  values and amount are computed by one program;
- the literal lists and maps of the conditions (the policy's limits) are variables handed once to each
  environment, not built again on every evaluation; those only reasons read stay literals (built only when a rule
  fired, not copied at every rebuild); `normal(p)` over the elements of a literal list is computed once, at load
  (folded_normal);
- a let that searches a text for a literal list of phrases (the banned-phrase screen) is computed in Python and
  handed over as its value (screens.py), not looped over by CEL on every proposal; a let nothing reads any more
  is not computed;
- what only reasons, amounts and their lets read is handed over when a rule fired, and a placeholder that is one
  value handed over (`{args.region}`, `{args.price|usd}`) or a constant is rendered without running CEL; `quote(…)`
  around a whole placeholder is applied in Python, not called back from CEL.

Anything unusual (a missing or non-numeric argument, an error, a result that is not what the rules promise) gives
None, and the nested layout (expression.py), whose failures name the rule, decides instead.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from coalition.bus.messages import ActionProposed
from coalition.domain.cel_language import cel
from coalition.governance.expressions import (
    FUNCTIONS,
    Compiled,
    bare_name,
    cel_value,
    flattened,
    folded_normal,
    formatted,
    literal_spans,
    normal,
    whole_call,
)
from coalition.governance.money import to_decimal
from coalition.governance.rules.screens import Screen, Unlisted, screens_of, unlisted_of
from coalition.governance.state import GovernanceState
from coalition.governance.verdict import Finding

if TYPE_CHECKING:
    from coalition.governance.rules.expression import CompiledRule, Needs, StateField

# The map variables the flat layout splits into one variable per field (`args.price` → `args__price`).
FLAT_VARIABLES = frozenset({"args", "normalized", "joined", "state"})
TEXT_PREFIX = "argtext__"  # a numeric argument as the decimal text reasons show (`argtext__price`)
MAX_RULES = 62  # one bit each in the int the conditions return (CEL ints are 64-bit, signed)
EXACT_INTS = 2**53  # every whole number up to here is exactly one double
# CEL environments kept per action and thread, one per value of the arguments selecting state entries (regions): a
# value an environment holds (the region, its price entry) is not converted again when the next proposal names it.
MAX_ENVIRONMENTS = 16
MAX_FIRED_PLANS = 256  # sets of fired rules whose plan is kept per action (a few occur; any other is built each time)
_MISSING = object()
_STR = frozenset({str})

_NAME = re.compile(r"\b(?:(?:args|normalized|joined|state|argtext)__[A-Za-z_]\w*|proposer|action)\b")
_FUNCTION_CALL = re.compile(rf"\b(?:{'|'.join(FUNCTIONS)})\s*\(")
_LOOP = re.compile(r"\.\s*(filter|exists|exists_one|all|map)\s*\(")
_UINT = re.compile(r"\buint\s*\(")


class _NotFlat(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Value:
    """A placeholder's or an amount's value: a constant already rendered (`text`); one value handed over (`name`;
    `double`: a numeric argument read as a double), read as it was handed — or, when CEL would give it back
    changed, by running `program`; or what the rule's program computed at `index`."""

    text: str | None = None
    name: str | None = None
    double: bool = False
    program: cel.Program | None = None
    index: int | None = None


@dataclass(frozen=True, slots=True)
class _Placeholder:
    value: _Value
    fmt: str
    quoted: bool  # the expression was quote(…): repr() applied to the value


@dataclass(frozen=True, slots=True)
class _FlatRule:
    """What a fired rule runs: one program computing, as a list, the values of its reason and its amount that are
    neither constants nor one value handed over (its lets bound inside it), and the names it reads from the
    environment (handed over when the rule fires)."""

    program: cel.Program | None
    reason: tuple[str | _Placeholder, ...]
    amount: _Value | None
    reads: frozenset[str]
    functions: bool  # one of its programs calls normal() or quote()
    texts: tuple[str, ...] = ()  # the numeric arguments its reason or amount reads as decimal text


class _Env:
    """A CEL environment of one action's rules, and what it holds."""

    __slots__ = ("context", "functions", "held", "objects")

    def __init__(self, constants: Sequence[tuple[str, Any]]) -> None:
        self.context = cel.Context(dict(constants))
        self.held: dict[str, str] = {}  # name → the repr of the value the environment holds
        self.objects: dict[str, Any] = {}  # name → the value itself (the same object needs no repr compared)
        self.functions = False


class _Scratch(threading.local):
    """The environments of one action's rules on this thread, one per value of the arguments that select state
    entries (`region` of `state.prices[args.region]`), the least recently used re-keyed when there are
    MAX_ENVIRONMENTS; and the state values of the last state read."""

    def __init__(self) -> None:
        self.envs: dict[str, _Env] = {}  # least recently used first
        self.state: GovernanceState | None = None
        self.state_values: dict[tuple[str, str], Any] = {}  # (field, repr of the entries wanted) → value

    def env(self, key: str, constants: Sequence[tuple[str, Any]]) -> _Env:
        env = self.envs.pop(key, None)
        if env is None:
            env = self.envs.pop(next(iter(self.envs))) if len(self.envs) >= MAX_ENVIRONMENTS else _Env(constants)
        self.envs[key] = env
        return env

    def state_value(self, state: GovernanceState, field: str, wanted: list[Any] | None, read: StateField) -> Any:
        """A state field's value (its entries `wanted`), computed once per state: the state is immutable, and the
        same object handed again is known to the environment without comparing its repr."""
        if self.state is not state:
            self.state = state
            self.state_values = {}
        key = (field, repr(wanted))
        value = self.state_values.get(key, _MISSING)
        if value is _MISSING:
            value = self.state_values[key] = read.value(state, wanted)
        return value


@dataclass(frozen=True, slots=True)
class FlatRules:
    """One action's rules compiled for the flat layout."""

    conditions: cel.Program
    rules: tuple[_FlatRule, ...]
    decides: tuple[str, ...]  # the names the conditions read
    functions: bool  # the conditions call normal() or quote()
    numbers: frozenset[str]  # numeric arguments the rules read
    constants: tuple[tuple[str, Any], ...]  # literal lists and maps, handed once to each environment
    scratch: _Scratch
    screens: tuple[Screen | Unlisted, ...] = ()  # values computed in Python and handed over (screens.py)
    selectors: tuple[str, ...] = ()  # the arguments that select state entries (one environment per their values)
    plan: _Plan | None = None  # the variables to compute, with their names
    # the plan of each set of fired rules: a cache, not part of the value (not compared, hashed or shown)
    fired: dict[int, _Fired] = dataclasses.field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def of(cls, rules: Sequence[CompiledRule], needs: Needs, numbers: Sequence[str]) -> FlatRules | None:
        """None when some expression reads a map variable whole (then only the nested layout can run it), or the
        action has more rules than the conditions' int has bits."""
        if needs.args is None or needs.normalized is None or needs.joined is None or len(rules) > MAX_RULES:
            return None
        read = {n for n in numbers if n in needs.args}
        as_double = {f"args.{n}": f"double(args__{n})" for n in read}
        as_text = {f"args.{n}": f"{TEXT_PREFIX}{n}" for n in read}
        constants = _Constants()
        try:
            whens = [
                _flat(r.when_over_lets.expanded if _loops(r) and r.when_over_lets else r.when.expanded, as_double)
                for r in rules
            ]
            bound = [(n, _flat(c.expanded, as_double)) for r in rules if _loops(r) or _hoists(r) for n, c in r.lets]
            screens: dict[str, Screen | Unlisted] = {**screens_of(bound, _is_value)}
            for i, when in enumerate(whens):
                unlisted = unlisted_of(f"unlisted__{i}", when, _is_value)
                if unlisted is not None:
                    screens[unlisted.name] = unlisted
                    whens[i] = unlisted.name
            lets = [(n, _flat(c.expanded, as_double)) for r in rules if _loops(r) for n, c in r.lets]
            compiled = tuple(_compile_rule(r, as_double, as_text, frozenset(read), screens) for r in rules)
            body = " + ".join(f"(({w}) ? {1 << i} : 0)" for i, w in enumerate(whens)) or "0"
            text = _bound(_read([(n, t) for n, t in lets if n not in screens], body), body)
            conditions = constants.program(text)
        except (_NotFlat, ValueError, RuntimeError):
            return None
        functions = _FUNCTION_CALL.search(text) is not None
        decides = tuple(sorted(_names(text, screens)))
        handed = tuple(screens.values())
        selectors = tuple(sorted({k for _, keys in needs.state if keys is not None for k in keys}))
        plan = _Plan.of(needs, frozenset(read))
        return cls(
            conditions,
            compiled,
            decides,
            functions,
            frozenset(read),
            constants.handed(),
            _Scratch(),
            handed,
            selectors,
            plan,
        )

    def findings(
        self,
        rules: Sequence[CompiledRule],
        proposal: ActionProposed,
        state: GovernanceState,
        needs: Needs,
        fields: Mapping[str, StateField],
    ) -> list[Finding] | None:
        """The findings of the rules that fired, in policy order, ending at the first deny; None when the nested
        layout must decide."""
        values = self._values(proposal, state, needs, fields)
        if values is None:
            return None
        given = proposal.args
        key = repr([given.get(k) for k in self.selectors]) if self.selectors else ""
        try:
            env = self.scratch.env(key, self.constants)
            if self.functions and not env.functions:
                _add_functions(env)
            objects = env.objects
            for name in self.decides:
                value = values[name]
                if objects.get(name, _MISSING) is not value:  # else held already (see _put)
                    _put(env, name, value)
            fired = self.conditions.execute(env.context)
            if type(fired) is not int:
                return None
            if not fired:
                return []
            plan = self.fired.get(fired)
            if plan is None:
                plan = _Fired.of(fired, rules, self.rules, self.decides)
                if len(self.fired) < MAX_FIRED_PLANS:
                    self.fired[fired] = plan
            for key, name in plan.texts:  # a rule fired: the numbers its reason shows as text, too
                values[key] = str(to_decimal(given[name]))
            if plan.functions and not env.functions:
                _add_functions(env)
            for name in plan.reads:  # everything their programs read, handed over before the first one runs
                _put(env, name, values[name])
            handed = _Handed(env, values, plan.held)
            out: list[Finding] = []
            for rule, flat in plan.chosen:
                computed = () if flat.program is None else flat.program.execute(env.context)
                reason = "".join([p if isinstance(p, str) else _render(p, handed, computed) for p in flat.reason])
                amount = None
                if flat.amount is not None and rule.outcome != "deny":
                    amount = handed.value(flat.amount, computed)
                out.append(rule.decided(reason, amount))
        except Exception:  # decided again over the nested layout, whose failure reasons are the recorded ones
            return None
        return out

    def _values(
        self, proposal: ActionProposed, state: GovernanceState, needs: Needs, fields: Mapping[str, StateField]
    ) -> dict[str, Any] | None:
        """Every flat variable the action's expressions read, by name; None when an argument they read is missing
        or a numeric one is not a number."""
        given = proposal.args
        values: dict[str, Any] = {}
        plan = self.plan
        assert plan is not None
        for name, key, numeric in plan.args:
            if name not in given:
                return None
            value = given[name]
            if numeric:
                value = _number(value)
                if value is None:
                    return None
                values[key] = value
            else:
                values[key] = cel_value(value)
        for name, key in plan.normalized:
            if name not in given:
                return None
            values[key] = normal_value(given[name])
        for name, key, normalized_key in plan.joined:
            if name not in given:
                return None
            normalized = values.get(normalized_key)
            if type(normalized) is list and {*map(type, normalized)} <= _STR:  # each string normalized once
                values[key] = "\n".join(normalized)
            else:
                values[key] = joined_value(given[name])
        if needs.proposer:
            values["proposer"] = proposal.agent
        if needs.action:
            values["action"] = proposal.action
        scratch = self.scratch
        for field, key, keys in plan.state:
            wanted = None if keys is None else [given.get(k) for k in keys]
            values[key] = scratch.state_value(state, field, wanted, fields[field])
        for screen in self.screens:
            computed = screen.compute(values)
            if computed is None:
                return None
            values[screen.name] = computed
        return values


@dataclass(frozen=True, slots=True)
class _Fired:
    """What one set of fired rules (the bits the conditions returned) runs: the rules, in policy order up to the first
    deny; the numeric arguments their reasons show as text; the names their programs read that the conditions did
    not (handed over before the first program runs); whether one calls a function. Built the first time the set
    fires, not on every proposal."""

    chosen: tuple[tuple[CompiledRule, _FlatRule], ...]
    texts: tuple[tuple[str, str], ...]  # (variable, argument)
    reads: tuple[str, ...]
    functions: bool
    held: frozenset[str]  # what the environment holds after the reads are handed

    @classmethod
    def of(
        cls, fired: int, rules: Sequence[CompiledRule], flats: Sequence[_FlatRule], decides: Sequence[str]
    ) -> _Fired:
        chosen: list[tuple[CompiledRule, _FlatRule]] = []
        for i, (rule, flat) in enumerate(zip(rules, flats, strict=True)):
            if fired >> i & 1:
                chosen.append((rule, flat))
                if rule.outcome == "deny":
                    break
        texts = dict.fromkeys(name for _, flat in chosen for name in flat.texts)
        held = set(decides)
        reads: list[str] = []
        for _, flat in chosen:
            for name in sorted(flat.reads - held):
                held.add(name)
                reads.append(name)
        return cls(
            tuple(chosen),
            tuple((f"{TEXT_PREFIX}{name}", name) for name in texts),
            tuple(reads),
            any(flat.functions for _, flat in chosen),
            frozenset(held),
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    """The flat variables of one action's rules, each with the name it is handed over as (built once, not per
    proposal)."""

    args: tuple[tuple[str, str, bool], ...]  # (argument, variable, numeric)
    normalized: tuple[tuple[str, str], ...]
    joined: tuple[tuple[str, str, str], ...]  # (argument, variable, its normalized variable)
    state: tuple[tuple[str, str, tuple[str, ...] | None], ...]  # (field, variable, arguments naming its entries)

    @classmethod
    def of(cls, needs: Needs, numbers: frozenset[str]) -> _Plan:
        assert needs.args is not None
        assert needs.normalized is not None
        assert needs.joined is not None
        return cls(
            tuple((n, f"args__{n}", n in numbers) for n in sorted(needs.args)),
            tuple((n, f"normalized__{n}") for n in sorted(needs.normalized)),
            tuple((n, f"joined__{n}", f"normalized__{n}") for n in sorted(needs.joined)),
            tuple((field, f"state__{field}", keys) for field, keys in needs.state),
        )


def normal_value(value: object) -> Any:
    """An argument with case and runs of whitespace ignored (strings, and each string of a list)."""
    if isinstance(value, str):
        return normal(value)
    if isinstance(value, list):
        return [normal(v) if isinstance(v, str) else cel_value(v) for v in value]
    return cel_value(value)


def joined_value(value: object) -> str:
    """A string argument, or the strings of a list, normalized (normal_value) and joined by line breaks: one text
    for one `contains` to search where looping over the list would test each string. normal() leaves no line break,
    so a normalized phrase is in the joined text exactly when it is in one of the strings."""
    if isinstance(value, list):
        return "\n".join(normal(v) for v in value)
    return normal(value)


def _number(value: object) -> int | float | None:
    """A numeric argument as CEL is handed it (read back as a double by `double(…)`): a whole number as an int,
    which the binding converts without a failed try, any other as the double; None when it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = to_decimal(value)
        except ValueError:
            return None
    if not isinstance(value, (int, float, Decimal)):
        return None
    try:
        double = float(value)
    except (OverflowError, ValueError):
        return None
    if double.is_integer() and abs(double) <= EXACT_INTS and (double != 0.0 or math.copysign(1.0, double) > 0):
        return int(double)
    return double


def _put(env: _Env, name: str, value: Any) -> None:
    """Hand a value to the environment, unless the environment holds it already (the same repr: equal and of the
    same types all the way down, where 1 == 1.0 == True in Python, not in CEL): a state value that did not change,
    an argument the last proposal of this action gave too (the same region, the same claims). Comparing reprs
    costs a fraction of converting the value again, and a value not handed over leaves the binding's environment
    built (nothing to copy again before the next program runs when no value changed)."""
    if env.objects.get(name, _MISSING) is value:
        return
    shown = repr(value)
    if env.held.get(name) == shown:
        env.objects[name] = value
        return
    env.held.pop(name, None)
    env.objects.pop(name, None)
    env.context.add_variable(name, value)
    env.held[name] = shown
    env.objects[name] = value


def _add_functions(env: _Env) -> None:
    for name, function in FUNCTIONS.items():
        env.context.add_function(name, function)
    env.functions = True


class _Handed:
    """The values of one proposal, and which of them the environment holds."""

    __slots__ = ("env", "names", "values")

    def __init__(self, env: _Env, values: dict[str, Any], names: frozenset[str]) -> None:
        self.env = env
        self.values = values
        self.names = names

    def hand(self, name: str) -> None:
        if name not in self.names:
            _put(self.env, name, self.values[name])
            self.names = self.names | {name}

    def value(self, value: _Value, computed: Sequence[Any]) -> Any:
        """What CEL would give for the value: what the rule's program computed, or the value handed over when CEL
        gives it back as it was (plain), else its own program run (its name handed over first)."""
        if value.index is not None:
            return computed[value.index]
        assert value.name is not None
        held = self.values[value.name]
        if value.double:
            return float(held)
        if _plain(held):
            return held
        self.hand(value.name)
        assert value.program is not None
        return value.program.execute(self.env.context)


def _plain(value: Any) -> bool:
    """A value CEL gives back as it was handed (no conversion can fail or change it)."""
    return value is None or type(value) in (str, float, bool) or (type(value) is int and -(2**63) <= value < 2**63)


def _render(part: _Placeholder, handed: _Handed, computed: Sequence[Any]) -> str:
    if part.value.text is not None:
        return part.value.text
    shown = handed.value(part.value, computed)
    return formatted(repr(shown) if part.quoted else shown, part.fmt)


# ----- compiling -------------------------------------------------------------------------------------------------


def _flat(text: str, renamed: Mapping[str, str] | None = None) -> str:
    out = flattened(text, FLAT_VARIABLES, renamed)
    if out is None:
        raise _NotFlat(text)
    return out


class _Constants:
    """The literal lists and maps of an action's conditions, each read as a variable (`const__0`) that every
    environment is handed once: CEL builds a literal again on every evaluation, element by element."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # literal text → variable
        self._values: dict[str, Any] = {}

    def program(self, text: str) -> cel.Program:
        """The program of the text with `normal()` folded over literal lists and each literal read as a variable."""
        text = folded_normal(text)
        out: list[str] = []
        pos = 0
        for start, end in literal_spans(text):
            literal = text[start:end]
            name = self._names.get(literal)
            if name is None:
                value = cel.compile(literal).execute()
                if not _exact(value):
                    continue
                name = self._names[literal] = f"const__{len(self._names)}"
                self._values[name] = value
            out.append(text[pos:start])
            out.append(name)
            pos = end
        out.append(text[pos:])
        return cel.compile("".join(out))

    def handed(self) -> tuple[tuple[str, Any], ...]:
        return tuple(self._values.items())


def _exact(value: Any) -> bool:
    """Whether CEL takes the value back as the same value (no map key other than a string, no int beyond 64 bits)."""
    if isinstance(value, list):
        return all(_exact(v) for v in value)
    if isinstance(value, dict):
        return all(type(k) is str and _exact(v) for k, v in value.items())
    return _plain(value)


def _bound(lets: Sequence[tuple[str, str]], body: str) -> str:
    """The body with each let computed once, in order, and read as a name: CEL has no `let`, and a value handed over
    between two programs would make the binding build its environment again, so each is bound by a comprehension
    over a one-element list (`[<let>].map(let4__hits, <body>)[0]`, about 1 µs)."""
    for name, text in reversed(lets):
        body = f"[{text}].map({name}, {body})[0]"
    return body


def _is_value(name: str) -> bool:
    """Whether a name is a value the flat layout computes per proposal (`normalized__copy`), not a let."""
    return _NAME.fullmatch(name) is not None


def _read(lets: Sequence[tuple[str, str]], body: str) -> list[tuple[str, str]]:
    """The lets the body reads, directly or through a later let (a let nothing reads is not computed)."""
    kept: list[tuple[str, str]] = []
    texts = [body]
    for name, text in reversed(lets):
        if any(re.search(rf"\b{name}\b", t) for t in texts):
            kept.append((name, text))
            texts.append(text)
    return kept[::-1]


def _names(text: str, screens: Mapping[str, Screen | Unlisted]) -> set[str]:
    """The values a program's text reads: flat variables, and the screens it reads as names."""
    return set(_NAME.findall(text)) | {name for name in screens if re.search(rf"\b{name}\b", text)}


def _compile_rule(
    rule: CompiledRule,
    as_double: Mapping[str, str],
    as_text: Mapping[str, str],
    numbers: frozenset[str],
    screens: Mapping[str, Screen | Unlisted],
) -> _FlatRule:
    """A rule's reason and amount for the flat layout: what CEL must compute of them, as one program over the
    rule's lets. Reasons read numeric arguments as their text; a reason that loops reads the rule's lets as names
    bound once (a let expanded inside a comprehension is computed again for every element)."""
    over_lets = _hoists(rule) or _loops(rule)
    parts = rule.reason_over_lets if over_lets else rule.reason
    computed: list[str] = []  # the texts the rule's program computes, in order
    reason = tuple(p if isinstance(p, str) else _placeholder(p[0], p[1], as_text, computed) for p in parts)
    amount = None
    if rule.amount is not None:
        amount = _value(_flat(rule.amount.expanded, as_double), numbers, computed)
    named = {p.value.name for p in reason if not isinstance(p, str)} | {amount.name if amount else None}
    if not computed:
        return _FlatRule(None, reason, amount, frozenset(), functions=False, texts=_texts(named))
    lets = [(n, _flat(c.expanded, as_text)) for n, c in rule.lets if n not in screens] if over_lets else []
    body = "[" + ", ".join(computed) + "]"
    text = _bound(_read(lets, body), body)
    # the program runs only when the rule fired: its literals stay literals, not variables copied at every rebuild
    program = cel.compile(folded_normal(text))
    reads = frozenset(_names(text, screens))
    functions = _FUNCTION_CALL.search(text) is not None
    return _FlatRule(program, reason, amount, reads, functions, _texts(named | reads))


def _texts(names: set[str | None] | frozenset[str]) -> tuple[str, ...]:
    """The numeric arguments among the names read as their decimal text (`argtext__price` → `price`)."""
    return tuple(sorted(n.removeprefix(TEXT_PREFIX) for n in names if n is not None and n.startswith(TEXT_PREFIX)))


def _placeholder(compiled: Compiled, fmt: str, as_text: Mapping[str, str], computed: list[str]) -> _Placeholder:
    text = _flat(compiled.expanded, as_text)
    inner = whole_call(text, "quote")
    if inner is not None:
        text = inner
    if not cel.compile(text).variables():  # a constant: rendered once, here
        rendered = _rendered(text, fmt, quoted=inner is not None)
        if rendered is not None:
            return _Placeholder(_Value(text=rendered), fmt, inner is not None)
    return _Placeholder(_value(text, frozenset(), computed), fmt, inner is not None)


def _rendered(text: str, fmt: str, *, quoted: bool) -> str | None:
    """A placeholder that reads nothing, rendered; None when it fails (then it fails when rendered, as before)."""
    try:
        shown = cel.compile(text).execute(cel.Context({}, FUNCTIONS))
        return formatted(repr(shown) if quoted else shown, fmt)
    except Exception:
        return None


def _value(text: str, numbers: frozenset[str], computed: list[str]) -> _Value:
    """A value to compute: one name handed over, read as it was handed (`double(args__x)` of a numeric argument is
    that argument's double), or else one more value of the rule's program (its index in `computed`)."""
    double = re.fullmatch(r"\s*double\(\s*args__(\w+)\s*\)\s*", text)
    if double is not None and double.group(1) in numbers:
        return _Value(name=f"args__{double.group(1)}", double=True)
    name = bare_name(text)
    if name is not None and _NAME.fullmatch(name):  # not a let: lets are bound inside the rule's program only
        return _Value(name=name, program=cel.compile(folded_normal(text)))
    computed.append(text)
    return _Value(index=len(computed) - 1)


def _hoists(rule: CompiledRule) -> bool:
    """Whether the rule's reason reads its lets as names bound once: only when the reason loops (a let expanded
    inside a comprehension is computed for every element; elsewhere evaluating it in place is cheaper than binding
    it), and never for a let that may be a CEL uint (kept as it was when lets were handed over through Python,
    where a uint came back as an int)."""
    if not rule.lets or not rule.reason_over_lets:
        return False
    reason = "\n".join(p[0].expanded for p in rule.reason if not isinstance(p, str))
    lets = "\n".join(c.expanded for _, c in rule.lets)
    return _LOOP.search(reason) is not None and _UINT.search(lets) is None


def _loops(rule: CompiledRule) -> bool:
    """Whether one of the rule's lets loops (`hits: limits.claims.banned.filter(…)`): then it is computed once,
    bound around the conditions, and the condition and the reason read it as a name."""
    if not rule.lets or rule.when_over_lets is None or not rule.reason_over_lets:
        return False
    lets = "\n".join(c.expanded for _, c in rule.lets)
    return _LOOP.search(lets) is not None and _UINT.search(lets) is None
