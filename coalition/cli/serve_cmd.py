"""`coalition serve`: the web console (runs, approvals inbox, ledger explorer) on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

from typing import Annotated

import typer

from coalition.bootstrap import describe_ledger, ledger_location
from coalition.cli.common import LedgerPath, fail, settings
from coalition.cli.users_cmd import UsersPath, users_path
from coalition.ledger.errors import LedgerError
from coalition.web.errors import WebError


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind (another than 127.0.0.1 exposes it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    ledger: LedgerPath = None,
    users: UsersPath = None,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark cookies Secure (behind an https proxy).")
    ] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="Another Host header name to answer (NAME or NAME:PORT; repeatable). Loopback names with the "
            "port are always answered; any other Host is refused (DNS rebinding).",
        ),
    ] = None,
) -> None:
    """Start the web console and print its URL; stop with Ctrl-C.

    Example: coalition serve --port 8000 --ledger .coalition/ledger.db
    """
    import uvicorn

    from coalition.web.app import create_app

    try:
        location = ledger_location(ledger, settings())
        shown_ledger = describe_ledger(location)
        names = tuple(allow_host or ())
        if host not in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::"):  # noqa: S104 - names, not a bind
            names += (f"[{host}]" if ":" in host else host,)
        app = create_app(
            location,
            users_path(users),
            secure_cookies=secure_cookies,
            port=port or None,
            allowed_hosts=names,
            settings=settings(),
        )
    except (LedgerError, WebError, OSError) as exc:
        fail(str(exc))
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"Coalition console at http://{shown}:{port}/ (ledger: {shown_ledger}, users {users_path(users)})")
    if app.state.console.access.path is not None:
        typer.echo(f"Logins and failed logins are logged to {app.state.console.access.path}")
    if not app.state.console.users.list():
        typer.echo("No user yet: add one with  coalition users add NAME --role approver")
    try:
        # proxy_headers off: uvicorn would otherwise take the client address (and scheme) from X-Forwarded-For
        # (-Proto) sent by any client on 127.0.0.1, and the login throttle counts failures per client address
        uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc}")
    finally:
        app.state.console.close()
