"""structlog, configured once: JSON lines when not on a TTY, a readable console otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog
from structlog.typing import EventDict, WrappedLogger

from coalition.bus.redaction import redactor


def redact_secrets(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """structlog processor: no configured secret or URL password reaches a log line (exception text included)."""
    secrets = redactor()
    out: EventDict = {}
    for key, value in event.items():
        if isinstance(value, str | dict | list | tuple):
            out[key] = secrets.value(value)
        elif value is None or isinstance(value, bool | int | float):
            out[key] = value
        else:  # anything else is rendered through its text: redact that text
            out[key] = secrets.text(str(value))
    return out


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written, not when logging was configured: a command run in process
    (a test's CliRunner, a host application) swaps stderr for a stream it closes afterwards, and a logger holding that
    stream would fail every later line with "I/O operation on closed file"."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "warning", fmt: Literal["auto", "json", "console"] = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def bind_context(*, run_id: str | None = None, agent: str | None = None, superstep: int | None = None) -> None:
    """Bind run_id / agent / superstep to every log line of this context."""
    values = {k: v for k, v in {"run_id": run_id, "agent": agent, "superstep": superstep}.items() if v is not None}
    structlog.contextvars.bind_contextvars(**values)
