"""Money and numbers read from untrusted JSON: Decimal only, never a float in arithmetic, NaN/inf refused."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

CENT = Decimal("0.01")


def to_decimal(value: object) -> Decimal:
    """A finite Decimal from a JSON number or numeric string; ValueError otherwise (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"must be a number, got {type(value).__name__}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"must be a number, got {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"must be a finite number, got {value!r}")
    return result


def cents(value: Decimal) -> Decimal:
    """Rounded half-even to cents, as money is put in messages."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def usd(value: Decimal) -> str:
    """Two decimals for humans and messages: Decimal('60') → '60.00'."""
    return f"{cents(value):.2f}"
