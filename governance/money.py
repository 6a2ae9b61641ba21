"""Money and numbers read from untrusted JSON: Decimal only, never a float in arithmetic, NaN/inf refused."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

from coalition.domain.arguments import CENT, cents
from coalition.domain.arguments import finite_decimal as to_decimal

__all__ = ["CENT", "cents", "from_double", "to_decimal", "usd"]

DOUBLE_DIGITS = 15  # DBL_DIG: every decimal of at most 15 significant digits survives a round trip through a double


def usd(value: Decimal) -> str:
    """Two decimals for humans and messages: Decimal('60') → '60.00'."""
    return f"{cents(value):.2f}"


def from_double(value: float) -> Decimal:
    """The decimal a double computed by an expression stands for: its shortest repr, rounded to 15 significant
    digits when it has more and the rounded value is within one ulp of the double (the digits beyond are then the
    arithmetic's error: 30.42 × 1.25 is 38.025000000000006 as a double, and 38.025 as money, which half-even makes
    38.02). Below 10^12 only, so that at least three decimals remain for the rounding to cents afterwards."""
    shown = repr(value)
    if len(shown) <= DOUBLE_DIGITS + 1:  # at most 15 digits beside a point or a sign (a repr always has one of '.e')
        return Decimal(shown)
    exact = Decimal(shown)
    if not exact.is_finite() or len(exact.as_tuple().digits) <= DOUBLE_DIGITS or exact.adjusted() >= 12:
        return exact
    reduced = exact.quantize(Decimal(1).scaleb(exact.adjusted() - DOUBLE_DIGITS + 1), rounding=ROUND_HALF_EVEN)
    if abs(float(reduced) - value) > math.ulp(value):
        # more than the double's own error away: the digits dropped were the value's (1969986279.634998 is the exact
        # product 998877537.59 × 1.9722, not 1969986279.635 computed badly), so they stay
        return exact
    return Decimal(f"{reduced.normalize():f}")  # trailing zeros dropped, never an exponent
