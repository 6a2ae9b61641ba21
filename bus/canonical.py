"""Canonical JSON (sorted keys, UTF-8, no whitespace) and content hashes: one definition for the whole project."""

from __future__ import annotations

import hashlib
import json
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


def canonical_problem(data: bytes) -> str | None:
    """Why `data` is not exactly the canonical JSON of the value it parses to, or None when it is.

    Bytes that hash right can still be read two ways: `{"outcome":"allow","outcome":"deny"}` is "allow" to SQLite's
    json_extract and "deny" to orjson. Stored bytes this module wrote are canonical; re-encoding what they parse to
    gives them back (about 1 µs a KB on top of the parse), and only when it does not is the cause looked for."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return f"not JSON ({exc})"
    if orjson.dumps(value, option=_OPTIONS) == data:
        return None
    repeated = _repeated_key(data)
    if repeated is not None:
        return f"the key {repeated!r} appears twice in one object (readers disagree on its value)"
    return "its key order, spacing, escapes or number spelling are not the canonical ones"


def _repeated_key(data: bytes) -> str | None:
    """A key that appears twice in one of `data`'s objects (orjson keeps the last silently; this parser reports it)."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        if not found and len(set(keys)) != len(keys):
            found.append(next(key for index, key in enumerate(keys) if key in keys[:index]))
        return dict(items)

    try:
        json.loads(data, object_pairs_hook=pairs)
    except ValueError:
        return None
    return found[0] if found else None
