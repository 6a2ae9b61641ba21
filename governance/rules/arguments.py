"""Proposal arguments are untrusted JSON: check their shape before any limit reads them (fail closed)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from coalition.bus.messages import ActionProposed
from coalition.governance.errors import ArgumentError
from coalition.governance.money import to_decimal
from coalition.governance.state import GovernanceState
from coalition.governance.verdict import Finding

Kind = Literal["str", "number", "int", "bool", "str_list"]

# docs/design.md "Actions": every argument, with its kind. Missing, mistyped or unknown arguments are denied.
SHAPES: dict[str, dict[str, Kind]] = {
    "commission_research": {"topic": "str", "cost_usd": "number"},
    "set_price": {"region": "str", "price": "number"},
    "change_pricing_policy": {"floor": "number", "ceiling": "number", "surge_cap_pct": "number"},
    "enter_market": {"region": "str", "sequence": "int", "investment_usd": "number"},
    "set_settlement_policy": {"window": "str", "reserve_ratio": "number"},
    "commit_capital": {"amount_usd": "number", "purpose": "str"},
    "launch_campaign": {
        "campaign_id": "str",
        "region": "str",
        "channel": "str",
        "copy": "str",
        "claims": "str_list",
        "budget_usd": "number",
        "discount_pct": "number",
    },
    "run_experiment": {
        "experiment_id": "str",
        "hypothesis": "str",
        "budget_usd": "number",
        "metric": "str",
        "stop_threshold": "number",
    },
    "stop_experiment": {"experiment_id": "str", "reason": "str"},
    "publish_jurisdiction_pack": {
        "region": "str",
        "status": "str",
        "obligations": "str_list",
        "effective": "str",
        "material": "bool",
    },
    "pause_settlement": {"region": "str", "incident_id": "str", "reason": "str"},
    "resume_settlement": {"region": "str", "incident_id": "str"},
    "open_incident": {
        "incident_id": "str",
        "kind": "str",
        "severity": "int",
        "regions": "str_list",
        "affected_customers": "int",
        "summary": "str",
    },
    "issue_credit": {"customer_id": "str", "incident_id": "str", "tier": "str", "amount_usd": "number"},
    "notify_customers": {"incident_id": "str", "audience": "str", "message": "str"},
    "freeze_account": {"account_id": "str", "incident_id": "str", "reason": "str"},
    "rotate_credentials": {"system": "str", "reason": "str"},
    "transfer_funds": {"amount_usd": "number", "destination": "str", "reason": "str"},
    "request_model_budget": {"tokens": "int", "cost_usd": "number", "reason": "str"},
}

# Closed vocabularies and ranges inside arguments.
_CHOICES: dict[tuple[str, str], frozenset[str]] = {
    ("set_settlement_policy", "window"): frozenset({"T+1", "T+3"}),
    ("publish_jurisdiction_pack", "status"): frozenset({"allowed", "restricted", "prohibited"}),
}
_RANGES: dict[tuple[str, str], tuple[Decimal, Decimal]] = {
    ("set_settlement_policy", "reserve_ratio"): (Decimal(0), Decimal(1)),
    ("open_incident", "severity"): (Decimal(1), Decimal(5)),
    ("launch_campaign", "discount_pct"): (Decimal(0), Decimal(100)),
    ("change_pricing_policy", "surge_cap_pct"): (Decimal(0), Decimal(1000)),
}
_NON_NEGATIVE = frozenset(
    {
        "cost_usd",
        "price",
        "investment_usd",
        "amount_usd",
        "budget_usd",
        "floor",
        "ceiling",
        "affected_customers",
        "tokens",
    }
)


def _check(action: str, name: str, kind: Kind, value: Any) -> None:
    if kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise ArgumentError(action, name, f"must be a non-empty string, got {value!r}")
    elif kind == "str_list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ArgumentError(action, name, f"must be a list of strings, got {value!r}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ArgumentError(action, name, f"must be true or false, got {value!r}")
    else:
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ArgumentError(action, name, f"must be an integer, got {value!r}")
        try:
            number = to_decimal(value)
        except ValueError as exc:
            raise ArgumentError(action, name, str(exc)) from None
        if name in _NON_NEGATIVE and number < 0:
            raise ArgumentError(action, name, f"must not be negative, got {value!r}")
        bounds = _RANGES.get((action, name))
        if bounds is not None and not bounds[0] <= number <= bounds[1]:
            raise ArgumentError(action, name, f"must be between {bounds[0]} and {bounds[1]}, got {value!r}")
        return
    choices = _CHOICES.get((action, name))
    if choices is not None and value not in choices:
        raise ArgumentError(action, name, f"must be one of {', '.join(sorted(choices))}, got {value!r}")


def check_args(action: str, args: Mapping[str, Any]) -> None:
    """Raise ArgumentError for the first missing, mistyped or unknown argument of a known action."""
    shape = SHAPES.get(action)
    if shape is None:
        return
    for name, kind in shape.items():
        if name not in args:
            raise ArgumentError(action, name, "is required")
        _check(action, name, kind, args[name])
    if len(args) > len(shape):
        unknown = sorted(set(args) - set(shape))
        raise ArgumentError(action, unknown[0], f"is not an argument of {action} (expected {', '.join(shape)})")
    if action == "change_pricing_policy":  # a band that cannot exist is not a question for humans
        floor, ceiling = to_decimal(args["floor"]), to_decimal(args["ceiling"])
        if floor <= 0:
            raise ArgumentError(action, "floor", f"must be above 0, got {args['floor']!r}")
        if floor >= ceiling:
            raise ArgumentError(
                action, "ceiling", f"must be above the floor ({args['floor']!r}), got {args['ceiling']!r}"
            )


class ArgumentShapes:
    """Deny a proposal whose arguments do not have the documented shape (finding `args.invalid`)."""

    rule_id = "args.shape"

    def __init__(self) -> None:
        self.actions: frozenset[str] | None = frozenset(SHAPES)

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        try:
            check_args(proposal.action, proposal.args)
        except ArgumentError as exc:
            return Finding("deny", "args.invalid", str(exc))
        return None


def number(proposal: ActionProposed, name: str) -> Decimal:
    """An argument already checked by ArgumentShapes, as a Decimal."""
    return to_decimal(proposal.args[name])
