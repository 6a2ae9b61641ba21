"""Canonical JSON (sorted keys, UTF-8, no whitespace) and content hashes: one definition for the whole project."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"not canonical-JSON serialisable: {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    """Deterministic bytes for any JSON-like value; floats must not be used for money (use Decimal or int)."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def content_hash(value: Any) -> str:
    """sha256 hex of the canonical JSON of a value (bytes are hashed as they are)."""
    data = value if isinstance(value, bytes) else canonical_json(value)
    return hashlib.sha256(data).hexdigest()
