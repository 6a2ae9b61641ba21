"""`coalition ledger pg-setup`: an administrator creates a PostgreSQL ledger once (schema, owner role, app role)."""

from __future__ import annotations

from typing import Annotated

import typer

from coalition.cli.common import fail


def pg_setup(
    admin_url: Annotated[
        str, typer.Argument(help="postgresql:// URL of a role that may create roles and schemas (e.g. postgres).")
    ],
    schema: Annotated[str, typer.Option("--schema", help="Schema of the ledger.")] = "coalition",
    owner_role: Annotated[
        str, typer.Option("--owner-role", help="Role that owns the tables (NOLOGIN; created if missing).")
    ] = "coalition_owner",
    app_role: Annotated[
        str, typer.Option("--app-role", help="Role the application logs in as: SELECT and INSERT only.")
    ] = "coalition_app",
) -> None:
    """Create the ledger's schema, tables, triggers and roles, then print the URL the application should use.

    The app role owns nothing and may neither UPDATE, DELETE nor TRUNCATE; triggers refuse those even to the owner.

    Example: coalition ledger pg-setup postgresql://postgres@127.0.0.1:5432/coalition --schema coalition
    """
    from coalition.ledger.errors import LedgerError
    from coalition.ledger.postgres import app_url, display_url, setup_schema

    if not admin_url.startswith(("postgresql://", "postgres://")):
        fail(f"the admin URL must start with postgresql://, not {display_url(admin_url)!r}")
    try:
        setup_schema(admin_url, schema=schema, owner_role=owner_role, app_role=app_role)
        url = app_url(admin_url, app_role=app_role, schema=schema)
    except LedgerError as exc:
        fail(str(exc))
    typer.echo(f"created ledger schema {schema} (owner {owner_role}); the application connects as {app_role}:")
    typer.echo(f"  COALITION_LEDGER={url}")
