"""`coalition pack …`: the installed domain packs (found through the `coalition.packs` entry points)."""

from __future__ import annotations

import orjson
import typer
from rich.table import Table

from coalition.cli.common import JsonFlag, OneLineGroup, fail
from coalition.cli.terminal import TerminalConsole, json_text
from coalition.domain import PackError, catalog

pack_app = typer.Typer(
    help="The installed domain packs: list them with their agents, actions and gates.",
    no_args_is_help=True,
    cls=OneLineGroup,
)


@pack_app.callback()
def pack() -> None:
    """The installed domain packs: list them with their agents, actions and gates."""


@pack_app.command("list")
def list_packs(as_json: JsonFlag = False) -> None:
    """List the installed packs: name, title, agents, actions and gates.

    Example: coalition pack list --json
    """
    try:
        installed = catalog().packs
    except PackError as exc:
        fail(str(exc))
    rows = [
        {
            "name": pack.name,
            "title": pack.title,
            "description": pack.description,
            "agents": list(pack.agent_names),
            "actions": [action.name for action in pack.actions],
            "gates": list(pack.gates),
        }
        for pack in (installed[name] for name in sorted(installed))
    ]
    if as_json:
        typer.echo(json_text(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()))
        return
    if not rows:
        typer.echo("no pack is installed (a pack registers a coalition.packs entry point)")
        return
    table = Table("pack", "title", "agents", "actions", "gates")
    for name in sorted(installed):
        pack = installed[name]
        table.add_row(pack.name, pack.title, ", ".join(pack.agent_names), str(len(pack.actions)), str(len(pack.gates)))
    TerminalConsole().print(table)
