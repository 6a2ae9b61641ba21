"""`coalition drift`: two runs (two models, prompts or policies) compared by their decision mix."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from coalition.bootstrap import describe_ledger, ledger_location
from coalition.cli.common import LedgerPath, fail, open_ledger, run_or_latest, settings
from coalition.cli.terminal import TerminalConsole, clean, json_text
from coalition.scenarios.drift import DriftResult, run_drift
from coalition.scenarios.drift_render import (
    FORMATS,
    divergence,
    mix_cell,
    render_json,
    render_md,
    signed,
    summary_line,
)

if TYPE_CHECKING:
    from coalition.bootstrap import OpenLedger

OtherLedger = Annotated[
    Path | None,
    typer.Option(
        "--ledger-b",
        help="Run B's ledger when it is not run A's (a SQLite file or a postgresql:// URL). Default: --ledger.",
        dir_okay=False,
        show_default=False,
    ),
]


def drift_between(
    ledger_a: OpenLedger, run_a: str, ledger_b_path: Path | None, run_b: str, *, ledger_a_path: Path | None = None
) -> DriftResult:
    """Compare run A (in the open ledger A, at `ledger_a_path` or the default) with run B (in ledger A, or in the
    ledger at `ledger_b_path`, opened read-only); an unknown run is one line and exit 2. Two runs of the same id are
    labelled with their ledgers."""
    ledger_b = open_ledger(ledger_b_path, read_only=True) if ledger_b_path is not None else ledger_a
    a, b = run_or_latest(ledger_a, run_a), run_or_latest(ledger_b, run_b)
    labels = None
    if a == b and ledger_b_path is not None:
        cfg = settings()
        labels = (
            describe_ledger(ledger_location(ledger_a_path, cfg)),
            describe_ledger(ledger_location(ledger_b_path, cfg)),
        )
    return run_drift(ledger_a, a, ledger_b, b, labels=labels)


def drift(
    run_a: Annotated[str, typer.Argument(metavar="RUN_A", help="The run to compare from (e.g. the engines').")],
    run_b: Annotated[str, typer.Argument(metavar="RUN_B", help="The run to compare with (e.g. a model's).")],
    fmt: Annotated[str, typer.Option("--format", help="table, md or json.")] = "table",
    ledger_path: LedgerPath = None,
    ledger_b_path: OtherLedger = None,
) -> None:
    """Compare two runs (two models, prompts or policies) by their decision mix: allowed / denied / escalated rates
    per agent and action, and the divergence between the two action distributions.

    Per agent and action: how many proposals each run made and the rates; per agent and overall: the
    Jensen–Shannon divergence and total variation distance between the two action distributions; and the same
    proposals decided otherwise.

    Example: coalition drift my-scenario-20250303-101500-ab12 my-scenario-20250303-111500-cd34 --format md
    """
    if fmt not in FORMATS:
        fail(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    ledger = open_ledger(ledger_path, read_only=True)
    result = drift_between(ledger, run_a, ledger_b_path, run_b, ledger_a_path=ledger_path)
    if fmt == "json":
        typer.echo(json_text(render_json(result)))
    elif fmt == "md":
        typer.echo(clean(render_md(result)), nl=False)
    else:
        _print_tables(result)


def _print_tables(result: DriftResult) -> None:
    console = TerminalConsole(highlight=False)
    console.print(escape(summary_line(result)))
    if (warning := result.scenario_warning()) is not None:
        console.print(f"[yellow]{escape(warning)}[/]")
    agents = Table(title="per agent: how far the two mixes are apart (0 = the same)", title_justify="left")
    for name in ("agent", "proposals A", "proposals B", "action JS", "action TV", "outcome JS"):
        agents.add_column(name)
    for a in result.agents:
        agents.add_row(
            escape(a.agent),
            str(a.proposals_a),
            str(a.proposals_b),
            divergence(a.action_js),
            divergence(a.action_tv),
            divergence(a.outcome_js),
        )
    console.print(agents)
    actions = Table(title="per agent and action: n · allow / deny / escalate", title_justify="left")
    for name in ("agent", "action", "A", "B", "Δ allow", "Δ deny", "Δ escalate"):
        actions.add_column(name, no_wrap=name in {"agent", "action"})
    for r in result.rows:
        actions.add_row(
            escape(r.agent),
            escape(r.action),
            mix_cell(r.a),
            mix_cell(r.b),
            signed(r.delta("allow")),
            signed(r.delta("deny")),
            signed(r.delta("escalate")),
        )
    console.print(actions)
    for d in result.decided_otherwise:
        console.print(escape(f"decided otherwise: {d.agent} {d.action}: {d.a} → {d.b}"))
