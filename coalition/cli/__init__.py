"""The `coalition` command line: verb-first sub-commands, each with help and an example."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="coalition",
    help="Coalition: run a governed autonomous enterprise, approve what its gates escalate, audit its ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    app()
