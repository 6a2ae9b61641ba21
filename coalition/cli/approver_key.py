"""An approver's signing key, opened with their password: how the CLI signs decisions and review marks."""

from __future__ import annotations

import sys

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalition.bootstrap import approver_keys
from coalition.bus.errors import KeyStoreError
from coalition.cli.common import settings


def trusted_keys(name: str) -> dict[str, str]:
    """This installation's public approver key for `name` (empty when it has none): what checks a review mark of a
    run that recorded no approver directory."""
    try:
        return approver_keys(settings().data_dir).directory_for([name])
    except KeyStoreError:
        return {}


def installed_approver_keys() -> dict[str, str]:
    """Every approver key of this installation (name → public key): what checks review marks in reports."""
    try:
        store = approver_keys(settings().data_dir)
        return store.directory_for(store.names())
    except KeyStoreError:
        return {}


def unlock_approver_key(approver: str, from_stdin: bool, *, what: str = "a decision") -> Ed25519PrivateKey | None:
    """The approver's signing key, opened with their password: who cannot open it cannot decide in their name.
    Refused (exit 1, one line, nothing recorded) without the right password. A name without a key gets None:
    the approvals service then says why it cannot decide (not an approver, the proposer …) or that it is unsigned.
    """
    store = approver_keys(settings().data_dir)
    try:
        if store.public(approver) is None:
            return None
    except KeyStoreError:
        return None
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = typer.prompt(f"{approver}'s password", hide_input=True, default="", show_default=False)
    else:
        password = ""
    if not password:
        typer.echo(f"refused: {what} as {approver} needs {approver}'s password (prompt or --password-stdin)", err=True)
        raise typer.Exit(1)
    try:
        return store.unlock(approver, password)
    except KeyStoreError as exc:
        typer.echo(f"refused: {exc}; nothing recorded", err=True)
        raise typer.Exit(1) from None
