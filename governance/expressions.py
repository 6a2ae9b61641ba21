"""Policy expressions: CEL (the Common Expression Language, through `common-expression-language`) compiled once
per policy load.

CEL has no I/O, no loops beyond bounded comprehensions, no assignment and no access to Python: an expression can
only read the values it is given. Before compiling, `limits.…` and `gates.…` paths are resolved against the policy
and replaced by literals (they are constants of the policy: resolving them once keeps the per-proposal context
small and turns a misspelt limit into a load-time error), and a rule's `let` names are expanded in place.

Every number an expression sees is a CEL double (integers and decimals alike), so `args.amount_usd > 250` and
`args.severity > gates.incident_severity.severity_bound` need no conversions. Numbers are therefore IEEE doubles:
a comparison after arithmetic (`base * 1.25`) is exact to ~15 significant digits.

A problem is one PolicyError naming the policy file, the YAML path of the expression and the column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from coalition.domain.cel_language import cel
from coalition.governance.errors import PolicyError
from coalition.governance.money import DOUBLE_DIGITS, from_double, usd

MAX_EXPRESSION_CHARS = 2000  # the shipped policies' longest is ~300; beyond it is a typo or an attack
MAX_NESTING = 16  # brackets inside brackets
MAX_COMPREHENSIONS = 4  # .exists/.all/.map/.filter/.exists_one per expression (each loops over a list)
MAX_NESTED_COMPREHENSIONS = 2  # a comprehension inside a comprehension costs the product of two list sizes

# What an expression may read, besides the policy's limits and gates (substituted as literals).
VARIABLES: frozenset[str] = frozenset({"args", "normalized", "joined", "proposer", "action", "state"})

_COMPREHENSIONS = frozenset({"exists", "all", "map", "filter", "exists_one"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue", "else", "for"})


class ExpressionProblem(ValueError):
    """What is wrong with one expression, and the 1-based column where it is (0: the whole expression)."""

    def __init__(self, reason: str, column: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.column = column

    def as_policy_error(self, source: str, where: str) -> PolicyError:
        at = f" (column {self.column})" if self.column else ""
        return PolicyError(source, where, f"{self.reason}{at}")


# ----- functions an expression may call (pure, total on strings) -----------------------------------------------


def normal(text: object) -> str:
    """Case and runs of whitespace ignored: what "the same words" means for claims and phrases."""
    return " ".join(str(text).split()).casefold()


def quote(value: object) -> str:
    """A value as Python shows it in a reason ('claim' with its quotes)."""
    return repr(value)


FUNCTIONS: dict[str, Callable[[Any], str]] = {"normal": normal, "quote": quote}


# ----- values ----------------------------------------------------------------------------------------------------

# What a program runs against: the variables (and functions) converted to CEL values once. A dict handed to
# `Program.execute` is converted again on every call, at ~1-2 µs per value (the binding tries bool, int, float,
# datetime... in turn before a string), which was most of what a rule cost.
Environment = cel.Context | dict[str, Any]


def environment(variables: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]] | None = None) -> Environment:
    """The variables and functions as one environment, converted once for every program that reads them."""
    try:
        return cel.Context(dict(variables), dict(functions) if functions else None)
    except Exception:  # a value CEL cannot take: each execute() raises it, where the caller fails closed
        return {**variables, **(functions or {})}


def cel_value(value: object) -> Any:
    """A JSON-like value as an expression sees it: every number a double, mappings with string keys."""
    kind = type(value)  # the JSON types first, by exact type: isinstance against Mapping is an ABC check
    if kind is str:
        return value
    if kind is int or kind is float:
        return float(value)  # type: ignore[arg-type]
    if kind is list:
        return [cel_value(v) for v in value]  # type: ignore[attr-defined]
    if kind is dict:
        return {str(k): cel_value(v) for k, v in value.items()}  # type: ignore[attr-defined]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): cel_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [cel_value(v) for v in items]
    return str(value)


def cel_literal(value: object) -> str:
    """CEL source text of a constant (what a `limits.…` path is replaced by)."""
    value = cel_value(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        if text in ("inf", "-inf", "nan"):
            raise ExpressionProblem(f"the constant {text} cannot be used in an expression")
        return text if ("." in text or "e" in text) else f"{text}.0"
    if isinstance(value, str):
        return _string_literal(value)
    if isinstance(value, list):
        return "[" + ", ".join(cel_literal(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_string_literal(k)}: {cel_literal(v)}" for k, v in value.items()) + "}"


def _string_literal(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ----- scanning --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: int  # 0-based offset
    member: bool  # preceded by "." (a field, not a variable)


def _scan(text: str) -> tuple[list[_Token], int, list[int]]:
    """Identifiers outside string literals, the deepest bracket nesting, and the bracket depth of each
    comprehension call (raises ExpressionProblem for an unterminated string or unbalanced brackets)."""
    tokens: list[_Token] = []
    depth = deepest = 0
    comprehension_depths: list[int] = []
    open_comprehensions: list[int] = []  # bracket depth at which each open comprehension's "(" sits
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        past = string_end(text, i)
        if past is not None:
            i = past
            continue
        if ch.isalpha() or ch == "_":
            match = _IDENT.match(text, i)
            assert match is not None
            word = match.group()
            j = i - 1
            while j >= 0 and text[j] in " \t\r\n":
                j -= 1
            member = j >= 0 and text[j] == "."
            tokens.append(_Token(word, i, member))
            end = match.end()
            if member and word in _COMPREHENSIONS:
                k = end
                while k < n and text[k] in " \t\r\n":
                    k += 1
                if k < n and text[k] == "(":
                    comprehension_depths.append(len(open_comprehensions))
                    open_comprehensions.append(depth)
            i = end
            continue
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise ExpressionProblem(f"unbalanced {ch!r}", i + 1)
            if ch == ")" and open_comprehensions and open_comprehensions[-1] == depth:
                open_comprehensions.pop()
        i += 1
    if depth > 0:
        raise ExpressionProblem("unbalanced brackets: one is never closed", n)
    return tokens, deepest, comprehension_depths


def string_end(text: str, i: int) -> int | None:
    """The offset just past the string literal (raw or bytes too) that starts at text[i]; None when none does."""
    if text[i] in "\"'":
        return _skip_string(text, i)
    if text[i] in "rRbB" and i + 1 < len(text) and text[i + 1] in "\"'" and not _ident_before(text, i):
        return _skip_string(text, i + 1)
    return None


def _ident_before(text: str, i: int) -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")


def _skip_string(text: str, i: int) -> int:
    """The offset just past the string literal that starts at text[i] (a quote)."""
    quote_char = text[i]
    triple = text[i : i + 3] == quote_char * 3
    closing = quote_char * 3 if triple else quote_char
    j = i + len(closing)
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text.startswith(closing, j):
            return j + len(closing)
        if not triple and text[j] == "\n":
            break
        j += 1
    raise ExpressionProblem("unterminated string literal", i + 1)


# ----- compiling -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compiled:
    """One compiled expression: the CEL program, the source CEL ran (after substitution), and what it reads."""

    source: str
    expanded: str
    program: cel.Program
    state_fields: frozenset[str]


def let_order(lets: Mapping[str, str]) -> dict[str, str]:
    """The lets in an order in which each reads only lets before it: the order they were written in when it is
    one. A policy recorded in the ledger keeps its document with the keys sorted, so a run's replay meets its lets
    in name order; both orders must compile to the same rule. ExpressionProblem when lets read each other in a
    cycle. A let whose text does not scan is left where it is: compiling it reports the problem."""
    reads: dict[str, set[str]] = {}
    for name, text in lets.items():
        try:
            tokens = check_shape(text)
        except ExpressionProblem:
            reads[name] = set()
            continue
        bound = _comprehension_variables(text, tokens)
        reads[name] = {
            t.text
            for t in tokens
            if t.text in lets and t.text != name and not t.member and t.text not in bound and not _is_call(text, t)
        }
    ordered: dict[str, str] = {}
    while len(ordered) < len(lets):
        ready = next((n for n in lets if n not in ordered and reads[n] <= ordered.keys()), None)
        if ready is None:
            cycle = ", ".join(n for n in lets if n not in ordered)
            raise ExpressionProblem(f"the lets {cycle} read one another in a cycle")
        ordered[ready] = lets[ready]
    return ordered


def check_shape(text: str) -> tuple[_Token, ...]:
    """Size, nesting and comprehension limits, then CEL's own parser; the identifiers of the text."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionProblem("the expression is empty")
    return _shape(text)


