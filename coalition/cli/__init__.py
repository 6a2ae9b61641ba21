"""The `coalition` command line: verb-first sub-commands, each with help and an example."""

from __future__ import annotations

import typer

from coalition.cli.approvals_cmd import approvals_app
from coalition.cli.common import OneLineGroup
from coalition.cli.doctor_cmd import doctor
from coalition.cli.ledger_cmd import ledger_app
from coalition.cli.replay_cmd import consistency, replay, whatif
from coalition.cli.report_cmd import audit, report
from coalition.cli.run_cmd import demo, run
from coalition.cli.scenario_cmd import scenario_app
from coalition.cli.serve_cmd import serve
from coalition.cli.users_cmd import users_app

app = typer.Typer(
    name="coalition",
    help="Coalition: run a governed autonomous enterprise, approve what its gates escalate, audit its ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineGroup,
)
app.add_typer(ledger_app, name="ledger")
app.add_typer(approvals_app, name="approvals")
app.command("run")(run)
app.command("demo")(demo)
app.command("doctor")(doctor)
app.command("serve")(serve)
app.add_typer(users_app, name="users")
app.command("replay")(replay)
app.command("whatif")(whatif)
app.command("consistency")(consistency)
app.command("report")(report)
app.command("audit")(audit)
app.add_typer(scenario_app, name="scenario")


def main() -> None:
    app()
