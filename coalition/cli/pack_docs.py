"""`coalition pack docs PACK`: a pack's action reference, generated from its declarations — each action's doc row,
its arguments with their types and bounds (read from the pydantic argument model, the one schema governance and the
executor use), who proposes it by default, the argument its budget charges, its dependency keys, and the rules of
the pack's default policy that deny or escalate it (the gates). docs/packs/<pack>.md is this output; a test fails
when the committed file differs from what the declarations generate."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

import annotated_types
from pydantic.fields import FieldInfo

from coalition.domain import Action, IsoDate, Money, Number, Pack, Text
from coalition.governance.policy import Policy

# the argument types of coalition.domain.arguments, recognised by their validators (pydantic folds an Annotated
# type's metadata into the field's, beside the bounds Field(gt=…) adds)
_KINDS: tuple[tuple[tuple[Any, ...], str], ...] = (
    (typing.get_args(Money)[1:], "money (whole cents)"),
    (typing.get_args(Number)[1:], "number"),
    (typing.get_args(IsoDate)[1:], "date (YYYY-MM-DD)"),
    (typing.get_args(Text)[1:], "text"),
)
_PLAIN: dict[Any, str] = {bool: "true/false", int: "integer", str: "string", float: "number"}
_BOUNDS: tuple[tuple[type[Any], str, str], ...] = (
    (annotated_types.Gt, "gt", "> {}"),
    (annotated_types.Ge, "ge", "≥ {}"),
    (annotated_types.Lt, "lt", "< {}"),
    (annotated_types.Le, "le", "≤ {}"),
    (annotated_types.MinLen, "min_length", "at least {} item{}"),
    (annotated_types.MaxLen, "max_length", "at most {} item{}"),
)


def _kind(annotation: Any, metadata: Sequence[Any]) -> str:
    for markers, label in _KINDS:
        if all(marker in metadata for marker in markers):
            return label
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        return _kind(inner, [*metadata, *extra])
    if origin is Literal:
        return "one of " + ", ".join(f'"{value}"' for value in typing.get_args(annotation))
    if origin in (list, tuple, set, frozenset):
        inner = typing.get_args(annotation)
        return f"list of {_kind(inner[0], []) if inner else 'values'}"
    if origin in (typing.Union, types.UnionType):
        options = [_kind(a, metadata) for a in typing.get_args(annotation) if a is not type(None)]
        nullable = type(None) in typing.get_args(annotation)
        return " or ".join(options) + (" or null" if nullable else "")
    if isinstance(annotation, type) and annotation in _PLAIN:
        return _PLAIN[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _bounds(metadata: Sequence[Any]) -> list[str]:
    found: list[str] = []
    for kind, attribute, text in _BOUNDS:
        for bound in (getattr(m, attribute) for m in metadata if isinstance(m, kind)):
            found.append(text.format(bound, "" if bound == 1 else "s"))
    return found


def describe_argument(name: str, field: FieldInfo) -> str:
    """One argument as the docs show it, e.g. `` `amount_usd` money (whole cents), > 0 ``."""
    parts = [_kind(field.annotation, field.metadata), *_bounds(field.metadata)]
    if not field.is_required():
        parts.append(f"optional (default {field.get_default(call_default_factory=True)!r})")
    return f"`{field.alias or name}` {', '.join(parts)}"


def _cell(text: str) -> str:
    """Text inside a Markdown table cell: a pipe would end the cell (CEL's `||`), a newline the row."""
    return " ".join(text.split()).replace("|", "\\|")


def _condition(when: str) -> str:
    return "always" if when.strip() == "true" else f"when `{' '.join(when.split())}`"


def policy_rules(policy: Policy, action: str) -> list[str]:
    """The default policy's rules over one action, in order: `deny rule-id when …` or `gate g (rule-id) when …`."""
    out: list[str] = []
    for rule in policy.rules:
        if action not in rule.actions:
            continue
        if rule.outcome == "deny":
            out.append(f"deny `{rule.id}` {_condition(rule.when)}")
        else:
            out.append(f"gate `{rule.gate}` ({rule.id}) {_condition(rule.when)}")
    return out


def _row(action: Action, policy: Policy | None) -> str:
    arguments = "<br>".join(describe_argument(n, f) for n, f in action.args.model_fields.items())
    proposers = ", ".join(action.proposers) or "—"
    charges = f"`{action.charges}`" if action.charges else "—"
    keys = ", ".join(f"`{k}`" for k in action.dependency_keys) or "—"
    if action.safe_while_pending:
        keys += " (never held)"
    rules = "<br>".join(policy_rules(policy, action.name)) if policy is not None else ""
    cells = [f"`{action.name}`", action.doc or "—", arguments, proposers, charges, keys, rules or "—"]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def action_reference(pack: Pack, policy: Policy | None) -> str:
    """The Markdown reference of a pack's actions, generated from its declarations and its default policy's rules
    (deterministic: the same declarations give the same bytes)."""
    source = f"its default policy `{pack.policy.name}`" if pack.policy is not None and policy is not None else None
    lines = [
        f"# Pack `{pack.name}`: actions",
        "",
        f"<!-- generated by `coalition pack docs {pack.name} --out docs/packs/{pack.name}.md` from the pack's "
        "declarations: edit the declarations, not this file -->",
        "",
        f"{pack.title}." if not pack.title.endswith(".") else pack.title,
        *(["", pack.description] if pack.description else []),
        "",
        "Each row is one `coalition.domain.Action`: its arguments are its pydantic argument model (the one schema "
        "governance and the executor validate with; unknown arguments are refused), *proposed by* the agents the "
        "declaration names as its proposers, *budget* the argument charged to the proposer's money budget (a proposal "
        "that would overrun it escalates to `budget_overrun`), *dependency keys* the arguments that hold a "
        "proposal while an escalation sharing their value is open.",
        "",
        f"*Rules* are those of {source} naming the action, in the order governance checks them: a deny wins, an "
        "escalation goes to the gate's approvers. Another policy may grant and rule differently."
        if source is not None
        else "*Rules*: the pack ships no default policy; a policy of its own rules its actions.",
        "",
        f"{len(pack.actions)} actions, {len(pack.agents)} agents"
        + (f" ({', '.join(pack.agent_names)})" if pack.agents else "")
        + (f", gates {', '.join(f'`{g}`' for g in pack.gates)}." if pack.gates else "."),
        "",
        "| action | what it does | arguments | proposed by | budget | dependency keys | rules |",
        "|---|---|---|---|---|---|---|",
        *(_row(action, policy) for action in pack.actions),
        "",
    ]
    return "\n".join(lines)
