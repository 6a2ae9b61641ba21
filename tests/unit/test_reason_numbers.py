"""The numbers a reason shows: the shortcuts for whole numbers and short doubles give the text of the Decimal route."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from coalition.domain.arguments import finite_decimal
from coalition.governance.expressions import formatted
from coalition.governance.money import from_double, usd


def _decimal(value: object) -> Decimal:
    """The reference: every number through Decimal (an argument's text as given, a double as money.from_double)."""
    if isinstance(value, str):
        return Decimal(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return from_double(value) if isinstance(value, float) else Decimal(value)


def _reference(value: object, fmt: str) -> tuple[str, str]:
    try:
        if fmt == "usd":
            return "ok", usd(_decimal(value))
        if fmt == "int":
            return "ok", str(int(_decimal(value)))
        if isinstance(value, float) and value.is_integer():
            return "ok", str(int(value))
        return "ok", str(_decimal(value))
    except Exception as exc:  # the same failure, whichever route
        return "error", type(exc).__name__


def _shown(value: object, fmt: str) -> tuple[str, str]:
    try:
        return "ok", formatted(value, fmt)
    except Exception as exc:
        return "error", type(exc).__name__


EDGES: list[object] = [
    0,
    0.0,
    -0.0,
    5.0,
    -5.0,
    1e14,
    1e15,
    -1e15,
    1e16,
    0.1,
    1.25,
    38.025000000000006,
    1e-5,
    1e-4,
    float("inf"),
    float("nan"),
    "98",
    "098",
    "0",
    "12.50",
    "1e3",
    "²",
    "9" * 17,
    10**15,
    -(10**15) + 1,
    10**16,
    True,
    2**63,
]


class TestReasonNumbers:
    """formatted() shows what the Decimal route shows, or fails the same way."""

    def test_edges(self) -> None:
        for value in EDGES:
            for fmt in ("usd", "int", "dec"):
                assert _shown(value, fmt) == _reference(value, fmt), (value, fmt)

    @settings(max_examples=2000, deadline=None)
    @given(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=-(10**17), max_value=10**17).map(float),
            st.integers(min_value=-(10**17), max_value=10**17),
            st.integers(min_value=0, max_value=10**17).map(str),
            st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
        ),
        st.sampled_from(["usd", "int", "dec"]),
    )
    def test_any_number(self, value: object, fmt: str) -> None:
        assert _shown(value, fmt) == _reference(value, fmt)


class TestFiniteDecimal:
    """A whole number becomes the Decimal its text gives, digits and exponent alike, and is bounded the same way."""

    @settings(max_examples=1000, deadline=None)
    @given(st.integers(min_value=-(10**16), max_value=10**16))
    def test_whole_numbers(self, value: int) -> None:
        try:
            got: tuple[str, object] = ("ok", finite_decimal(value).as_tuple())
        except ValueError as exc:
            got = ("error", str(exc))
        expected = Decimal(str(value))
        if abs(expected) > Decimal("1e15"):
            assert got[0] == "error"
        else:
            assert got == ("ok", expected.as_tuple())
