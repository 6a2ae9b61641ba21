"""CEL, the language of policy rules and pack rules, without its interactive shell.

`import cel` runs the package's `__init__`, which imports `cel.cli` — a REPL built on prompt_toolkit, pygments and
rich: about 100 ms on every command that reads a policy, for a shell Coalition never opens. The compiler and the
evaluator live in the Rust extension `cel.cel`; this module loads that extension alone. When the whole package is
imported later (by a user's own code), its `from .cel import *` finds the same extension module already loaded.

Use it as `from coalition.domain.cel_language import cel`: `cel.compile`, `cel.Program`, `cel.Context`.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING

_EXTENSION = "cel.cel"


def _load_extension() -> ModuleType:
    """The `cel.cel` extension module, loaded without running `cel/__init__.py`."""
    loaded = sys.modules.get(_EXTENSION)
    if loaded is not None:
        return loaded
    package = importlib.util.find_spec("cel")  # finds the package without executing it
    locations = package.submodule_search_locations if package is not None else None
    spec = importlib.machinery.PathFinder.find_spec(_EXTENSION, list(locations or []))
    if spec is None or spec.loader is None:  # an install without the extension: let the package say what is wrong
        import cel.cel as whole

        return whole
    module = importlib.util.module_from_spec(spec)
    sys.modules[_EXTENSION] = module  # an extension module may be initialised once per process: register first
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_EXTENSION]
        raise
    return module


if TYPE_CHECKING:
    from cel import cel
else:
    cel = _load_extension()

__all__ = ["cel"]
