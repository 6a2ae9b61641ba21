"""The `coalition` command line: verb-first sub-commands, each with help and an example. A command's module is
imported only when that command runs (coalition.cli.lazy), so every command starts at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
def _root(
    pack_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--pack-path",
            metavar="DIR",
            help="a pack's folder to use without installing it (its project, as coalition pack new writes it, or "
            "its package); repeatable; adds to COALITION_PACK_PATH for this command and what it starts",
        ),
    ] = None,
) -> None:
    """Coalition: run a governed autonomous enterprise, approve what its gates escalate, audit its ledger."""
    if pack_path:
        from coalition.cli.pack_path import use_pack_path

        use_pack_path(pack_path)


def main() -> None:
    app()