# A policy's load checks each text's shape once for its lets' order and again for each compile of it: 145 checks of
# 53 texts for the shipped policy (~23 µs each, the scan in Python). The shape and the identifiers are a function of
# the text alone (as is its program, `_program`): one check per text serves every load in the process. A text whose
# shape is refused raises, and is not kept.
@lru_cache(maxsize=4096)
def _shape(text: str) -> tuple[_Token, ...]:
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionProblem(f"the expression is {len(text):,} characters long; at most {MAX_EXPRESSION_CHARS:,}")
    tokens, deepest, comprehensions = _scan(text)
    if deepest > MAX_NESTING:
        raise ExpressionProblem(f"brackets nest {deepest} deep; at most {MAX_NESTING}")
    if len(comprehensions) > MAX_COMPREHENSIONS:
        raise ExpressionProblem(f"{len(comprehensions)} comprehensions; at most {MAX_COMPREHENSIONS} per expression")
    if comprehensions and max(comprehensions) >= MAX_NESTED_COMPREHENSIONS:
        raise ExpressionProblem(f"comprehensions nest more than {MAX_NESTED_COMPREHENSIONS} deep")
    _parse(text)
    return tuple(tokens)


def _parse(text: str) -> cel.Program:
    try:
        return _program(text)
    except (ValueError, RuntimeError) as exc:
        raise ExpressionProblem(*_syntax_message(str(exc))) from None


