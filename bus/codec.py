"""The one wire codec: Envelope <-> bytes. Anything that does not decode is a MessageRejected, never a crash.

Both directions keep pydantic as the single definition of what is valid, but skip its slow generic paths:

- decode parses with orjson (its strict JSON: no NaN, no Infinity), then validates the object in one pass of
  pydantic-core against the Envelope's own model schema specialised for the message type named by "type"
  (`payload` typed as that message, sim_time required to be aware), which builds the `Envelope` directly:
  no Python validators, no second pass over the payload, and errors located as "payload.<field>";
- encode hands the frozen models' field values straight to orjson when every class involved serialises to
  exactly what pydantic would produce (checked once per class from its core schema), and otherwise falls back
  to `model_dump(mode="json")`. The wire stays canonical JSON (sorted keys, UTC as "Z"): dead letters and the
  ledger hash these bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import CoreSchema, SchemaValidator, core_schema, to_jsonable_python

from coalition.bus.envelope import Envelope
from coalition.bus.errors import MessageRejected, UnknownMessageType
from coalition.bus.message import Message, is_none, registered_types

MAX_MESSAGE_BYTES = 1 << 20

_WIRE = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z
# datetimes, dataclasses and subclasses of builtins go through `_json_value`, i.e. pydantic's own conversion:
# orjson formats some of them differently (sub-minute UTC offsets, time microseconds)
_FAST_WIRE = (
    _WIRE | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)

# core-schema node types whose serialisation of an already-validated value is the value itself (or, for
# models, its fields), so orjson + pydantic's value conversion give the same JSON as pydantic's serializer
_PLAIN_SCHEMA_TYPES = frozenset(
    {
        "any",
        "bool",
        "datetime",
        "default",
        "dict",
        "float",
        "function-after",
        "function-before",
        "int",
        "list",
        "literal",
        "model",
        "model-field",
        "model-fields",
        "none",
        "nullable",
        "str",
    }
)
_SERIALISATION_KEYS = frozenset(
    {"serialization", "serialization_alias", "serialization_exclude", "serialization_exclude_if", "exclude_if"}
)
# keys of a core-schema node that hold values or callables, not schemas
_NOT_SCHEMA_KEYS = frozenset({"cls", "config", "default", "default_factory", "expected", "function", "metadata", "ref"})
_ENVELOPE_VALIDATORS = frozenset({"_typed_payload", "_type_matches_payload"})


# -- encode --------------------------------------------------------------------------------------------------


def encode(envelope: Envelope, *, unsigned: bool = False) -> bytes:
    """Canonical JSON bytes of an envelope (sorted keys, UTC as "Z"); the same bytes for equal envelopes.

    An absent signature is left out (not written as null); `unsigned=True` leaves it out whatever it is: those
    are the bytes a producer signs (coalition.bus.signing)."""
    if _ENVELOPE_PLAIN and _plain(type(envelope.payload)):
        fields = dict(envelope.__dict__)
        if unsigned or fields["signature"] is None:
            del fields["signature"]
        fields["payload"] = _present(envelope.payload)
        fields["sim_time"] = _sim_time_text(envelope.sim_time)  # every envelope has it: skip the callback
        try:
            return orjson.dumps(fields, default=_json_value, option=_FAST_WIRE)
        except orjson.JSONEncodeError:
            pass  # something pydantic converts and we do not (non-str keys, odd nested models): its path decides
    exclude = {"signature"} if unsigned or envelope.signature is None else None
    return orjson.dumps(envelope.model_dump(mode="json", exclude=exclude), option=_WIRE)


_OMITTED_WHEN_NONE: dict[type[BaseModel], tuple[str, ...]] = {}


def _present(model: BaseModel) -> dict[str, Any]:
    """A plain model's fields, without those declared `exclude_if=is_none` while they are None."""
    cls = type(model)
    names = _OMITTED_WHEN_NONE.get(cls)
    if names is None:
        names = _OMITTED_WHEN_NONE[cls] = tuple(n for n, f in cls.model_fields.items() if f.exclude_if is is_none)
    fields = model.__dict__
    for name in names:
        if fields[name] is None:
            if fields is model.__dict__:
                fields = dict(fields)
            del fields[name]
    return fields


