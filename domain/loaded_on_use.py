"""A pack's table that is imported when it is first read, named by where it lives ("package.module:NAME").

Every command that validates a policy loads every installed pack, and with it whatever a pack's declaration
imports. A table only a running world reads (the data models of its observations, say) can be declared with
`LoadedOnUse` instead, so that reading the pack's vocabulary does not import the modules that define it.

A target that cannot be read is the pack's error (PackError, one line naming the pack and the target), as the same
mistake in an eager import is: `check` (at catalog load, without importing) finds a module that does not exist, and
the first read a module that fails to import, a name it does not hold, or a value that is not a mapping.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from coalition.domain.errors import PackError

K = TypeVar("K")
V = TypeVar("V")


class LoadedOnUse(Mapping[K, V], Generic[K, V]):
    """The mapping `target` ("package.module:NAME") names, imported on the first read, then that mapping's."""

    __slots__ = ("_loaded", "pack", "target")

    def __init__(self, target: str) -> None:
        module, _, name = target.partition(":")
        if not module or not name:
            raise ValueError(f"{target!r} does not name a mapping as package.module:NAME")
        self.target = target
        self.pack = ""  # the pack that declares it (set by Pack), named by its errors
        self._loaded: Mapping[K, V] | None = None

    def _problem(self, reason: str) -> PackError:
        return PackError(self.pack or self.target.partition(":")[0], reason)

    def check(self) -> None:
        """PackError when the target's module does not exist (found without importing it, nor running it)."""
        module = self.target.partition(":")[0]
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError) as exc:
            raise self._problem(f"cannot load {self.target} ({type(exc).__name__}: {exc})") from None
        if found is None:
            raise self._problem(f"cannot load {self.target} (no module named {module!r})")

    def _table(self) -> Mapping[K, V]:
        if self._loaded is None:
            module, _, name = self.target.partition(":")
            try:
                table: Any = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError) as exc:
                line = str(exc).splitlines()[0] if str(exc) else ""
                raise self._problem(f"cannot load {self.target} ({type(exc).__name__}: {line})") from None
            if not isinstance(table, Mapping):
                raise self._problem(f"{self.target} is a {type(table).__name__}, not a mapping")
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
