"""The `coalition` command line: verb-first sub-commands, each with help and an example. A command's module is
imported only when that command runs (coalition.cli.lazy), so every command starts at once."""

from __future__ import annotations

import typer

from coalition.cli.lazy import LazyGroup

app = typer.Typer(
    name="coalition",
    help="Coalition: run a governed autonomous enterprise, approve what its gates escalate, audit its ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
)


@app.callback()
def _root() -> None:
    """Coalition: run a governed autonomous enterprise, approve what its gates escalate, audit its ledger."""


def main() -> None:
    app()