# the last sim_time encoded and its text, in one tuple so that threads never see one without the other
_last_sim_time: list[tuple[datetime | None, Any]] = [(None, None)]


def _sim_time_text(value: datetime) -> Any:
    """pydantic's JSON form of a sim_time; the envelopes of one step share their datetime object, so the last one
    is remembered by identity (a datetime is immutable: the same object always gives the same text)."""
    last, text = _last_sim_time[0]
    if last is not value:
        text = to_jsonable_python(value)
        _last_sim_time[0] = (value, text)
    return text


def _json_value(value: Any) -> Any:
    """orjson's `default`: nested plain models as their fields, anything else converted as pydantic would."""
    if isinstance(value, BaseModel):
        cls = type(value)
        # a nested model is serialised by its declared field type; only a direct subclass of Message/BaseModel
        # is sure to be that type (a subclass instance would lose its extra fields under pydantic)
        if cls.__mro__[1] in (Message, BaseModel) and _plain(cls):
            return _present(value)
        raise TypeError(f"{cls.__name__} is not plain")
    return to_jsonable_python(value)


_PLAIN_CACHE: dict[type[BaseModel], bool] = {}
_ModelT = TypeVar("_ModelT", bound=type[BaseModel])


def _plain(cls: type[BaseModel]) -> bool:
    """True when pydantic serialises instances of cls to exactly `__dict__` with values converted by inference."""
    known = _PLAIN_CACHE.get(cls)
    if known is None:
        known = _PLAIN_CACHE[cls] = _plain_schema(_built(cls).__pydantic_core_schema__, root=cls)
    return known


def _built(cls: _ModelT) -> _ModelT:
    """cls with its core schema built: models declared with `defer_build` hold a placeholder until first used,
    and in a process whose first use of a message type is decoding it, that first use is ours."""
    if not cls.__pydantic_complete__:
        cls.model_rebuild()
    return cls


def _plain_schema(node: Any, *, root: type[BaseModel]) -> bool:
    if isinstance(node, list):
        return all(_plain_schema(item, root=root) for item in node)
    if not isinstance(node, Mapping):
        return True
    kind = node.get("type")
    if kind is not None and isinstance(kind, str) and kind not in _PLAIN_SCHEMA_TYPES:
        return False
    special = _SERIALISATION_KEYS & node.keys()
    if node.get("serialization_exclude_if") is is_none:
        special = special - {"serialization_exclude_if"}  # left out while None: encode drops it too
    if special or node.get("computed_fields"):
        return False
    if kind == "model":
        config = node.get("config") or {}
        if config.get("extra_fields_behavior") == "allow" or any(str(key).startswith("ser") for key in config):
            return False
        nested = node.get("cls")
        if nested is not root and nested in (Message, BaseModel):
            return False  # a field typed as the base class serialises as an empty object under pydantic
    return all(_plain_schema(value, root=root) for key, value in node.items() if key not in _NOT_SCHEMA_KEYS)


def _envelope_plain() -> bool:
    """True when the Envelope's own fields (payload aside) serialise as their values."""
    if any(str(key).startswith("ser") for key in Envelope.model_config):
        return False
    return all(
        _plain_schema(TypeAdapter(_annotated(info.annotation, info.metadata)).core_schema, root=Envelope)
        for name, info in Envelope.model_fields.items()
        if name != "payload"
    )


def _annotated(annotation: Any, metadata: list[Any]) -> Any:
    return Annotated[annotation, *metadata] if metadata else annotation


_ENVELOPE_PLAIN = _envelope_plain()


# -- decode --------------------------------------------------------------------------------------------------


