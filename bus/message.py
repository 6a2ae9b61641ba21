"""The base of every typed message and the registry that maps a wire type name to its model."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from coalition.bus.errors import UnknownMessageType


class Message(BaseModel):
    """A frozen, strictly-shaped message payload. Subclasses set TYPE (the wire name) and are registered."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    TYPE: ClassVar[str] = ""


M = TypeVar("M", bound=type[Message])


def is_none(value: object) -> bool:
    """`Field(default=None, exclude_if=is_none)`: an optional field left out of the payload while unset, so a field
    added later changes no message recorded before it (the codec's fast path knows this one predicate)."""
    return value is None


_REGISTRY: dict[str, type[Message]] = {}


def register(cls: M) -> M:
    """Class decorator: make a message type known to the codec under its TYPE."""
    name = cls.TYPE
    if not name:
        raise ValueError(f"{cls.__name__} has no TYPE")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"message type {name!r} is registered twice ({existing.__name__}, {cls.__name__})")
    _REGISTRY[name] = cls
    return cls


def _core_types_registered() -> None:
    """The core's message types register when coalition.bus.messages is imported. The package no longer imports
    every module on first use (coalition.lazy_exports), so a lookup imports it rather than trusting that some
    earlier import did."""
    import coalition.bus.messages  # noqa: F401  (imported for its registrations)


def message_class(type_name: str) -> type[Message]:
    try:
        return _REGISTRY[type_name]
    except KeyError:
        _core_types_registered()
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise UnknownMessageType(type_name) from None


def registered_types() -> dict[str, type[Message]]:
    _core_types_registered()
    return dict(_REGISTRY)


def parse_payload(type_name: str, payload: Any) -> Message:
    cls = message_class(type_name)
    if isinstance(payload, cls):
        return payload
    return cls.model_validate(payload)
