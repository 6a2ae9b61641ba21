"""The console's composition: `create_app(ledger_path, users_path)` wires the ledger, users, routes and safety."""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from coalition.bootstrap import LedgerLocation, open_ledger
from coalition.bus.clock import Clock, WallClock
from coalition.bus.keys import APPROVERS_DIR, ApproverKeys
from coalition.ledger.errors import MalformedEntry
from coalition.web.access_log import AccessLog
from coalition.web.auth import LoginRequired, current_principal
from coalition.web.errors import Refused, WebError
from coalition.web.hosts import HostAllowlist
from coalition.web.live_runs import LiveRuns
from coalition.web.login_throttle import ThrottlePolicy
from coalition.web.run_views import RunViews
from coalition.web.signing_keys import SigningKeys
from coalition.web.state import ConsoleState
from coalition.web.urls import path_segment
from coalition.web.users_store import UserStore

if TYPE_CHECKING:
    from coalition.bootstrap import LedgerTrust, OpenLedger
    from coalition.settings import Settings

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _error_page(request: Request, status: int, message: str, *, navigation: bool = True) -> Response:
    """The error as JSON (API) or as a page that keeps the navigation for a logged-in user."""
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    state: ConsoleState = request.app.state.console
    principal = current_principal(request) if navigation else None
    context = {
        "status": status,
        "message": message,
        "principal": principal,
        "csrf": principal.session.csrf_token if principal else "",
    }
    return state.templates.TemplateResponse(request, "error.html", context, status_code=status)


def create_app(
    ledger_path: LedgerLocation,
    users_path: Path,
    *,
    clock: Clock | None = None,
    session_ttl: timedelta = timedelta(hours=8),
    secure_cookies: bool = False,
    port: int | None = None,
    allowed_hosts: tuple[str, ...] = (),
    access_log: Path | None = None,
    throttle: ThrottlePolicy | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """The console app over one ledger file and one users file (created if missing, 0600).

    `port`: the port it serves on (the `Host` allowlist then requires it); `allowed_hosts`: more names than the
    loopback ones; `access_log`: default `console-access.log` beside the users file. With `settings`, the ledger is
    refused unless it extends the newest checkpoint the console saw and the witness's, and it signs checkpoints
    after each human decision taken in the console.
    """
    from coalition.web import (
        routes_api,
        routes_approvals,
        routes_assets,
        routes_auth,
        routes_dashboards,
        routes_ledger,
        routes_runs,
    )

    package = resources.files("coalition.web")
    templates = Jinja2Templates(directory=str(package.joinpath("templates")))
    templates.env.globals["fmt_money"] = lambda v: f"${float(v):,.2f}" if v is not None else "—"
    templates.env.filters["segment"] = path_segment
    try:
        hosts = HostAllowlist.of(port, allowed_hosts)
    except ValueError as exc:
        raise WebError(str(exc)) from None
    if access_log is None and str(users_path) != ":memory:":
        access_log = Path(users_path).parent / "console-access.log"
    state = ConsoleState(
        ledger=open_ledger(ledger_path),
        users=UserStore(users_path),
        clock=clock or WallClock(),
        session_ttl=session_ttl,
        secure_cookies=secure_cookies,
        live=LiveRuns(ledger_path),
        templates=templates,
        hosts=hosts,
        access=AccessLog(access_log),
        throttle=throttle or ThrottlePolicy(),
        signing=SigningKeys(ApproverKeys(users_path.parent / "keys" / APPROVERS_DIR)),
    )

    state.run_views = RunViews(reviewers=state.signing.directory)
    if settings is not None:  # a console on either backend checks and signs checkpoints of the Merkle tree
        state.trust = _trust(state.ledger, settings)

    state.live.on_finished = state.warm_run_view

    app = FastAPI(
        title="Coalition console",
        version="1",
        description="Runs, approvals inbox and ledger explorer. JSON endpoints live under /api.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.console = state
    app.mount("/static", StaticFiles(directory=str(package.joinpath("static")), follow_symlink=True), name="static")
    for module in (
        routes_auth,
        routes_runs,
        routes_approvals,
        routes_ledger,
        routes_api,
        routes_assets,
        routes_dashboards,
    ):
        app.include_router(module.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        host = request.headers.get("host")
        if not state.hosts.allows(host):
            client = request.client.host if request.client is not None else "unknown"
            state.access.record("host_refused", at=state.clock.now(), client=client, host=(host or "")[:200])
            response: Response = _error_page(
                request,
                400,
                f"Host header {(host or '')[:100]!r} is not one this console answers to "
                f"(allowed: {state.hosts.describe()}; add names with coalition serve --allow-host)",
                navigation=False,
            )
        else:
            response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "log in first (no live session)"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/"
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return _error_page(request, exc.status, exc.reason)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        message = f"bad request: {where + ': ' if where else ''}{first.get('msg', 'invalid')}"
        if _wants_json(request):
            return JSONResponse({"detail": message, "errors": _jsonable(errors)}, status_code=422)
        return _error_page(request, 400, message)

    @app.exception_handler(MalformedEntry)
    async def malformed_entry(request: Request, exc: MalformedEntry) -> Response:
        return _error_page(request, 409, str(exc))  # an entry altered in the ledger: named, not a server error

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error_page(request, exc.status_code, str(exc.detail))

    return app


def _trust(ledger: OpenLedger, settings: Settings) -> LedgerTrust:
    from coalition.bootstrap import attach_notary, ledger_trust
    from coalition.ledger.errors import LedgerError
    from coalition.ledger.integrity import guard_problem

    trust = ledger_trust(settings, ledger, client="console")
    seen = trust.seen.load() if trust.seen is not None else None
    problem, _ = guard_problem(
        ledger, verifiers=trust.verifiers, witness=trust.witness, seen=seen, seen_name="the console"
    )
    if problem is not None:
        ledger.close()
        raise LedgerError(f"refusing the ledger at {ledger.path}: {problem}; see coalition ledger verify")
    attach_notary(ledger, trust)
    return trust


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")


def _jsonable(errors: Any) -> list[dict[str, Any]]:
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors]