def decode(data: bytes | str) -> Envelope:
    """The envelope in data, fully validated (envelope and typed payload), or MessageRejected saying why not."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageRejected(f"message of {len(raw)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MessageRejected(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MessageRejected(f"expected a JSON object, got {type(obj).__name__}")
    type_name = obj.get("type")
    validator = _WIRE_VALIDATORS.get(type_name) if isinstance(type_name, str) else None
    if validator is None and isinstance(type_name, str):
        validator = _wire_validator(type_name)
    try:
        if validator is None:
            # no registered type to specialise for: the envelope model says what is wrong
            return Envelope.model_validate(obj)
        return cast(Envelope, validator.validate_python(obj))
    except UnknownMessageType:
        raise
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise MessageRejected(f"invalid envelope at {where}: {first['msg']}") from None


_WIRE_VALIDATORS: dict[str, SchemaValidator] = {}


def _wire_validator(type_name: str) -> SchemaValidator | None:
    """The specialised validator for envelopes of one registered type (None: unknown type, or not possible)."""
    validator = _WIRE_VALIDATORS.get(type_name)
    if validator is None:
        message = registered_types().get(type_name)
        if message is None or _ENVELOPE_SCHEMA is None:
            return None
        _built(message)
        validator = _WIRE_VALIDATORS[type_name] = _specialise(message, *_ENVELOPE_SCHEMA)
    return validator


def _specialise(message: type[Message], model: CoreSchema, fields_schema: CoreSchema) -> SchemaValidator:
    """The Envelope's own model schema with `payload` typed as message and sim_time required to be aware.

    This folds in the Envelope's two model validators: the before one picked the payload class from "type"
    (done by choosing this validator), the after one required that class and an aware sim_time. pydantic-core
    then builds the Envelope itself, exactly as `Envelope.model_validate` would.
    """
    fields = dict(cast(dict[str, Any], fields_schema)["fields"])
    fields["payload"] = core_schema.model_field(message.__pydantic_core_schema__)
    sim_time = fields["sim_time"]
    fields["sim_time"] = {**sim_time, "schema": {**sim_time["schema"], "tz_constraint": "aware"}}
    specialised = {**cast(dict[str, Any], model), "schema": {**cast(dict[str, Any], fields_schema), "fields": fields}}
    specialised.pop("ref", None)
    return SchemaValidator(cast(CoreSchema, specialised))


def _envelope_schema() -> tuple[CoreSchema, CoreSchema] | None:
    """(model schema, fields schema) of the Envelope if its shape is the one `_specialise` knows, else None."""
    decorators = Envelope.__pydantic_decorators__
    if (
        set(decorators.model_validators) != _ENVELOPE_VALIDATORS
        or decorators.field_validators
        or decorators.validators
        or decorators.root_validators
    ):
        return None  # a validator _specialise does not know about would be skipped
    model = _find_model(Envelope.__pydantic_core_schema__)
    if model is None:
        return None
    inner = cast(dict[str, Any], model)["schema"]
    fields_schema = inner.get("schema") if inner.get("type") == "function-before" else None
    if not isinstance(fields_schema, dict) or fields_schema.get("type") != "model-fields":
        return None
    sim_time = fields_schema["fields"].get("sim_time", {})
    if sim_time.get("schema", {}).get("type") != "datetime" or "payload" not in fields_schema["fields"]:
        return None
    return model, cast(CoreSchema, fields_schema)


def _find_model(node: Any) -> CoreSchema | None:
    if isinstance(node, dict):
        if node.get("type") == "model" and node.get("cls") is Envelope:
            return cast(CoreSchema, node)
        for value in node.values():
            found = _find_model(value)
            if found is not None:
                return found
    elif isinstance(node, list):
        for item in node:
            found = _find_model(item)
            if found is not None:
                return found
    return None


_ENVELOPE_SCHEMA = _envelope_schema()
