"""A pack's table that is imported when it is first read, named by where it lives ("package.module:NAME").

Every command that validates a policy loads every installed pack, and with it whatever a pack's declaration
imports. A table only a running world reads (the data models of its observations, say) can be declared with
`LoadedOnUse` instead, so that reading the pack's vocabulary does not import the modules that define it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LoadedOnUse(Mapping[K, V], Generic[K, V]):
    """The mapping `target` ("package.module:NAME") names, imported on the first read, then that mapping's."""

    __slots__ = ("_loaded", "target")

    def __init__(self, target: str) -> None:
        module, _, name = target.partition(":")
        if not module or not name:
            raise ValueError(f"{target!r} does not name a mapping as package.module:NAME")
        self.target = target
        self._loaded: Mapping[K, V] | None = None

    def _table(self) -> Mapping[K, V]:
        if self._loaded is None:
            module, _, name = self.target.partition(":")
            table: Any = getattr(importlib.import_module(module), name)
            if not isinstance(table, Mapping):
                raise TypeError(f"{self.target} is a {type(table).__name__}, not a mapping")
            self._loaded = table
        return self._loaded

    def __getitem__(self, key: K) -> V:
        return self._table()[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return f"LoadedOnUse({self.target!r})"
