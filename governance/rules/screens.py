"""Phrase screens: a let that searches one text for each phrase of a literal list, computed in Python.

`hits: normal(limits.claims.banned).filter(p, copy_and_claims.contains(p))` costs CEL one loop step and one
`contains` call per phrase (about 1 µs each, on every proposal of the action). Its value is plain: the phrases, in
their order, that the text holds. The flat layout recognizes a let of exactly this shape and hands its value to
CEL as a variable, computed once per proposal; the rule stays written in the policy, and the nested layout still
runs it as written. The shape:

- `<list>.filter(<p>, <text>.contains(<p>))`, the list a literal list of strings (the policy's phrases, already
  normalized at load);
- the text a string value (`normalized__message`), a string literal, or such terms joined by `+` in brackets, or
  a let that is one of those (`copy_and_claims: 'normalized.copy + "\\n" + joined.claims'`).

For strings, CEL's `+` is concatenation and `s.contains(p)` a substring test: Python's `+` and `in`. A value that
is not a string (where CEL's `+` or `contains` would do something else or fail) or that CEL cannot take (a lone
surrogate) gives None: the nested layout decides, as for any unusual value.

A condition of the shape `<list>.exists(c, !(c in <literal strings>))` (a claim outside the approved library) is
computed the same way (Unlisted): true when some string of the list is none of the literal's, by string equality
as CEL's `in` compares strings; a list holding anything but strings gives None.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coalition.domain.cel_language import cel
from coalition.governance.expressions import literal_spans, string_end

_LOOP = re.compile(r"\s*\.\s*filter\s*\(\s*([A-Za-z_]\w*)\s*,")
_NAME = re.compile(r"[A-Za-z_]\w*")

Part = tuple[bool, str]  # (a value's name, or a literal's text), in order


@dataclass(frozen=True, slots=True)
class Screen:
    """A let that holds the phrases found in a text, and how to compute it."""

    name: str  # the let's variable (`let4__hits`)
    phrases: tuple[str, ...]
    text: tuple[Part, ...]

    @property
    def reads(self) -> frozenset[str]:
        return frozenset(part for named, part in self.text if named)

    def compute(self, values: Mapping[str, Any]) -> list[str] | None:
        """The phrases the text holds, in list order; None when a value read is not a string CEL would take."""
        pieces: list[str] = []
        for named, part in self.text:
            if not named:
                pieces.append(part)
                continue
            value = values.get(part)
            if type(value) is not str or not (value.isascii() or _utf8(value)):
                return None
            pieces.append(value)
        text = "".join(pieces)
        return [phrase for phrase in self.phrases if phrase in text]


@dataclass(frozen=True, slots=True)
class Unlisted:
    """A condition that holds when some string of a list value is not in a literal list of strings."""

    name: str  # the variable that replaces the condition (`unlisted__2`)
    value: str  # the list value searched (`normalized__claims`)
    listed: frozenset[str]

    @property
    def reads(self) -> frozenset[str]:
        return frozenset({self.value})

    def compute(self, values: Mapping[str, Any]) -> bool | None:
        """Whether an element is not listed; None when the value is not a list of strings CEL would take."""
        items = values.get(self.value)
        if type(items) is not list:
            return None
        for item in items:
            if type(item) is not str or not (item.isascii() or _utf8(item)):
                return None
        return not self.listed.issuperset(items)  # some item is not listed


_UNLISTED = re.compile(
    r"\s*([A-Za-z_]\w*)\s*\.\s*exists\s*\(\s*([A-Za-z_]\w*)\s*,\s*!\s*\(\s*\2\s+in\s+(.*)\)\s*\)\s*", re.DOTALL
)


def unlisted_of(name: str, condition: str, is_value: Callable[[str], bool]) -> Unlisted | None:
    """The condition as an Unlisted named `name` when it is `<value>.exists(c, !(c in <literal strings>))`."""
    match = _UNLISTED.fullmatch(condition)
    if match is None or not is_value(match.group(1)):
        return None
    literal = match.group(3).strip()
    if literal_spans(literal) != [(0, len(literal))] or not literal.startswith("["):
        return None
    try:
        listed = cel.compile(literal).execute()
    except (ValueError, RuntimeError):
        return None
    if not isinstance(listed, list) or not all(type(v) is str for v in listed):
        return None
    return Unlisted(name, match.group(1), frozenset(listed))


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def screens_of(lets: Sequence[tuple[str, str]], is_value: Callable[[str], bool]) -> dict[str, Screen]:
    """The screens among the lets (name → flat text, each reading only the lets before it), by name. `is_value`:
    whether a name is a value the flat layout computes (`normalized__copy`)."""
    strings: dict[str, tuple[Part, ...]] = {}  # lets that are a text
    screens: dict[str, Screen] = {}
    for name, text in lets:
        parts = _text(text, strings, is_value)
        if parts is not None:
            strings[name] = parts
            continue
        screen = _screen(name, text, strings, is_value)
        if screen is not None:
            screens[name] = screen
    return screens


def _screen(
    name: str, text: str, strings: Mapping[str, tuple[Part, ...]], is_value: Callable[[str], bool]
) -> Screen | None:
    text = text.strip()
    spans = literal_spans(text)
    if not spans or spans[0][0] != 0 or not text.startswith("["):
        return None
    end = spans[0][1]
    loop = _LOOP.match(text, end)
    if loop is None or not text.endswith(")"):
        return None
    variable = loop.group(1)
    body = re.fullmatch(rf"(.*)\.\s*contains\s*\(\s*{variable}\s*\)\s*\)", text[loop.end() :], re.DOTALL)
    if body is None:
        return None
    tokens = _tokens(body.group(1))
    if tokens is None:
        return None
    parsed = _term(tokens, 0, strings, is_value)  # the receiver of `.contains` is one term, not a sum
    if parsed is None or parsed[1] != len(tokens) or any(named and p == variable for named, p in parsed[0]):
        return None
    try:
        phrases = cel.compile(text[:end]).execute()
    except (ValueError, RuntimeError):
        return None
    if not isinstance(phrases, list) or not all(type(p) is str for p in phrases):
        return None
    return Screen(name, tuple(phrases), parsed[0])


def _text(
    text: str, strings: Mapping[str, tuple[Part, ...]], is_value: Callable[[str], bool]
) -> tuple[Part, ...] | None:
    """The parts of a text that is string values and literals joined by `+`, or None."""
    tokens = _tokens(text)
    if tokens is None:
        return None
    parsed = _sum(tokens, 0, strings, is_value)
    return parsed[0] if parsed is not None and parsed[1] == len(tokens) else None


Token = tuple[str, str]  # (kind: "(", ")", "+", "name", "string"; the text, or a literal's value)


def _tokens(text: str) -> list[Token] | None:
    out: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()+":
            out.append((ch, ch))
            i += 1
            continue
        past = string_end(text, i)
        if past is not None:
            try:
                value = cel.compile(text[i:past]).execute()
            except (ValueError, RuntimeError):
                return None
            if type(value) is not str:  # a bytes literal
                return None
            out.append(("string", value))
            i = past
            continue
        name = _NAME.match(text, i)
        if name is None:
            return None
        out.append(("name", name.group()))
        i = name.end()
    return out


def _sum(
    tokens: Sequence[Token], i: int, strings: Mapping[str, tuple[Part, ...]], is_value: Callable[[str], bool]
) -> tuple[tuple[Part, ...], int] | None:
    parsed = _term(tokens, i, strings, is_value)
    if parsed is None:
        return None
    parts, i = parsed
    while i < len(tokens) and tokens[i][0] == "+":
        parsed = _term(tokens, i + 1, strings, is_value)
        if parsed is None:
            return None
        parts, i = parts + parsed[0], parsed[1]
    return parts, i


def _term(
    tokens: Sequence[Token], i: int, strings: Mapping[str, tuple[Part, ...]], is_value: Callable[[str], bool]
) -> tuple[tuple[Part, ...], int] | None:
    if i >= len(tokens):
        return None
    kind, text = tokens[i]
    if kind == "string":
        return ((False, text),), i + 1
    if kind == "name":
        if text in strings:
            return strings[text], i + 1
        return (((True, text),), i + 1) if is_value(text) else None
    if kind == "(":
        parsed = _sum(tokens, i + 1, strings, is_value)
        if parsed is None or parsed[1] >= len(tokens) or tokens[parsed[1]][0] != ")":
            return None
        return parsed[0], parsed[1] + 1
    return None
