"""The one schema of an action's arguments: a pydantic model that agents, governance, the executor and the docs
all read, so governance can never allow what the executor would refuse.

Arguments arrive as untrusted JSON. The field types below are strict where JSON is ambiguous (a boolean is not
a number, "5" is not an integer, a date is an ISO string) and every problem becomes one line naming the action,
the argument and what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StrictBool, StrictInt, ValidationError

from coalition.domain.errors import ArgumentProblem

CENT = Decimal("0.01")
MAX_NUMBER = Decimal("1e15")  # any amount, price or count: beyond it is a typo or an attack (and cents overflow)
_MAX_INT = 10**15  # MAX_NUMBER as an int
_MAX_FLOAT = 1e15  # MAX_NUMBER as a float (exactly)


def finite_decimal(value: object) -> Decimal:
    """A finite Decimal of at most MAX_NUMBER in size, from a JSON number or numeric string; ValueError otherwise
    (booleans are not numbers)."""
    if type(value) is int and -_MAX_INT <= value <= _MAX_INT:  # the common case: Decimal(n) is Decimal(str(n))
        return Decimal(value)
    if type(value) is float and -_MAX_FLOAT <= value <= _MAX_FLOAT:
        # a JSON number with a fraction (every price in a market snapshot): the checks below, in one comparison (NaN
        # fails it; a float within the bound reads as a decimal within it, since its shortest repr rounds back to it)
        return Decimal(repr(value))
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"must be a number, got {type(value).__name__}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"must be a number, got {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"must be a finite number, got {value!r}")
    if abs(result) > MAX_NUMBER:
        raise ValueError(f"must be between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e}, got {value!r}")
    return result


def _text(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _iso_date(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a date (YYYY-MM-DD), got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"must be a date (YYYY-MM-DD), got {value!r}") from None


def cents(value: Decimal) -> Decimal:
    """Rounded half-even to cents, as money is put in messages (the rounding positional: agents/money.py)."""
    return value.quantize(CENT, ROUND_HALF_EVEN)


Text = Annotated[str, BeforeValidator(_text)]
"""A non-empty string (whitespace alone is empty)."""
Texts = list[str]
"""A list of strings (it may be empty)."""


def as_compared(value: Decimal) -> Decimal:
    """The number as governance's rules compare it: policy expressions (CEL) read numbers as IEEE doubles, so the
    value the executor applies is that double (shortest decimal form), never digits beyond it — or
    `20.0000000000000001` would pass a `<= 20` limit as 20.0 and then be applied as more than 20."""
    return Decimal(repr(float(value)))


def whole_cents(value: Decimal) -> Decimal:
    """An amount with at most two decimals, or ValueError: an amount is never rounded after governance saw it
    (99999.999 would pass a 100,000 threshold and then be committed as 100,000.00)."""
    if value != cents(value):
        raise ValueError(f"must be in whole cents (at most 2 decimals), got {value}")
    return cents(value)


Number = Annotated[Decimal, BeforeValidator(finite_decimal), AfterValidator(as_compared)]
"""A finite number from a JSON number or numeric string, never a boolean; bound it with Field(ge=…, le=…). It is
the number governance compares (the nearest double): no precision beyond it reaches the executor."""
Money = Annotated[Decimal, BeforeValidator(finite_decimal), AfterValidator(whole_cents)]
"""An amount in the pack's currency, in whole cents (more decimals are refused, never rounded away)."""
Integer = StrictInt
"""A JSON integer (not 5.0, not "5", not true)."""
Flag = StrictBool
"""true or false."""
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
"""A calendar date written YYYY-MM-DD."""


class ActionArgs(BaseModel):
    """Base of every action's argument model: frozen, unknown keys refused, no NaN or infinity.

    Declare one subclass per action, fields in the order the docs list them; use the types of this module and
    pydantic's Field(gt/ge/le) for bounds. A cross-field rule is a field_validator on the later field, so the
    problem names that argument."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid", allow_inf_nan=False, strict=False)


ArgsT = TypeVar("ArgsT", bound=ActionArgs)


def _problem(action: str, model: type[ActionArgs], args: Mapping[str, Any], exc: ValidationError) -> ArgumentProblem:
    first = exc.errors(include_url=False)[0]
    loc = first["loc"]
    name = str(loc[0]) if loc else "(args)"
    kind = first["type"]
    if kind == "missing":
        return ArgumentProblem(action, name, "is required")
    if kind == "extra_forbidden":
        expected = ", ".join(f.alias or n for n, f in model.model_fields.items())
        return ArgumentProblem(action, name, f"is not an argument of {action} (expected {expected})")
    message = str(first["msg"]).removeprefix("Value error, ")
    if kind != "value_error":
        given = args[name] if name in args else first.get("input")  # as sent, not as a step of validation saw it
        message = f"{message[:1].lower()}{message[1:]}, got {given!r}"
    return ArgumentProblem(action, name, message)


def parse_args(action: str, model: type[ArgsT], args: Mapping[str, Any]) -> ArgsT:
    """The arguments as the action's model; ArgumentProblem (one line) for the first that does not fit."""
    if type(args) is not dict and not isinstance(args, Mapping):  # a dict (every proposal's) skips the ABC check
        raise ArgumentProblem(action, "(args)", f"must be a mapping of arguments, got {type(args).__name__}")
    try:
        return model.model_validate(args if type(args) is dict else dict(args))  # validation copies what it keeps
    except ValidationError as exc:
        raise _problem(action, model, args, exc) from None


def argument_problem(action: str, model: type[ActionArgs], args: Mapping[str, Any]) -> ArgumentProblem | None:
    """The first problem of the arguments, or None when they fit the model."""
    try:
        parse_args(action, model, args)
    except ArgumentProblem as problem:
        return problem
    return None
