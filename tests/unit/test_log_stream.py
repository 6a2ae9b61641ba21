"""Log lines go to the stderr of the moment they are written: a command run in process (a CliRunner, a host
application) swaps stderr for a stream it closes afterwards, and later lines must not fail on that closed stream."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import pytest
import structlog

from coalition.logs import configure_logging


@pytest.fixture
def _restored_logging() -> Iterator[None]:
    saved = sys.stderr
    try:
        yield
    finally:
        sys.stderr = saved
        configure_logging("warning", "console")  # what the test session configured (tests/conftest.py)


@pytest.mark.usefixtures("_restored_logging")
def test_a_line_after_the_configuring_stream_closed_goes_to_the_current_stderr() -> None:
    borrowed = io.StringIO()
    sys.stderr = borrowed  # what CliRunner does around an in-process command, which configures logging
    configure_logging("warning", "json")
    structlog.get_logger("test").warning("during the command")
    borrowed.close()
    current = io.StringIO()
    sys.stderr = current
    structlog.get_logger("test").warning("after the command", secret_free=True)
    assert '"event": "after the command"' in current.getvalue()
