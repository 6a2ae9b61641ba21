"""Package names that load on first use (PEP 562): a package's `__init__` names what it re-exports and where each
name lives, and a name's module is imported only when the name is first asked for.

Why: importing any submodule runs its package's `__init__` first. An `__init__` that imported every module made
`import coalition.ledger.errors` load the bus, its consumer and structlog's development renderer (rich's traceback
machinery): a quarter of a second before `coalition ledger list` printed a line (issue 16).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

_WHERE = "__lazy_exports__"  # the package's name → module table, kept in the package's namespace
_SUBMODULES = "__lazy_submodules__"


def lazy_package(package: str, where: Mapping[str, str], submodules: tuple[str, ...] = ()) -> None:
    """Make `package` (its `__name__`, from its `__init__`) export each name of `where` from the module named
    beside it, and each of `submodules` (its own modules, as `package.name` after a bare `import package`)."""
    module = sys.modules[package]
    module.__dict__[_WHERE] = {**where, **{name: f"{package}.{name}" for name in submodules}}
    module.__dict__[_SUBMODULES] = frozenset(submodules)
    module.__class__ = _LazyPackage


class _LazyPackage(ModuleType):
    def __getattr__(self, name: str) -> Any:  # only for a name not loaded yet: a plain attribute afterwards
        target = self.__dict__.get(_WHERE, {}).get(name)
        if target is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        loaded = importlib.import_module(target)
        value = loaded if name in self.__dict__[_SUBMODULES] else getattr(loaded, name)
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # The import system binds a loaded submodule on its package. Where the package exports a name from the
        # submodule of that name (coalition.domain.catalog holds catalog()), the export keeps the name, as it did
        # when the package imported it eagerly, after the submodule.
        if (
            isinstance(value, ModuleType)
            and name in self.__dict__.get(_WHERE, {})
            and name not in self.__dict__[_SUBMODULES]
        ):
            return
        super().__setattr__(name, value)
