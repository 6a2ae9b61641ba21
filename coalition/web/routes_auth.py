"""Logging in and out: argon2-checked passwords behind a throttle, a server-side session bound to this console
instance, a per-instance `HttpOnly; SameSite=Strict` cookie, and an access-log line for every attempt."""

from __future__ import annotations

import math
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from coalition.web.auth import READERS, Principal, allow, password_matches, request_instance, session_cookie
from coalition.web.csrf import CSRF_FIELD, check_fetch_site, check_token, login_csrf_cookie, submitted_token
from coalition.web.login_throttle import client_key, user_key
from coalition.web.pages import render, state_of

router = APIRouter()


def _local(target: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _secure(request: Request) -> bool:
    return state_of(request).secure_cookies or request.url.scheme == "https"


def client_of(request: Request) -> str:
    """The client's address as the socket saw it (forwarding headers are not trusted)."""
    return request.client.host if request.client is not None else "unknown"


def _login_page(request: Request, *, next_url: str, error: str = "", status: int = 200, name: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", None, status, next_url=next_url, login_csrf=token, error=error, name=name)
    response.set_cookie(
        login_csrf_cookie(request), token, httponly=True, samesite="strict", secure=_secure(request), path="/login"
    )
    return response


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str | None = None) -> Response:
    """The login form (also where an expired session lands)."""
    return _login_page(request, next_url=_local(next))


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
    next: Annotated[str | None, Form()] = None,
) -> Response:
    check_fetch_site(request)
    check_token(request.cookies.get(login_csrf_cookie(request)) or secrets.token_urlsafe(16), csrf_token)
    state = state_of(request)
    name = name.strip()
    client = client_of(request)
    keys = (user_key(name), client_key(client))
    # One password check at a time: argon2 is the costly part, and the throttle must see each failure before
    # the next attempt is judged (parallel guessers queue here, then meet the delay without any hashing).
    with state.login_lock:
        now = state.clock.now()
        waits = [state.throttle.wait(state.users.failures(key), now) for key in keys]
        if max(waits) > timedelta(0):
            wait = max(waits)
            state.access.record("login_refused", at=now, client=client, user=name, retry_after_s=_seconds(wait))
            response = _login_page(
                request,
                next_url=_local(next),
                error=f"Too many failed logins: try again in {_seconds(wait)} s.",
                status=429,
                name=name,
            )
            response.headers["Retry-After"] = str(_seconds(wait))
            return response
        user = state.users.get(name)
        if not password_matches(user, password):
            for key in keys:
                record = state.throttle.after_failure(state.users.failures(key), key, now)
                state.users.save_failures(record)
                if record.locked_until is not None and record.failures == state.throttle.lockout_after(key):
                    state.access.record(
                        "lockout", at=now, client=client, user=name, key=key, until=record.locked_until.isoformat()
                    )
            state.access.record("login_failed", at=now, client=client, user=name)
            return _login_page(
                request, next_url=_local(next), error="Unknown user or wrong password.", status=401, name=name
            )
        assert user is not None
        state.users.clear_failures(user_key(name))
        instance = request_instance(request)
        token, _ = state.users.open_session(user, now=now, ttl=state.session_ttl, instance=instance)
        state.access.record("login", at=now, client=client, user=name, instance=instance)
    state.signing.unlock(token, user.name, password)  # an approver's signing key, for this session only
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(
        session_cookie(request),
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=int(state.session_ttl.total_seconds()),
        path="/",
    )
    response.delete_cookie(login_csrf_cookie(request), path="/login", httponly=True, samesite="strict")
    return response


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request,
    principal: Annotated[Principal, Depends(allow(READERS))],
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Response:
    check_fetch_site(request)
    check_token(principal.session.csrf_token, submitted_token(request, csrf_token))
    state = state_of(request)
    state.users.close_session(principal.token)
    state.access.record("logout", at=state.clock.now(), client=client_of(request), user=principal.name)
    state.signing.forget(principal.token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(session_cookie(request), path="/")
    return response