# A policy's load compiles each expression as written (its syntax, with the author's columns) and as expanded, and
# again over its rule's lets: 254 compiles of 114 texts for the shipped policy, ~70 µs each, most of a load. A text
# always compiles to the same program, and a program holds no state between evaluations (every caller hands it its
# context), so one program per text serves every load in the process: a replay or verify that loads the policy its
# run loaded, the console that loads a run's policy for each decision. A text that does not compile raises, and is
# not kept.
@lru_cache(maxsize=4096)
def _program(text: str) -> cel.Program:
    return cel.compile(text)


_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")


def _syntax_message(message: str) -> tuple[str, int]:
    """CEL's parser message as one line and the column it names."""
    match = _POSITION.search(message)
    if match is None:
        return (" ".join(message.split())[:200], 0)
    line, column, what = int(match.group(1)), int(match.group(2)), match.group(3)
    what = what.split("\n")[0].strip()
    what = what.replace("Syntax error: ", "syntax error: ")
    return (f"{what[:200]}" + (f" (line {line})" if line > 1 else ""), column)  # CEL counts from 1


def compile_expression(
    text: str,
    constants: Mapping[str, Mapping[str, Any]],
    lets: Mapping[str, Compiled] | None = None,
    *,
    variables: frozenset[str] = VARIABLES,
) -> Compiled:
    """Compile one expression: checks, `let` expansion, constant substitution, CEL compilation, and a check that
    it reads only known variables and functions. ExpressionProblem (with the column) when it cannot be used."""
    tokens = check_shape(text)
    expanded, state_fields = _expand(text, tokens, constants, lets or {}, variables)
    program = _parse(expanded)
    return Compiled(text, expanded, program, frozenset(state_fields))


