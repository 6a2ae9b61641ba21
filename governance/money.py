"""Money and numbers read from untrusted JSON: Decimal only, never a float in arithmetic, NaN/inf refused."""

from __future__ import annotations

from decimal import Decimal

from coalition.domain.arguments import CENT, cents
from coalition.domain.arguments import finite_decimal as to_decimal

__all__ = ["CENT", "cents", "to_decimal", "usd"]


def usd(value: Decimal) -> str:
    """Two decimals for humans and messages: Decimal('60') → '60.00'."""
    return f"{cents(value):.2f}"
