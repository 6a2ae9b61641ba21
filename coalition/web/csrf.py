"""Cross-site request forgery defences for every state-changing request: a token and a Fetch-Metadata check.

The token is bound to the session (a hidden `csrf_token` form field, or the `X-CSRF-Token` header that htmx
sends); the browser's `Sec-Fetch-Site` header must say `same-origin` or `none` when present (clients that do
not send it, like curl, still need the token). The login form uses a double-submit cookie instead.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from coalition.web.errors import Refused
from coalition.web.hosts import cookie_suffix

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
LOGIN_CSRF_COOKIE = "coalition_login_csrf"  # + "_PORT", like the session cookie
_ALLOWED_SITES = frozenset({"same-origin", "none"})


def login_csrf_cookie(request: Request) -> str:
    return LOGIN_CSRF_COOKIE + cookie_suffix(request.headers.get("host"))


def check_fetch_site(request: Request) -> None:
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in _ALLOWED_SITES:
        raise Refused(403, f"cross-site request refused (Sec-Fetch-Site: {site})")


def check_token(expected: str, given: str | None) -> None:
    if not given:
        raise Refused(403, "missing CSRF token; reload the page and try again")
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Refused(403, "bad CSRF token; reload the page and try again")


def submitted_token(request: Request, form_value: str | None) -> str | None:
    return form_value or request.headers.get(CSRF_HEADER)