def _expand(
    text: str,
    tokens: Sequence[_Token],
    constants: Mapping[str, Mapping[str, Any]],
    lets: Mapping[str, Compiled],
    variables: frozenset[str],
) -> tuple[str, set[str]]:
    """The text with lets expanded and constant paths replaced; the state fields it reads."""
    out: list[str] = []
    state_fields: set[str] = set()
    bound = _comprehension_variables(text, tokens)
    pos = 0
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.member or token.text in _RESERVED or token.text in bound:
            continue
        if _is_call(text, token):
            if token.text not in FUNCTIONS and token.text not in _CEL_FUNCTIONS:
                raise ExpressionProblem(f"unknown function {token.text!r}", token.start + 1)
            continue
        if token.text in lets:
            out.append(text[pos : token.start])
            out.append(f"({lets[token.text].expanded})")
            state_fields |= lets[token.text].state_fields
            pos = token.start + len(token.text)
            continue
        if token.text in constants:
            value: Any = constants[token.text]
            path = token.text
            end = token.start + len(token.text)
            while index < len(tokens) and tokens[index].member and _only_dot_between(text, end, tokens[index].start):
                if not isinstance(value, Mapping):
                    break
                key = tokens[index].text
                if key not in value:
                    known = ", ".join(sorted(str(k) for k in value)) or "none"
                    raise ExpressionProblem(f"unknown name {path}.{key} (known: {known})", tokens[index].start + 1)
                value = value[key]
                path = f"{path}.{key}"
                end = tokens[index].start + len(key)
                index += 1
            before = text[pos : token.start]
            folded = re.search(r"normal\(\s*$", before)
            after = re.match(r"\s*\)", text[end:])
            if folded and after and not (folded.start() > 0 and before[folded.start() - 1] in "._"):
                # normal(<constant>) is computed once, here: the policy's phrases as compared
                out.append(before[: folded.start()])
                out.append(cel_literal(_normalized(value)))
                pos = end + after.end()
                continue
            out.append(before)
            out.append(cel_literal(value))
            pos = end
            continue
        if token.text not in variables:
            names = ", ".join(sorted({*variables, *constants, *lets}))
            raise ExpressionProblem(f"unknown variable {token.text!r} (known: {names})", token.start + 1)
        if token.text == "state":
            nxt = tokens[index] if index < len(tokens) else None
            end = token.start + len(token.text)
            if nxt is None or not nxt.member or not _only_dot_between(text, end, nxt.start):
                raise ExpressionProblem("read one field of state (state.<field>), not state itself", token.start + 1)
            state_fields.add(nxt.text)
    out.append(text[pos:])
    return "".join(out), state_fields


def flattened(text: str, variables: frozenset[str], renamed: Mapping[str, str] | None = None) -> str | None:
    """The expression with every `v.field` of the given map variables read as one variable `v__field`, or None when
    one of them is used otherwise (whole, under has(), or as a comprehension's name). A map handed to CEL is
    converted key by key, and reading a field of it costs more than reading a variable: separate variables are
    about twice as fast both ways. (`v__field` cannot clash with a name a policy writes: `v` is none of its
    variables' names with a suffix, and unknown variables are refused at load.) `renamed`: another name for some
    fields (`{"args.price": "argtext__price"}`)."""
    tokens, _, _ = _scan(text)
    if _comprehension_variables(text, tokens) & variables:
        return None
    out: list[str] = []
    pos = 0
    for i, token in enumerate(tokens):
        if token.member:
            continue
        if token.text == "has" and _is_call(text, token):
            return None
        if token.text not in variables:
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        end = token.start + len(token.text)
        if nxt is None or not nxt.member or not _only_dot_between(text, end, nxt.start) or _is_call(text, nxt):
            return None
        out.append(text[pos : token.start])
        field = f"{token.text}.{nxt.text}"
        out.append(renamed[field] if renamed and field in renamed else f"{token.text}__{nxt.text}")
        pos = nxt.start + len(nxt.text)
    out.append(text[pos:])
    return "".join(out)


def whole_call(text: str, function: str) -> str | None:
    """The argument text when the whole expression is one call `function(…)`, else None (`quote(x) + "!"` is not
    one call; brackets inside string literals do not count)."""
    text = text.strip()
    match = re.match(rf"{function}\s*\(", text)
    if match is None:
        return None
    try:
        end = _closing(text, match.end() - 1)
    except ExpressionProblem:
        return None
    return text[match.end() : end - 1] if end == len(text) else None


