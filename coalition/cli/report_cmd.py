"""`coalition report` and `coalition audit`: a run as a report people read, or a package an auditor takes away."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from coalition.cli.approver_key import installed_approver_keys
from coalition.cli.common import (
    LedgerPath,
    check_run_id,
    fail,
    newest_checkpoint,
    open_ledger,
    run_or_latest,
    settings,
    write_output,
)
from coalition.cli.drift_cmd import drift_between
from coalition.cli.terminal import clean, json_text
from coalition.ledger.base import Ledger
from coalition.scenarios.audit import write_audit
from coalition.scenarios.board_divergence import board_check
from coalition.scenarios.dashboards import run_dashboards
from coalition.scenarios.errors import ScenariosError
from coalition.scenarios.replay import ReplayError, recorded_run
from coalition.scenarios.report_render import FORMATS, render
from coalition.scenarios.reports import RunReport, run_report

if TYPE_CHECKING:
    from coalition.bootstrap import OpenLedger
    from coalition.ledger.integrity import IntegrityReport
    from coalition.ledger.proofs import Attestation

DriftLedger = Annotated[
    Path | None,
    typer.Option(
        "--drift-ledger",
        help="The ledger of the --drift-against run when it is not this run's. Default: --ledger.",
        dir_okay=False,
        show_default=False,
    ),
]
RunArg = Annotated[str | None, typer.Argument(metavar="RUN", help="Run id (default: the most recent run).")]


def report(
    run: RunArg = None,
    fmt: Annotated[str, typer.Option("--format", help="html (self-contained, offline), md, json or csv.")] = "html",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (default: stdout; html: report-RUN.html).")
    ] = None,
    ledger_path: LedgerPath = None,
    drift_against: Annotated[
        str | None,
        typer.Option(
            "--drift-against",
            metavar="RUN",
            help="Add how this run's decision mix drifted from another run's (html, md, json).",
        ),
    ] = None,
    drift_ledger: DriftLedger = None,
) -> None:
    """Report a run: KPIs, charts over simulated time with decision markers, decisions, escalations, expectations.

    html, md and json also hold the executive overview with the three-statement model, the trust dashboard and
    the ops cockpit, each figure with its definition and the entries it is computed from.

    Example: coalition report my-scenario-20250303-101500-ab12 --format html --out report.html
    """
    if fmt not in FORMATS:
        fail(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if drift_against is not None and fmt == "csv":
        fail("--drift-against works with --format html, md or json (csv holds the decisions only)")
    ledger = open_ledger(ledger_path, read_only=True)
    run_id = run_or_latest(ledger, run)
    drifted = (
        drift_between(ledger, run_id, drift_ledger, drift_against, ledger_a_path=ledger_path)
        if drift_against is not None
        else None
    )
    try:
        built = run_report(ledger, run_id, reviewers=installed_approver_keys())
        dashboards = run_dashboards(ledger, run_id) if fmt != "csv" else None
        text = render(with_board_check(ledger, built), fmt, dashboards, drifted)
    except ScenariosError as exc:
        fail(str(exc))
    if out is None and fmt == "html":
        out = Path(f"report-{check_run_id(run_id, option='run')}.html")
    if out is None:  # stored text on stdout: controls and bidi marks shown as visible escapes (a file keeps them)
        typer.echo(json_text(text) if fmt == "json" else clean(text), nl=False)
        return
    write_output(out, text)
    typer.echo(f"wrote {out} ({fmt}, {len(text.encode()):,} bytes)")


def with_board_check(ledger: Ledger, report: RunReport) -> RunReport:
    """The report with its failed expectations re-checked against the scenario's scripted board, when people
    decided escalations of the run (a run the ledger cannot replay keeps its failures as they are)."""
    failed = [str(e.get("id")) for e in report.expectations if not e.get("passed")]
    if not failed:
        return report
    try:
        recorded = recorded_run(ledger, report.run_id)
    except ReplayError:
        return report
    entries = list(ledger.iter_entries(run_id=report.run_id))
    check = board_check(failed, entries, recorded.scenario, recorded.policy, recorded.seed)
    return dataclasses.replace(report, scripted_board=check.to_json())


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date or time (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def attestation(ledger: OpenLedger) -> Attestation:
    """The newest signed checkpoint, signing one now if the ledger has grown past it, with the earlier ones."""
    from coalition.bootstrap import attach_notary, ledger_trust
    from coalition.ledger.checkpoint import peek_size
    from coalition.ledger.proofs import Attestation

    trust = ledger_trust(settings(), ledger, client="cli")
    newest = newest_checkpoint(ledger, trust)
    if newest is None or newest.size < ledger.head()[0]:
        newest = attach_notary(ledger, trust).checkpoint()
    if newest is None:
        fail(f"the ledger at {ledger.path} is empty")
    notes = [note for _, note in trust.witness.notes(trust.origin)] + ledger.stored_checkpoints()
    earlier = tuple(sorted({size for note in notes if (size := peek_size(note)) is not None}))
    return Attestation(ledger, newest, earlier)


def integrity(ledger: OpenLedger) -> IntegrityReport:
    """`ledger verify`'s full check (chain, tree, checkpoints, witness, this CLI's memory, derived data)."""
    from coalition.bootstrap import ledger_trust
    from coalition.ledger.integrity import check_ledger

    trust = ledger_trust(settings(), ledger, client="cli")
    seen = trust.seen.load() if trust.seen is not None else None
    return check_ledger(ledger, verifiers=trust.verifiers, witness=trust.witness, seen=seen, seen_name="the cli")


def audit(
    run: RunArg = None,
    start: Annotated[str | None, typer.Option("--from", help="Simulated time from (YYYY-MM-DD[THH:MM]).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Simulated time to (inclusive).")] = None,
    incident: Annotated[str | None, typer.Option("--incident", help="Only what concerns this incident id.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="A directory, or a file ending in .zip.")] = None,
    ledger_path: LedgerPath = None,
) -> None:
    """Write an audit package: the ledger slice as JSONL, the verification result, the policy in force, the
    approvals and a readable summary — by time range or by incident.

    Example: coalition audit my-scenario-20250303-101500-ab12 --incident INCIDENT_ID --out audit.zip
    """
    if incident is not None and (start is not None or end is not None):
        fail("give either --from/--to or --incident, not both")
    begin, finish = _when(start, "--from"), _when(end, "--to")
    if end is not None and finish is not None and len(end) == 10:
        finish = finish.replace(hour=23, minute=59, second=59)
    ledger = open_ledger(ledger_path, read_only=True)
    run_id = run_or_latest(ledger, run)
    target = out or Path(f"audit-{check_run_id(run_id, option='run')}")
    proof = attestation(ledger)
    try:
        package = write_audit(
            ledger,
            run_id,
            target,
            start=begin,
            end=finish,
            incident=incident,
            attestation=proof,
            integrity=integrity(ledger),
        )
    except ScenariosError as exc:
        fail(str(exc))
    state = "verified" if package.verified else "VERIFICATION FAILED"
    typer.echo(f"wrote {package.path}: {package.entries} entries, ledger {state}; check it offline: python verify.py")
    if not package.verified:
        raise typer.Exit(1)
