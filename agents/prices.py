"""What a model call costs: a configurable price table (USD per million tokens, input and output) per model.

Prices change; the built-in table is a starting point (ASSUMPTION: list prices as published by the
providers in 2025, rounded) and a YAML file (`COALITION_PRICES`) replaces or adds rows. A model without a
row is charged its provider's `<provider>:*` row — deliberately the dearest of that provider, so an
unknown model is never under-budgeted. The offline model is free.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from coalition.agents.errors import ModelConfigError
from coalition.bus.documents import DocumentError, read_document

MICRO_USD = Decimal("0.000001")
PER_TOKENS = Decimal(1_000_000)


class Price(BaseModel):
    """USD per million input tokens and per million output tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_mtok: Decimal = Field(ge=0)
    output_per_mtok: Decimal = Field(ge=0)


DEFAULT_PRICES: dict[str, Price] = {
    "offline:*": Price(input_per_mtok=Decimal(0), output_per_mtok=Decimal(0)),
    "openai:gpt-4o-mini": Price(input_per_mtok=Decimal("0.15"), output_per_mtok=Decimal("0.60")),
    "openai:gpt-4o": Price(input_per_mtok=Decimal("2.50"), output_per_mtok=Decimal("10.00")),
    "openai:gpt-4.1-mini": Price(input_per_mtok=Decimal("0.40"), output_per_mtok=Decimal("1.60")),
    "openai:gpt-4.1": Price(input_per_mtok=Decimal("2.00"), output_per_mtok=Decimal("8.00")),
    "openai:o4-mini": Price(input_per_mtok=Decimal("1.10"), output_per_mtok=Decimal("4.40")),
    "openai:*": Price(input_per_mtok=Decimal("15.00"), output_per_mtok=Decimal("60.00")),
    "anthropic:claude-3-5-haiku-latest": Price(input_per_mtok=Decimal("0.80"), output_per_mtok=Decimal("4.00")),
    "anthropic:claude-haiku-4-5": Price(input_per_mtok=Decimal("1.00"), output_per_mtok=Decimal("5.00")),
    "anthropic:claude-sonnet-4-5": Price(input_per_mtok=Decimal("3.00"), output_per_mtok=Decimal("15.00")),
    "anthropic:*": Price(input_per_mtok=Decimal("15.00"), output_per_mtok=Decimal("75.00")),
}


class PriceTable:
    """Turns tokens into dollars (Decimal, rounded half-even to a micro-dollar) for a `<provider>:<model>` id."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices = dict(DEFAULT_PRICES if prices is None else prices)

    def price(self, model_id: str) -> Price:
        if model_id in self._prices:
            return self._prices[model_id]
        provider = model_id.split(":", 1)[0]
        fallback = self._prices.get(f"{provider}:*")
        if fallback is None:
            raise ModelConfigError(f"no price for {model_id!r} and no '{provider}:*' row in the price table")
        return fallback

    def cost(self, model_id: str, input_tokens: int, output_tokens: int) -> Decimal:
        price = self.price(model_id)
        raw = (price.input_per_mtok * input_tokens + price.output_per_mtok * output_tokens) / PER_TOKENS
        return raw.quantize(MICRO_USD, rounding=ROUND_HALF_EVEN)

    def with_overrides(self, overrides: Mapping[str, Price]) -> PriceTable:
        return PriceTable({**self._prices, **overrides})


def load_prices(path: Path | None) -> PriceTable:
    """The built-in table, with the rows of a YAML file `{<provider>:<model>: {input_per_mtok, output_per_mtok}}`."""
    if path is None:
        return PriceTable()
    try:
        raw: Any = read_document(path)
    except DocumentError as exc:
        raise ModelConfigError(f"{path}: {exc.where}: cannot read the price table: {exc.reason}") from None
    if not isinstance(raw, dict):
        raise ModelConfigError(f"{path}: the price table must be a mapping of model id to prices")
    rows: dict[str, Price] = {}
    for model_id, row in raw.items():
        try:
            rows[str(model_id)] = Price.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ModelConfigError(f"{path}: {model_id}.{where}: {first['msg']}") from None
    return PriceTable().with_overrides(rows)