def literal_spans(text: str) -> list[tuple[int, int]]:
    """Where the text writes list or map literals that read nothing (`["CA", "TX"]`, `{"floor": 20.0}`), outermost
    only, as (start, end) offsets. An index (`x[0]`) is no literal; a literal naming anything but true, false and
    null (a variable, a function, `1u`, `1e5`) is left out."""
    spans: list[tuple[int, int]] = []
    for i in _brackets(text):
        if text[i] not in "[{" or (spans and i < spans[-1][1]) or _indexes(text, i):
            continue
        end = _closing(text, i)
        if end is not None and all(t.text in ("true", "false", "null") for t in _scan(text[i:end])[0]):
            spans.append((i, end))
    return spans


def _brackets(text: str) -> list[int]:
    """The offsets of the brackets outside string literals."""
    out: list[int] = []
    i = 0
    while (found := _QUOTE_OR_BRACKET.search(text, i)) is not None:
        if found.group() in "\"'":
            i = _skip_string(text, found.start())
        else:
            out.append(found.start())
            i = found.end()
    return out


_QUOTE_OR_BRACKET = re.compile(r"[\"'()\[\]{}]")


def folded_normal(text: str) -> str:
    """The text with `normal(p)` computed once per element where a comprehension loops over a literal list of
    strings: `["A b", "C"].filter(p, normal(p) == x)` becomes `[["A b", "a b"], ["C", "c"]].filter(p, p[1] == x)
    .map(p, p[0])` (same value; no call back into Python for each element). The first element whose normal form
    is a value, `["A b", "C"].filter(p, normal(p) == x)[0]`, becomes a lookup, `{"a b": "A b", "c": "C"}[x]`: the
    same element, and an error where there is none, without a loop (a tenth of its cost)."""
    out: list[str] = []
    pos = 0
    for start, end in literal_spans(text):
        if start < pos:
            continue
        loop = re.compile(r"\s*\.\s*(filter|exists|exists_one|all|map)\s*\(\s*([A-Za-z_]\w*)\s*,").match(text, end)
        if loop is None:
            continue
        close = _closing(text, text.index("(", end))
        value = cel.compile(text[start:end]).execute()
        if close is None or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            continue
        macro, name = loop.group(1), loop.group(2)
        first = _FIRST.match(text, close) if macro == "filter" else None
        compared = _compared_with_normal(text[loop.end() : close - 1], name) if first is not None else None
        if first is not None and compared is not None:
            lookup: dict[str, str] = {}
            for v in value:
                lookup.setdefault(normal(v), v)  # the first element of each normal form, as filter()[0] gives
            out.append(text[pos:start])
            out.append(f"{cel_literal(lookup)}[{compared}]")
            pos = first.end()
            continue
        body = _over_pairs(text[loop.end() : close - 1], name)
        if body is None:
            continue
        out.append(text[pos:start])
        out.append(cel_literal([[v, normal(v)] for v in value]))
        out.append(f".{macro}({name},{body})" + (f".map({name}, {name}[0])" if macro == "filter" else ""))
        pos = close
    out.append(text[pos:])
    return "".join(out)


_FIRST = re.compile(r"\s*\[\s*0\s*\]")


def _compared_with_normal(body: str, name: str) -> str | None:
    """X when a comprehension's body is `normal(p) == X` or `X == normal(p)`, X one operand (no operator outside
    its brackets, so the `==` is the body's) that does not read `p`; else None."""
    call = rf"normal\s*\(\s*{name}\s*\)"
    match = re.fullmatch(rf"\s*{call}\s*==\s*(.+?)\s*", body, re.DOTALL) or re.fullmatch(
        rf"\s*(.+?)\s*==\s*{call}\s*", body, re.DOTALL
    )
    if match is None or not _one_operand(match.group(1)):
        return None
    try:
        tokens, _, _ = _scan(match.group(1))
    except ExpressionProblem:
        return None
    return None if any(t.text == name and not t.member for t in tokens) else match.group(1)


