"""`coalition ledger …`: list, show, verify, digest, explain and runs — auditing the ledger from a terminal."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Annotated, Any, get_args

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from coalition.bootstrap import ledger_trust
from coalition.cli.common import (
    JsonFlag,
    LedgerPath,
    OneLineGroup,
    RunOption,
    fail,
    newest_checkpoint,
    open_ledger,
    run_or_latest,
    settings,
)
from coalition.cli.pg_setup_cmd import pg_setup
from coalition.cli.terminal import TerminalConsole, clean, json_text
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.digest import run_digest
from coalition.ledger.entry import EntryKind, LedgerEntry
from coalition.ledger.errors import EntryNotFound, LedgerError
from coalition.ledger.explain import ChainLink, Decision, Explanation, explain, summary_line
from coalition.ledger.numbering import RunNumbering
from coalition.spreadsheet_cells import formula_safe

if TYPE_CHECKING:
    from coalition.bootstrap import OpenLedger

ledger_app = typer.Typer(
    help="Audit the decision ledger: list entries, show one, verify the hash chain, digest a run, explain a decision.",
    no_args_is_help=True,
    cls=OneLineGroup,
)

KINDS: tuple[str, ...] = get_args(EntryKind)
CSV_COLUMNS = (
    "seq",
    "run_id",
    "sim_time",
    "wall_time",
    "actor",
    "kind",
    "subject",
    "outcome",
    "gate",
    "rule_ids",
    "rationale",
    "message_id",
    "correlation_id",
    "causation_id",
    "hash",
)


def _entry_json(entry: LedgerEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json")


def _dumps(value: Any, *, indent: bool = False) -> str:
    option = orjson.OPT_UTC_Z | (orjson.OPT_INDENT_2 if indent else 0)
    return json_text(orjson.dumps(value, option=option).decode())  # the same JSON, safe on a terminal


def _console() -> Console:
    """A console that stays readable when piped: tables get room instead of 80 squeezed columns."""
    console = TerminalConsole(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = TerminalConsole(highlight=False, soft_wrap=False, width=max(console.width, 180))
    return console


@ledger_app.command("list")
def list_entries(
    *,
    ledger_path: LedgerPath = None,
    run: RunOption = None,
    agent: Annotated[str | None, typer.Option(help="Entries by or about this agent (finance, ops, …).")] = None,
    kind: Annotated[str | None, typer.Option(help=f"Entry kind: {', '.join(KINDS)}.")] = None,
    gate: Annotated[str | None, typer.Option(help="Decision gate (one the run's policy declares).")] = None,
    outcome: Annotated[str | None, typer.Option(help="Outcome: allow, deny, escalate, approved, applied, …")] = None,
    search: Annotated[str | None, typer.Option(help="Words that must all appear in the rationale or subject.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many (the most recent); 0 = all.")] = 100,
    table: Annotated[bool, typer.Option("--table", help="A table (the default).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of full entries.")] = False,
    nl: Annotated[bool, typer.Option("--nl", help="Newline-delimited JSON, one entry per line.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
) -> None:
    """List ledger entries of a run, filtered, oldest first.

    Example: coalition ledger list --agent finance --kind verdict --outcome escalate --json
    """
    if sum((table, as_json, nl, as_csv)) > 1:
        fail("choose one output format: --table, --json, --nl or --csv")
    if kind is not None and kind not in KINDS:
        fail(f"unknown kind {kind!r} (expected one of: {', '.join(KINDS)})")
    ledger = open_ledger(ledger_path, read_only=True)
    try:
        run_id = run_or_latest(ledger, run)
        query = LedgerQuery(
            run_id=run_id,
            agent=agent,
            kind=kind,
            gate=gate,
            outcome=outcome,
            search=search,
            limit=limit or None,
            newest_first=True,
        )
        entries = list(reversed(ledger.query(query)))
        tabled = not (as_json or nl or as_csv)
        numbering = RunNumbering(ledger, run_id)
        numbers = [numbering.number(e.seq) for e in entries] if tabled else []
        actions = entry_actions(ledger, run_id, entries) if tabled else []
    finally:
        ledger.close()
    if as_json:
        typer.echo(_dumps([_entry_json(e) for e in entries], indent=True))
    elif nl:
        for entry in entries:
            typer.echo(_dumps(_entry_json(entry)))
    elif as_csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for entry in entries:
            data = _entry_json(entry)
            data["rule_ids"] = ";".join(entry.rule_ids)
            writer.writerow([formula_safe("" if data[c] is None else str(data[c])) for c in CSV_COLUMNS])
        typer.echo(clean(buffer.getvalue()), nl=False)  # stored text, shown with visible escapes
    else:
        _console().print(_entries_table(entries, run_id, numbers, actions))


def entry_actions(ledger: Ledger, run_id: str, entries: list[LedgerEntry]) -> list[str]:
    """The action each entry concerns: its own payload's, else its proposal's (approvals, resolutions name only
    the proposal id); empty for observations, messages and run entries."""
    wanted = {
        e.subject
        for e in entries
        if e.kind in PROPOSAL_SUBJECT_KINDS and not isinstance(e.payload.get("action"), str) and e.subject
    }
    by_proposal: dict[str, str] = {}
    for subject in sorted(wanted):
        found = ledger.query(LedgerQuery(run_id=run_id, subject=subject, kind="proposal", limit=1))
        if found and isinstance(found[0].payload.get("action"), str):
            by_proposal[subject] = found[0].payload["action"]
    out = []
    for e in entries:
        action = e.payload.get("action")
        if isinstance(action, str) and e.kind in PROPOSAL_SUBJECT_KINDS:
            out.append(action)
        else:
            out.append(by_proposal.get(e.subject, "") if e.kind in PROPOSAL_SUBJECT_KINDS else "")
    return out


PROPOSAL_SUBJECT_KINDS = frozenset(
    {"proposal", "verdict", "approval", "rejection", "resolution", "authorization", "execution"}
)


def _entries_table(entries: list[LedgerEntry], run_id: str, numbers: list[int], actions: list[str]) -> Table:
    grid = Table(
        title=f"run {run_id}: {len(entries)} entries (# = entry of the run; seq = ledger-wide)", title_justify="left"
    )
    grid.add_column("#", justify="right", no_wrap=True, min_width=3)
    grid.add_column("seq", justify="right", no_wrap=True, min_width=3, style="dim")
    grid.add_column("sim date", no_wrap=True, min_width=10)
    grid.add_column("actor", no_wrap=True, min_width=13)
    grid.add_column("kind", no_wrap=True, min_width=11)
    grid.add_column("action", no_wrap=True, min_width=10)
    grid.add_column("subject", no_wrap=True, overflow="ellipsis", max_width=14)
    grid.add_column("outcome", no_wrap=True, min_width=8)
    grid.add_column("gate", no_wrap=True)
    grid.add_column("rationale", no_wrap=True, overflow="ellipsis", min_width=24, max_width=100)
    for e, number, action in zip(entries, numbers, actions, strict=True):
        grid.add_row(
            str(number),
            str(e.seq),
            e.sim_time.strftime("%Y-%m-%d"),
            escape(e.actor),
            e.kind,
            escape(action),
            escape(e.subject),
            escape(e.outcome or ""),
            escape(e.gate or ""),
            escape(e.rationale),
        )
    return grid


SeqFlag = Annotated[
    bool,
    typer.Option(
        "--seq",
        help="NUMBER is the ledger-wide sequence number (as in verify, the console's links and --json) instead of "
        "the entry's number within the run.",
    ),
]


def resolve_entry(ledger: OpenLedger, number: int, run: str | None, *, global_seq: bool) -> tuple[LedgerEntry, int]:
    """The entry NUMBER names (the run's NUMBER-th entry, or ledger seq NUMBER with --seq) and its run number."""
    if global_seq:
        if run is not None:
            fail("give either --run (NUMBER within that run) or --seq (NUMBER ledger-wide), not both")
        entry = ledger.get(number)
        if entry is None:
            fail(f"no ledger entry with seq {number}")
        return entry, RunNumbering(ledger, entry.run_id).number(entry.seq)
    run_id = run_or_latest(ledger, run)
    numbering = RunNumbering(ledger, run_id)
    found = numbering.entry(number)
    if found is None:
        fail(
            f"no entry #{number} in run {run_id} (it has {numbering.entries()} entries; "
            "--seq N looks up a ledger-wide sequence number)"
        )
    return found, number


@ledger_app.command("show")
def show(
    seq: Annotated[int, typer.Argument(min=1, metavar="NUMBER", help="The entry's number within the run.")],
    ledger_path: LedgerPath = None,
    run: RunOption = None,
    global_seq: SeqFlag = False,
) -> None:
    """Print one entry, every field, as JSON ("seq" in it is the ledger-wide sequence number).

    Example: coalition ledger show 42 --run my-scenario-20250303-101500-ab12
    """
    ledger = open_ledger(ledger_path, read_only=True)
    try:
        entry, _ = resolve_entry(ledger, seq, run, global_seq=global_seq)
    finally:
        ledger.close()
    typer.echo(_dumps(_entry_json(entry), indent=True))


@ledger_app.command("verify")
def verify(
    ledger_path: LedgerPath = None,
    skip_derived: Annotated[
        bool,
        typer.Option(
            "--skip-derived",
            help="Skip the derived-data check: that every stored body is exactly the canonical JSON of its value (a"
            " repeated key reads one way in the filter columns, another in Python), and the filter columns and"
            " full-text index rebuilt and compared. The chain, tree and checkpoints are still checked.",
        ),
    ] = False,
) -> None:
    """Check the hash chain, the Merkle tree, every checkpoint's signature and root, consistency with the witness and
    with the newest checkpoint this CLI saw, and the derived data (each body canonical JSON, the filter columns, the
    full-text index); exit 0 if intact, 1 with what failed if not.

    Example: coalition ledger verify --ledger .coalition/ledger.db
    """
    from coalition.bus.clock import WallClock
    from coalition.ledger.integrity import check_ledger

    ledger = open_ledger(ledger_path, guard=False, read_only=True)
    trust = ledger_trust(settings(), ledger, client="cli")
    seen = trust.seen.load() if trust.seen is not None else None
    report = check_ledger(
        ledger,
        verifiers=trust.verifiers,
        witness=trust.witness,
        seen=seen,
        seen_name="the cli",
        derived=not skip_derived,
    )
    typer.echo(report.line())
    if not report.ok:
        raise typer.Exit(1)
    _verify_decisions(ledger)
    newest = report.newest
    if newest is not None and trust.seen is not None:
        trust.seen.remember(
            origin=trust.origin,
            verifier_key=newest.verifier_key,
            note=newest.note,
            size=newest.size,
            at=WallClock().now(),
            witness=trust.witness.describe(),
        )


def _verify_decisions(ledger: Ledger) -> None:
    """Every human decision's signature against its run's recorded approver directory, and every review mark's
    against the key its run binds to the reviewer (recorded with their first mark; for a mark from before that,
    this installation's approver keys); exit 1 at the first bad one. A mark no key here can check is said, not
    failed."""
    from coalition.cli.approver_key import installed_approver_keys
    from coalition.governance.decision_signatures import verify_decisions  # governance: only for verify
    from coalition.governance.reviews import verify_reviews

    reviews = verify_reviews(ledger, trusted=installed_approver_keys())
    for what, (checked, problems) in (
        ("decision", verify_decisions(ledger)),
        ("review mark", (reviews.checked, reviews.problems)),
    ):
        if problems:
            first = problems[0]
            more = f" ({len(problems) - 1} more)" if len(problems) > 1 else ""
            typer.echo(f"BAD {what.upper()} SIGNATURE at seq {first.seq} (run {first.run_id}): {first.reason}{more}")
            raise typer.Exit(1)
        if checked:
            typer.echo(f"{checked} {what} signatures verified")
    if reviews.unchecked:
        first = reviews.unchecked[0]
        typer.echo(
            f"{len(reviews.unchecked)} review mark(s) cannot be checked here, first at seq {first.seq} "
            f"(run {first.run_id}): {first.reason}; they count as no review"
        )


@ledger_app.command("prove")
def prove(
    seq: Annotated[int, typer.Argument(min=1, help="The entry to prove.")],
    ledger_path: LedgerPath = None,
) -> None:
    """Print, as JSON, an inclusion proof of entry SEQ against the newest signed checkpoint that covers it, with the
    entry's stored bytes, the checkpoint and the ledger's public key: all an auditor needs to check it offline.

    Example: coalition ledger prove 42 > proof-42.json
    """
    from coalition.ledger.proofs import inclusion_bundle

    ledger = open_ledger(ledger_path)
    trust = ledger_trust(settings(), ledger, client="cli")
    newest = newest_checkpoint(ledger, trust)
    size = ledger.head()[0]
    if seq > size:
        fail(f"no ledger entry with seq {seq} (the ledger holds {size})")
    if newest is None or newest.size < seq:
        covered = "no checkpoint yet" if newest is None else f"the newest checkpoint covers {newest.size} entries"
        fail(f"no signed checkpoint covers seq {seq} yet ({covered}); coalition ledger checkpoint signs one now")
    typer.echo(_dumps(inclusion_bundle(ledger, seq, newest), indent=True))


@ledger_app.command("checkpoint")
def checkpoint(ledger_path: LedgerPath = None) -> None:
    """Sign a checkpoint of the ledger as it is now (runs, human decisions and every 1,000 entries sign one anyway);
    it is kept in the ledger, the witness store and this CLI's memory.

    Example: coalition ledger checkpoint
    """
    from coalition.bootstrap import attach_notary

    ledger = open_ledger(ledger_path)
    signed = attach_notary(ledger, ledger_trust(settings(), ledger, client="cli")).checkpoint()
    if signed is None:
        fail(f"the ledger at {ledger.path} is empty: nothing to sign")
    typer.echo(signed.note, nl=False)


@ledger_app.command("forget")
def forget(ledger_path: LedgerPath = None) -> None:
    """Forget the newest checkpoint this CLI saw for the ledger file (after replacing that ledger on purpose); the
    witness store keeps every checkpoint.

    Example: coalition ledger forget --ledger old/ledger.db
    """
    from coalition.bootstrap import ledger_location, memory_key
    from coalition.ledger.witness import SeenCheckpoint

    try:
        path = memory_key(ledger_location(ledger_path, settings()))
    except LedgerError as exc:
        fail(str(exc))
    memory = SeenCheckpoint(settings().state_path, "cli", path)
    seen = memory.load()
    if seen is None:
        typer.echo(f"nothing remembered for {path}")
        return
    memory.file.unlink()
    typer.echo(f"forgot {seen.origin} ({seen.size} entries, seen {seen.verified_at}) for {path}")


@ledger_app.command("digest")
def digest(ledger_path: LedgerPath = None, run: RunOption = None) -> None:
    """Print the run's digest: equal digests mean the same decisions, whatever the bus or the wall clock.

    Example: coalition ledger digest --run run-2f1c
    """
    ledger = open_ledger(ledger_path, read_only=True)
    try:
        run_id = run_or_latest(ledger, run)
        typer.echo(run_digest(ledger, run_id))
    finally:
        ledger.close()


@ledger_app.command("explain")
def explain_cmd(
    seq: Annotated[
        int,
        typer.Argument(
            min=1,
            metavar="NUMBER",
            help="Any entry of the chain (observation, proposal, verdict, …), by its number within the run.",
        ),
    ],
    ledger_path: LedgerPath = None,
    run: RunOption = None,
    global_seq: SeqFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Show why a decision happened: its causes, proposal, verdict, approvals, authorization and execution.

    NUMBER is the entry's number within the run (--run, default the most recent run), as run summaries and
    `ledger list` show it; --seq takes a ledger-wide sequence number instead. In the tree, #N is the run's
    numbering and "seq" the ledger's.

    Example: coalition ledger explain 42 --run my-scenario-20250303-101500-ab12 --json
    """
    from coalition.governance.decision_signatures import decision_check  # governance: only for explain

    ledger = open_ledger(ledger_path, read_only=True)
    try:
        focus, number = resolve_entry(ledger, seq, run, global_seq=global_seq)
        explanation = explain(ledger, focus.seq, decision_problem=decision_check(ledger))
        numbering = RunNumbering(ledger, focus.run_id)
        numbers = {seq: numbering.number(seq) for seq in _link_seqs(explanation)}
    except EntryNotFound as exc:
        fail(str(exc))
    finally:
        ledger.close()
    if as_json:
        doc = explanation.model_dump(mode="json")
        doc["number"] = number
        doc["numbers"] = {str(k): v for k, v in sorted(numbers.items())}
        typer.echo(_dumps(doc, indent=True))
    else:
        _console().print(explanation_tree(explanation, numbers))


def _link_seqs(explanation: Explanation) -> set[int]:
    seqs = {explanation.focus.seq, *(c.seq for c in explanation.causes)}
    for d in explanation.decisions:
        links = [*d.causes, *d.verdicts, *d.human, *d.unverified, *d.resolutions, *d.authorizations, *d.executions]
        seqs.update(link.seq for link in links)
        if d.proposal is not None:
            seqs.add(d.proposal.seq)
    return seqs


def _label(link: ChainLink, *, detail: bool = True, numbers: dict[int, int] | None = None) -> str:
    line = summary_line(link)
    if numbers is not None and link.seq in numbers:
        line = line.replace(f"#{link.seq}", f"#{numbers[link.seq]} (seq {link.seq})", 1)
    text = f"[bold]{escape(line)}[/bold]"
    extras: list[str] = []
    if link.rule_ids:
        extras.append(f"rules {', '.join(link.rule_ids)}")
    if link.policy_version:
        extras.append(f"policy {link.policy_version[:12]}")
    if extras:
        text += f" [dim]({escape('; '.join(extras))})[/dim]"
    if link.verified is False:  # a claimed human decision that does not verify: never shown as one
        text = f"[red]{text}[/red]"
    if detail:
        text += f"\n[italic]{escape(link.rationale)}[/italic]"
    return text


def _decision_tree(node: Tree, decision: Decision, numbers: dict[int, int] | None) -> None:
    branch = node.add(f"decision on proposal [cyan]{escape(decision.proposal_id)}[/cyan]")
    if decision.causes:
        causes = branch.add("because of")
        for link in decision.causes:
            causes.add(_label(link, numbers=numbers))
    if decision.proposal is not None:
        branch.add(_label(decision.proposal, numbers=numbers))
    steps = [*decision.verdicts, *decision.human, *decision.resolutions, *decision.authorizations, *decision.executions]
    for link in sorted(steps, key=lambda item: item.seq):
        branch.add(_label(link, numbers=numbers))
    if not steps:
        branch.add("[dim]no verdict recorded yet[/dim]")
    if decision.unverified:
        flagged = branch.add(
            "[red]recorded as human decisions but NOT verified (no approver's signature proves them; governance "
            "took none of them)[/red]"
        )
        for link in decision.unverified:
            flagged.add(_label(link, numbers=numbers))


def explanation_tree(explanation: Explanation, numbers: dict[int, int] | None = None) -> Tree:
    """The explanation as a rich tree: the focus entry at the root, each decision as a branch in time order;
    with `numbers` (ledger seq → the run's entry number), entries are named by their number in the run."""
    focus = explanation.seq
    title = f"#{numbers[focus]} of run {explanation.run_id}" if numbers and focus in numbers else f"#{focus}"
    root = Tree(f"why {escape(title)}? {_label(explanation.focus, numbers=numbers)}")
    if explanation.causes:
        causes = root.add("caused by")
        for link in explanation.causes:
            causes.add(_label(link, numbers=numbers))
    for decision in explanation.decisions:
        _decision_tree(root, decision, numbers)
    if not explanation.decisions:
        root.add("[dim]no proposal followed from this entry[/dim]")
    return root


@ledger_app.command("runs")
def runs(ledger_path: LedgerPath = None, as_json: JsonFlag = False) -> None:
    """List the runs in the ledger with their scenario, status and entry range.

    Example: coalition ledger runs --json
    """
    ledger = open_ledger(ledger_path, read_only=True)
    try:
        infos = ledger.runs()
    finally:
        ledger.close()
    if as_json:
        rows = [
            {
                "run_id": i.run_id,
                "scenario": i.scenario,
                "status": i.status,
                "first_seq": i.first_seq,
                "last_seq": i.last_seq,
                "entries": i.entries,
                **i.extra,
            }
            for i in infos
        ]
        typer.echo(_dumps(rows, indent=True))
        return
    grid = Table(title=f"{len(infos)} runs", title_justify="left")
    for name in ("run", "scenario", "status", "entries", "seq range"):
        grid.add_column(name, no_wrap=name != "run", overflow="fold")
    for i in infos:
        grid.add_row(
            escape(i.run_id),
            escape(i.scenario or ""),
            escape(i.status or ""),
            str(i.entries),
            f"{i.first_seq}–{i.last_seq}",
        )
    _console().print(grid)


@ledger_app.command("incidents")
def incidents_cmd(ledger_path: LedgerPath = None, run: RunOption = None, as_json: JsonFlag = False) -> None:
    """List a run's incidents: id, the event that announced it, severity, status, age and how many entries concern
    it (`coalition audit --incident ID` packages exactly those; either name works).

    Example: coalition ledger incidents --run my-scenario-20250303-101500-ab12
    """
    from coalition.scenarios.incidents import incidents  # the scenarios package (and the agents) load only here

    ledger = open_ledger(ledger_path)
    try:
        run_id = run_or_latest(ledger, run)
        entries = list(ledger.iter_entries(run_id=run_id))
    finally:
        ledger.close()
    records = incidents(entries)
    if as_json:
        typer.echo(_dumps([r.to_json() for r in records], indent=True))
        return
    if not records:
        typer.echo(f"No incident in run {run_id}.")
        return
    now = entries[-1].sim_time
    grid = Table(title=f"run {run_id}: {len(records)} incident(s)", title_justify="left")
    for name in ("incident", "also called", "kind", "sev", "regions", "status", "age (sim h)", "entries"):
        grid.add_column(name, overflow="fold")
    for r in records:
        age = r.age_hours(now)
        grid.add_row(
            escape(r.incident_id),
            escape(", ".join(r.aliases) or "—"),
            escape(r.kind or "—"),
            str(r.severity) if r.severity is not None else "—",
            escape(", ".join(r.regions) or "—"),
            escape(r.status),
            f"{age:,.0f}" if age is not None else "—",
            str(len(r.seqs)),
        )
    _console().print(grid)


ledger_app.command("pg-setup")(pg_setup)
