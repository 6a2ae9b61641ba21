"""`coalition users …`: the console's accounts (roles viewer / approver / policy-admin / auditor), argon2-hashed.

A console user approves as themselves: their name must match the policy's approver directory for the gate.
An approver also gets an Ed25519 signing key sealed with their password (<data_dir>/keys/approvers/): the same
password opens it in the console and in `coalition approvals approve --as NAME`, so both sign as one identity.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from coalition.bootstrap import approver_keys
from coalition.bus.errors import KeyStoreError
from coalition.cli.common import OneLineGroup, fail, settings
from coalition.web.errors import UserError
from coalition.web.login_throttle import user_key
from coalition.web.passwords import hash_password
from coalition.web.users_store import ROLES, UserStore

users_app = typer.Typer(
    help="Manage web-console users: add one with a role, list them, change a password, remove one.",
    no_args_is_help=True,
    cls=OneLineGroup,
)

UsersPath = Annotated[
    Path | None,
    typer.Option(
        "--users",
        help="Users database. Default: users.db under COALITION_DATA_DIR.",
        dir_okay=False,
        show_default=False,
    ),
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin (no prompt).")
]
MIN_PASSWORD = 8


def users_path(path: Path | None) -> Path:
    return path or settings().data_dir / "users.db"


def _store(path: Path | None) -> UserStore:
    try:
        return UserStore(users_path(path))
    except UserError as exc:
        fail(str(exc))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        fail(f"the password must have at least {MIN_PASSWORD} characters")
    return password


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="User name (use the policy approver's name to approve).")],
    role: Annotated[list[str], typer.Option("--role", help=f"A role: {', '.join(ROLES)} (repeat for several).")],
    password_stdin: PasswordStdin = False,
    users: UsersPath = None,
) -> None:
    """Add a console user with one or more roles; the password comes from a prompt or stdin.

    Example: coalition users add carol --role approver
    """
    unknown = [r for r in role if r not in ROLES]
    if unknown:
        fail(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    store = _store(users)
    try:
        if store.get(name.strip()) is not None:
            fail(f"user {name.strip()!r} already exists in {store.path}")
        password = _password(password_stdin)
        user = store.add(name, role, hash_password(password), now=datetime.now(UTC))
    except UserError as exc:
        fail(str(exc))
    finally:
        store.close()
    typer.echo(f"added {user.name} ({', '.join(user.roles)}) to {users_path(users)}")
    if "approver" in user.roles:
        _seal_key(user.name, password)


def _seal_key(name: str, password: str) -> None:
    """A new approver signing key, sealed with the password; runs started from now on record its public half."""
    try:
        public = approver_keys(settings().data_dir).create(name, password)
    except (KeyStoreError, OSError) as exc:
        fail(f"cannot write the approver key of {name}: {exc}")
    typer.echo(f"signing key of {name}: {public} (runs started from now on record it)")


@users_app.command("list")
def list_users(users: UsersPath = None) -> None:
    """List console users and their roles.

    Example: coalition users list
    """
    store = _store(users)
    try:
        found = store.list()
    finally:
        store.close()
    if not found:
        typer.echo(f"no user in {users_path(users)} (add one: coalition users add NAME --role viewer)")
    for user in found:
        typer.echo(f"{user.name}\t{', '.join(user.roles)}")


@users_app.command("passwd")
def passwd(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: PasswordStdin = False,
    users: UsersPath = None,
) -> None:
    """Set a user's password (their open sessions end).

    Example: coalition users passwd carol --password-stdin < pw.txt
    """
    store = _store(users)
    try:
        if store.get(name) is None:
            fail(f"no user {name!r} in {store.path}")
        user = store.get(name)
        password = _password(password_stdin)
        store.set_password(name, hash_password(password))
    except UserError as exc:
        fail(str(exc))
    finally:
        store.close()
    typer.echo(f"password of {name} changed; their sessions were closed")
    if user is not None and "approver" in user.roles:
        _seal_key(name, password)  # a new key: runs already started keep verifying against the one they recorded


@users_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="User name.")], users: UsersPath = None) -> None:
    """Remove a user and close their sessions (their recorded decisions stay in the ledger).

    Example: coalition users remove carol
    """
    store = _store(users)
    try:
        store.remove(name)
        approver_keys(settings().data_dir).remove(name)
    except (UserError, KeyStoreError) as exc:
        fail(str(exc))
    finally:
        store.close()
    typer.echo(f"removed {name}")


@users_app.command("unlock")
def unlock(name: Annotated[str, typer.Argument(help="User name.")], users: UsersPath = None) -> None:
    """Clear a user's failed logins (the console's delay and lockout after wrong passwords).

    Example: coalition users unlock carol
    """
    store = _store(users)
    try:
        cleared = store.clear_failures(user_key(name.strip()))
    finally:
        store.close()
    typer.echo(f"unlocked {name}" if cleared else f"{name} had no failed logins on record")
