"""A module's structlog logger that imports structlog at its first log line, not when the module is imported.

`import structlog` loads its development renderer and, with rich installed, rich's traceback machinery: tens of
milliseconds that a command which never logs (`coalition ledger list`) should not pay (issue 16).
"""

from __future__ import annotations

from typing import Any


class LazyLogger:
    """Stands for `structlog.get_logger(name)`: every method (`info`, `warning`, `bind`, …) is the real logger's."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, method)
