"""Errors of the web console: a bad user-management input, and HTTP refusals with a one-line reason."""

from __future__ import annotations


class WebError(Exception):
    """Base of the console's errors."""


class UserError(WebError):
    """A user-management mistake (unknown role, duplicate name, unreadable users file)."""


class Refused(WebError):
    """A request the console refuses: an HTTP status and one line that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