def _one_operand(text: str) -> bool:
    """Whether the text has no operator outside brackets and string literals (`(hits)[0]`, `x.y`, `f(a || b)`)."""
    depth = 0
    i = 0
    while i < len(text):
        past = string_end(text, i)
        if past is not None:
            i = past
            continue
        ch = text[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and ch in "|&?:=!<>+-*/%,":
            return False
        elif depth == 0 and (ch.isalpha() or ch == "_"):
            word = _IDENT.match(text, i)
            assert word is not None
            if word.group() == "in":
                return False
            i = word.end()
            continue
        i += 1
    return True


def _over_pairs(body: str, name: str) -> str | None:
    """A comprehension's body reading its variable as a pair [text, normal(text)]: `normal(p)` → `p[1]`, any other
    `p` → `p[0]`; None when it calls no `normal(p)` or binds `p` again."""
    try:
        tokens, _, _ = _scan(body)
    except ExpressionProblem:
        return None
    if name in _comprehension_variables(body, tokens):
        return None
    out: list[str] = []
    pos = 0
    folded = False
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.member:
            continue
        call = re.compile(rf"normal\s*\(\s*{name}\s*\)").match(body, token.start)
        if token.text == "normal" and call is not None:
            out.append(body[pos : token.start])
            out.append(f"{name}[1]")
            pos = call.end()
            folded = True
            index += 1  # the name inside the call
            continue
        if token.text == name:
            out.append(body[pos : token.start])
            out.append(f"{name}[0]")
            pos = token.start + len(name)
    out.append(body[pos:])
    return "".join(out) if folded else None


def _indexes(text: str, i: int) -> bool:
    """Whether the bracket at text[i] indexes what comes before it (`x[0]`, `f(x)[0]`, `[a][0]`)."""
    j = i - 1
    while j >= 0 and text[j] in " \t\r\n":
        j -= 1
    if j >= 0 and (text[j].isalnum() or text[j] == "_"):
        word = re.search(r"[A-Za-z_0-9]+$", text[: j + 1])
        return word is None or word.group() != "in"  # `x in [...]` tests a literal
    return j >= 0 and text[j] in ")]}\"'"


def _closing(text: str, start: int) -> int | None:
    """The offset just past the bracket closing the one at text[start] (string literals skipped)."""
    depth = 0
    for i in _brackets(text[start:]):
        depth += 1 if text[start + i] in "([{" else -1
        if depth == 0:
            return start + i + 1
    return None


def bare_name(text: str) -> str | None:
    """The variable when the whole expression is one (`x` or `(x)`), else None."""
    match = re.fullmatch(r"\s*(\()?\s*([A-Za-z_]\w*)\s*(\))?\s*", text)
    if match is None or bool(match.group(1)) != bool(match.group(3)) or match.group(2) in _RESERVED:
        return None
    return match.group(2)


def _normalized(value: Any) -> Any:
    if isinstance(value, str):
        return normal(value)
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normalized(v) for k, v in value.items()}
    return value


def _only_dot_between(text: str, end: int, start: int) -> bool:
    return text[end:start].strip() == "."


def _is_call(text: str, token: _Token) -> bool:
    k = token.start + len(token.text)
    while k < len(text) and text[k] in " \t\r\n":
        k += 1
    return k < len(text) and text[k] == "("


def _comprehension_variables(text: str, tokens: Sequence[_Token]) -> set[str]:
    """The loop variables of comprehensions (`x` in `list.exists(x, …)`): names an expression binds itself."""
    bound: set[str] = set()
    for i, token in enumerate(tokens[:-1]):
        if token.member and token.text in _COMPREHENSIONS:
            nxt = tokens[i + 1]
            between = text[token.start + len(token.text) : nxt.start]
            if between.strip() == "(":
                bound.add(nxt.text)
    return bound


# CEL's standard functions called as `f(x)` (methods such as `.size()` and `.contains()` are members).
_CEL_FUNCTIONS = frozenset(
    {"size", "int", "uint", "double", "string", "bytes", "bool", "type", "has", "dyn", "duration", "timestamp",
     "matches", "max", "min"}
)  # fmt: skip


