"""`coalition pack …`: the installed domain packs (found through the `coalition.packs` entry points)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from coalition.cli.common import JsonFlag, OneLineGroup, fail, write_output
from coalition.cli.terminal import TerminalConsole, json_text
from coalition.domain import PackError, catalog

pack_app = typer.Typer(
    help="The domain packs: list the installed ones with their agents, actions and gates; scaffold a new one.",
    no_args_is_help=True,
    cls=OneLineGroup,
)


@pack_app.callback()
def pack() -> None:
    """The domain packs: list the installed ones with their agents, actions and gates; scaffold a new one."""


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


@pack_app.command("new")
def new_pack(
    name: Annotated[str, typer.Argument(help="the pack's name: a lowercase Python identifier, e.g. tea_shop")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="where to write it (new or empty; default ./NAME)")
    ] = None,
) -> None:
    """Scaffold a working pack: one agent, one action, one gate, a default policy, one scenario and its tests.

    Example: coalition pack new tea_shop --dir ./tea-shop && pip install -e ./tea-shop
    """
    from coalition.cli.pack_scaffold import ScaffoldProblem, scaffold

    target = directory if directory is not None else Path(name)
    try:
        names, written = scaffold(name, target, catalog())
    except (ScaffoldProblem, PackError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the pack into {target}: {exc.strerror or exc}")
    context = names.context()
    typer.echo(f"wrote pack {name} ({len(written)} files) in {target}")
    typer.echo(
        f"  agent {context['agent']}, action {context['action']}, gate large_order, scenario {context['scenario']}"
    )
    typer.echo(f"next: pip install -e {target} && coalition run {context['scenario']} --bus memory")


@pack_app.command("docs")
def pack_docs(
    name: Annotated[str, typer.Argument(help="an installed pack, e.g. billing-desk")],
    out: Annotated[
        Path | None, typer.Option("--out", help="write the reference to this file (default: print it)")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="write nothing: exit 1 when --out differs from what would be generated")
    ] = False,
) -> None:
    """The pack's action reference, generated from its declarations: arguments with types and bounds, proposers,
    budget argument, dependency keys, and the default policy's rules and gates per action.

    Example: coalition pack docs billing-desk --out docs/packs/billing-desk.md
    """
    from coalition.cli.pack_docs import action_reference
    from coalition.governance.errors import PolicyError
    from coalition.governance.policy import default_policy

    try:
        found = catalog().pack(name)
        policy = default_policy(name) if found.policy is not None else None
    except (PackError, PolicyError) as exc:
        fail(str(exc))
    text = action_reference(found, policy)
    if out is None:
        if check:
            fail("--check compares with the file --out names: give --out FILE")
        typer.echo(text, nl=False)
        return
    if check:
        try:
            current = out.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read {out}: {exc.strerror or exc}")
        if current != text:
            fail(
                f"{out} is not what pack {name}'s declarations generate: run coalition pack docs {name} --out {out}", 1
            )
        typer.echo(f"{out} is up to date")
        return
    write_output(out, text)
    typer.echo(f"wrote {out} ({len(found.actions)} actions of pack {name})")
