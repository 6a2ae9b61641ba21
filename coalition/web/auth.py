"""Who may do what in the console: argon2 passwords, the session cookie, and the roles each route allows.

Deny by default: every route names the roles it allows through `allow(...)`; a request without a live
session is sent to log in (pages) or gets 401 (JSON), and a role that is not listed gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from coalition.web.errors import Refused
from coalition.web.hosts import cookie_suffix, instance_of
from coalition.web.passwords import hash_password, password_matches
from coalition.web.users_store import Session

__all__ = [
    "Principal",
    "allow",
    "current_principal",
    "hash_password",
    "password_matches",
    "request_instance",
    "session_cookie",
]

SESSION_COOKIE = "coalition_session"  # + "_PORT": browsers send a host's cookies to every port of it

# What each console role is for. The policy's approver directory still decides who may approve which gate.
READERS: frozenset[str] = frozenset({"viewer", "approver", "policy-admin", "auditor"})
DECIDERS: frozenset[str] = frozenset({"approver"})  # auditors read everything but never approve
AUDIT: frozenset[str] = frozenset({"auditor", "approver", "policy-admin"})  # export, verify
OPERATORS: frozenset[str] = frozenset({"policy-admin"})  # start runs from the console


@dataclass(frozen=True, slots=True)
class Principal:
    """The logged-in user of one request, with the session's CSRF token."""

    session: Session
    token: str

    @property
    def name(self) -> str:
        return self.session.user.name

    @property
    def roles(self) -> tuple[str, ...]:
        return self.session.user.roles

    def can(self, roles: frozenset[str]) -> bool:
        return any(r in roles for r in self.roles)


class LoginRequired(Exception):
    """No live session: pages redirect to /login, JSON answers 401."""


def allow(*groups: frozenset[str]) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the request's principal, if one of its roles is in `groups`; else refuse."""
    allowed = frozenset().union(*groups)

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        if principal is None:
            raise LoginRequired
        if not principal.can(allowed):
            raise Refused(
                403,
                f"{principal.name} ({', '.join(principal.roles)}) may not do this; needs one of: "
                f"{', '.join(sorted(allowed))}",
            )
        return principal

    return dependency


def session_cookie(request: Request) -> str:
    """The session cookie's name on the console instance this request reached (e.g. coalition_session_8000)."""
    return SESSION_COOKIE + cookie_suffix(request.headers.get("host"))


def request_instance(request: Request) -> str:
    """The console instance (host:port) the request reached; a session opened on another one is not valid here."""
    return instance_of(request.headers.get("host"))


def current_principal(request: Request) -> Principal | None:
    token = request.cookies.get(session_cookie(request))
    if not token:
        return None
    state = request.app.state.console
    session = state.users.session(token, now=state.clock.now(), instance=request_instance(request))
    return None if session is None else Principal(session, token)
