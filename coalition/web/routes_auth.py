"""Logging in and out: argon2-checked passwords, a server-side session, a `HttpOnly; SameSite=Strict` cookie."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from coalition.web.auth import READERS, SESSION_COOKIE, Principal, allow, password_matches
from coalition.web.csrf import CSRF_FIELD, LOGIN_CSRF_COOKIE, check_fetch_site, check_token, submitted_token
from coalition.web.pages import render, state_of

router = APIRouter()


def _local(target: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _secure(request: Request) -> bool:
    return state_of(request).secure_cookies or request.url.scheme == "https"


def _login_page(request: Request, *, next_url: str, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", None, status, next_url=next_url, login_csrf=token, error=error)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/login"
    )
    return response


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
    check_token(request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(16), csrf_token)
    state = state_of(request)
    user = state.users.get(name.strip())
    if not password_matches(user, password):
        return _login_page(request, next_url=_local(next), error="Unknown user or wrong password.", status=401)
    assert user is not None
    token, _ = state.users.open_session(user, now=state.clock.now(), ttl=state.session_ttl)
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=int(state.session_ttl.total_seconds()),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login", httponly=True, samesite="strict")
    return response


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request,
    principal: Annotated[Principal, Depends(allow(READERS))],
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Response:
    check_fetch_site(request)
    check_token(principal.session.csrf_token, submitted_token(request, csrf_token))
    state_of(request).users.close_session(principal.token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