def compile_template(
    template: str, constants: Mapping[str, Mapping[str, Any]], lets: Mapping[str, Compiled]
) -> tuple[str | tuple[Compiled, str], ...]:
    """A reason template: text with `{expression}` or `{expression|format}` placeholders (format: usd, int, dec,
    or none); `{{` and `}}` are literal braces."""
    parts: list[str | tuple[Compiled, str]] = []
    i, n = 0, len(template)
    text: list[str] = []
    while i < n:
        ch = template[i]
        if ch in "{}" and template[i : i + 2] == ch * 2:
            text.append(ch)
            i += 2
            continue
        if ch == "}":
            raise ExpressionProblem("a '}' without its '{' (write '}}' for a brace)", i + 1)
        if ch != "{":
            text.append(ch)
            i += 1
            continue
        end = _placeholder_end(template, i)
        body = template[i + 1 : end]
        expr, _, fmt = body.rpartition("|") if _format_suffix(body) else (body, "", "")
        fmt = fmt.strip()
        if fmt and fmt not in FORMATS:
            raise ExpressionProblem(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})", end)
        try:
            compiled = compile_expression(expr, constants, lets)
        except ExpressionProblem as exc:
            raise ExpressionProblem(exc.reason, i + 1 + exc.column if exc.column else i + 2) from None
        if text:
            parts.append("".join(text))
            text = []
        parts.append((compiled, fmt))
        i = end + 1
    if text:
        parts.append("".join(text))
    return tuple(parts)


def _format_suffix(body: str) -> bool:
    head, sep, fmt = body.rpartition("|")
    return bool(sep) and bool(head.strip()) and fmt.strip().isidentifier() and not head.rstrip().endswith("|")


def _placeholder_end(template: str, start: int) -> int:
    """The offset of the '}' closing the placeholder opened at `start` (strings and nested braces skipped)."""
    depth = 0
    i = start
    while i < len(template):
        ch = template[i]
        if ch in "\"'":
            i = _skip_string(template, i)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ExpressionProblem("a '{' placeholder is never closed", start + 1)


_WHOLE = 10**15  # a whole number below this is exactly one double, and shown by repr without an exponent


def _usd(value: Any) -> str:
    kind = type(value)  # whole numbers, most of what reasons show, without the Decimal round trip (same text)
    if kind is float and value.is_integer() and 0 < abs(value) < _WHOLE:  # not -0.0, which shows as -0.00
        return f"{int(value)}.00"
    if kind is int and -_WHOLE < value < _WHOLE:
        return f"{value}.00"
    if kind is str and 0 < len(value) < 16 and value.isascii() and value.isdigit():
        return f"{int(value)}.00"
    return usd(_decimal(value))


def _decimal(value: Any) -> Decimal:
    """A number as governance shows it: an argument's decimal text as given, a double as the decimal it stands for
    (its shortest repr without the arithmetic's error beyond 15 significant digits: money.from_double)."""
    if isinstance(value, str):
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return from_double(value) if isinstance(value, float) else Decimal(value)


def _int(value: Any) -> str:
    if type(value) is int:
        return str(value)
    return str(int(_decimal(value)))


def _dec(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))  # a whole number of the policy or the state (a decimal argument keeps its text)
        shown = repr(value)
        if len(shown) <= DOUBLE_DIGITS + 1 and "e" not in shown and math.isfinite(value):  # str(from_double(value))
            return shown
    return str(_decimal(value))


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


FORMATS: dict[str, Callable[[Any], str]] = {"usd": _usd, "int": _int, "dec": _dec}


def formatted(value: Any, fmt: str) -> str:
    """A placeholder's value as its reason shows it (`fmt`: one of FORMATS, or "" for the plain value)."""
    return FORMATS[fmt](value) if fmt else _plain(value)


def render(parts: Sequence[str | tuple[Compiled, str]], context: Environment) -> str:
    """The reason: each placeholder evaluated in the environment of the rule that fired and formatted."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        compiled, fmt = part
        out.append(formatted(compiled.program.execute(context), fmt))
    return "".join(out)
