"""`coalition scenario …`: list the library and scaffold new scenario files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coalition.cli.common import fail
from coalition.domain import PackError
from coalition.scenarios.errors import ScenarioError, ScenariosError
from coalition.scenarios.scaffold import scaffold
from coalition.scenarios.spec import list_library, load_scenario

scenario_app = typer.Typer(
    help="The scenario library: list it, scaffold a new scenario.", no_args_is_help=True, add_completion=False
)


@scenario_app.command("list")
def list_scenarios() -> None:
    """List the scenarios shipped in the installed packs' libraries: name, pack, length.

    Example: coalition scenario list
    """
    names = list_library()
    width = max((len(name) for name in names), default=0)
    for name in names:
        try:
            s = load_scenario(name)
        except ScenarioError as exc:
            typer.echo(f"{name}: {exc}")
            continue
        typer.echo(
            f"{name:{width}}  {s.pack_name:14} {s.days:4} days  {len(s.events):3} events  "
            f"{len(s.expectations):3} expectations"
        )


@scenario_app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Slug of the new scenario.")],
    directory: Annotated[Path, typer.Option("--dir", help="Where to write NAME.yaml.", file_okay=False)] = Path("."),
    pack: Annotated[
        str | None, typer.Option("--pack", help="The pack whose template to start from (default: the default pack).")
    ] = None,
) -> None:
    """Write NAME.yaml, a valid commented scenario to start from (run it with coalition run NAME.yaml).

    Example: coalition scenario new heat-wave --dir scenarios/
    """
    try:
        path = scaffold(name, directory, pack)
    except (ScenarioError, ScenariosError, PackError) as exc:
        fail(str(exc))
    typer.echo(f"wrote {path}; try: coalition run {path} --bus memory")
