"""The one wire codec: Envelope <-> bytes. Anything that does not decode is a MessageRejected, never a crash."""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from coalition.bus.envelope import Envelope
from coalition.bus.errors import MessageRejected, UnknownMessageType

MAX_MESSAGE_BYTES = 1 << 20


def encode(envelope: Envelope) -> bytes:
    return orjson.dumps(envelope.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


def decode(data: bytes | str) -> Envelope:
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageRejected(f"message of {len(raw)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MessageRejected(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MessageRejected(f"expected a JSON object, got {type(obj).__name__}")
    try:
        return Envelope.model_validate(obj)
    except UnknownMessageType:
        raise
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise MessageRejected(f"invalid envelope at {where}: {first['msg']}") from None
