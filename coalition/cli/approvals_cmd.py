"""`coalition approvals …`: the human side of the gates — list what waits, show one, approve or reject it.

A decision goes through the approvals service (coalition.governance.approvals.record_decision), which checks
separation of duties, roles, four-eyes, the proposal hash and expiry, and appends it to the ledger; the
governance service picks it up from there. A refused decision prints why and exits 1; bad input exits 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape

from coalition.cli.approvals_urgency import RunClock, expiry_warning, who_may_decide
from coalition.cli.approver_key import unlock_approver_key
from coalition.cli.common import (
    JsonFlag,
    LedgerPath,
    OneLineGroup,
    RunOption,
    fail,
    open_ledger,
    run_or_latest,
)
from coalition.cli.review_cmd import review_app
from coalition.cli.terminal import TerminalConsole, clean, json_text
from coalition.governance.approvals import (
    DecisionResult,
    load_escalations,
    policy_for_run,
    record_decision,
)
from coalition.governance.errors import PolicyError
from coalition.governance.escalation import DecisionKind, Escalation
from coalition.governance.policy import Policy

if TYPE_CHECKING:
    from coalition.bootstrap import OpenLedger

approvals_app = typer.Typer(
    help="Decide what the governance gates escalated: list pending escalations, show one, approve or reject it; "
    "review what the sampled approval tier drew (approvals review).",
    no_args_is_help=True,
    cls=OneLineGroup,
)
approvals_app.add_typer(review_app, name="review")

ProposalId = Annotated[str, typer.Argument(help="Proposal id of the escalation (a unique prefix is enough).")]
Approver = Annotated[
    str,
    typer.Option(
        "--as",
        help="Your name in the policy's approver directory; your console password opens your signing key.",
    ),
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read your password from the first line of stdin (no prompt).")
]
Reason = Annotated[str, typer.Option("--reason", help="Why you decide so (recorded in the ledger).")]
HashOption = Annotated[
    str | None,
    typer.Option("--hash", help="Bind the decision to this proposal hash (default: the escalated proposal's)."),
]


def _context(ledger_path: Any, run: str | None) -> tuple[OpenLedger, str, Policy]:
    ledger = open_ledger(ledger_path)
    run_id = run_or_latest(ledger, run)
    try:
        policy = policy_for_run(ledger, run_id)
    except PolicyError as exc:
        ledger.close()
        fail(str(exc))
    return ledger, run_id, policy


def _find(escalations: list[Escalation], wanted: str, run_id: str) -> Escalation:
    exact = [e for e in escalations if e.proposal_id == wanted]
    matches = exact or [e for e in escalations if e.proposal_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        fail(f"{wanted!r} matches {len(matches)} escalations in run {run_id}; give more of the id")
    pending = ", ".join(e.proposal_id for e in escalations if e.is_open)[:200] or "none"
    fail(f"no escalation {wanted!r} in run {run_id} (pending: {pending})")


def _as_json(e: Escalation) -> dict[str, Any]:
    p = e.proposal
    return {
        "proposal_id": e.proposal_id,
        "proposal_hash": e.proposal_hash,
        "agent": p.agent,
        "action": p.action,
        "args": p.args,
        "rationale": p.rationale,
        "evidence": p.evidence,
        "gate": e.gate,
        "rule_ids": list(e.rule_ids),
        "reasons": list(e.reasons),
        "approver_roles": list(e.approver_roles),
        "approvals_required": e.approvals_required,
        "approvals": [{"approver": d.approver, "role": d.role, "reason": d.reason} for d in e.approvals],
        "rejections": [{"approver": d.approver, "role": d.role, "reason": d.reason} for d in e.rejections],
        "status": e.status,
        "resolved": e.resolved,
        "expires_at": e.expires_at.isoformat() if e.expires_at else None,
        "if_approved": e.if_approved(),
    }


def _print_json(value: Any) -> None:
    typer.echo(json_text(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()))


def _approvals_text(e: Escalation) -> str:
    names = ", ".join(f"{d.approver} ({d.role})" for d in e.approvals)
    return f"{len(e.approvals)}/{e.approvals_required}" + (f": {names}" if names else "")


@approvals_app.command("list")
def list_pending(ledger: LedgerPath = None, run: RunOption = None, as_json: JsonFlag = False) -> None:
    """List the escalations of a run that wait for a human decision.

    Example: coalition approvals list --run my-scenario-1
    """
    led, run_id, policy = _context(ledger, run)
    with led:
        pending = [e for e in load_escalations(led, run_id=run_id, policy=policy) if e.is_open]
        clock = RunClock.of(led, run_id)
    if as_json:
        _print_json([_as_json(e) for e in pending])
        return
    console = TerminalConsole()
    if not pending:
        console.print(f"No escalation waits for a decision in run {escape(run_id)}.")
        return
    console.print(f"[bold]{len(pending)} pending escalation(s) — run {escape(run_id)}[/bold]", soft_wrap=True)
    for e in pending:
        evidence = ", ".join(e.proposal.evidence) or "none cited"
        expires = e.expires_at.isoformat() if e.expires_at else "never"
        console.print(
            f"\n[bold]{escape(e.proposal_id)}[/bold]  {escape(e.agent)}: {escape(e.proposal.action)}  "
            f"gate [bold]{escape(e.gate)}[/bold]  approvals {escape(_approvals_text(e))} "
            f"(roles: {escape(', '.join(e.approver_roles))})  expires {escape(expires)}",
            soft_wrap=True,
        )
        warning = expiry_warning(e, clock)
        if warning is not None:
            console.print(f"  [bold red]⚠ {escape(warning)}[/bold red]", soft_wrap=True)
        for label, value in (
            ("rule", ", ".join(e.rule_ids)),
            ("why", " | ".join(e.reasons)),
            ("rationale", e.proposal.rationale),
            ("evidence", evidence),
            ("if approved", e.if_approved()),
        ):
            console.print(f"  {label:>11}: {escape(value)}", soft_wrap=True)


@approvals_app.command("show")
def show(proposal_id: ProposalId, ledger: LedgerPath = None, run: RunOption = None, as_json: JsonFlag = False) -> None:
    """Show one escalation: the proposal, why it escalated, who may decide, decisions so far.

    Example: coalition approvals show 3f2a --run my-scenario-1
    """
    led, run_id, policy = _context(ledger, run)
    with led:
        escalation = _find(load_escalations(led, run_id=run_id, policy=policy), proposal_id, run_id)
        clock = RunClock.of(led, run_id)
    data = _as_json(escalation)
    people = who_may_decide(escalation, policy)
    data["who_may_decide"] = people
    if as_json:
        _print_json(data)
        return
    console = TerminalConsole()
    rows = [
        ("proposal", f"{data['proposal_id']}  (hash {data['proposal_hash'][:16]}…)"),
        ("asked", f"{data['agent']}: {data['action']} {orjson.dumps(data['args']).decode()}"),
        ("rationale", data["rationale"]),
        ("evidence", ", ".join(data["evidence"]) or "none cited"),
        ("gate", f"{data['gate']} — rules {', '.join(data['rule_ids'])}"),
        ("why", " | ".join(data["reasons"])),
        ("who may decide", _deciders_text(escalation, people)),
        ("approvals", _approvals_text(escalation)),
        ("status", data["status"] + (" (resolved)" if data["resolved"] else "")),
        ("expires", data["expires_at"] or "never"),
        ("if approved", data["if_approved"]),
    ]
    for label, value in rows:
        console.print(f"[bold]{label:>15}[/bold]  {escape(str(value))}", soft_wrap=True)
    warning = expiry_warning(escalation, clock)
    if warning is not None:
        console.print(f"[bold red]{'⚠':>15}  {escape(warning)}[/bold red]", soft_wrap=True)


def _deciders_text(escalation: Escalation, people: list[str]) -> str:
    roles = ", ".join(escalation.approver_roles)
    if not escalation.is_open:
        return f"holders of {roles} (decided)"
    if not people:
        return f"nobody left in the approver directory holds {roles}"
    needed = escalation.approvals_required - len(escalation.approvals)
    return f"{', '.join(people)} — {needed} more distinct approval(s) needed (roles: {roles})"


def _decide(
    decision: DecisionKind,
    *,
    proposal_id: str,
    approver: str,
    reason: str,
    proposal_hash: str | None,
    ledger: Any,
    run: str | None,
    as_json: bool,
    password_stdin: bool,
    amend: str | None = None,
) -> None:
    if not approver.strip():
        fail("--as needs your name")
    changes = _amendment(amend)
    if not reason.strip():
        fail("--reason must say why")
    led, run_id, policy = _context(ledger, run)
    with led:
        escalation = _find(load_escalations(led, run_id=run_id, policy=policy), proposal_id, run_id)
        key = unlock_approver_key(approver.strip(), password_stdin)
        result = record_decision(
            led,
            run_id=run_id,
            proposal_id=escalation.proposal_id,
            approver=approver,
            decision=decision,
            reason=reason,
            proposal_hash=proposal_hash,
            method="cli",
            policy=policy,
            key=key,
            amend=changes,
        )
    _report(result, as_json)


def _amendment(text: str | None) -> dict[str, Any] | None:
    """--amend's JSON object of the arguments to change (one line naming the problem otherwise)."""
    if text is None:
        return None
    try:
        changes = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        fail(f"--amend: not JSON ({str(exc).splitlines()[0]}); e.g. --amend '{{\"price\": 70}}'")
    if not isinstance(changes, dict) or not changes:
        fail("--amend: give a JSON object of the arguments to change, e.g. --amend '{\"price\": 70}'")
    return changes


def _report(result: DecisionResult, as_json: bool) -> None:
    if as_json:
        _print_json(
            {
                "accepted": result.accepted,
                "reason": result.reason,
                "proposal_id": result.proposal_id,
                "decision": result.decision,
                "approver": result.approver,
                "role": result.role,
                "status": result.status,
                "approvals": result.approvals,
                "approvals_required": result.approvals_required,
                "ledger_seq": result.entry.seq if result.entry else None,
            }
        )
    elif result.accepted:
        if result.status == "pending":
            tail = f"{result.approvals} of {result.approvals_required} approvals; another approver is needed"
        else:
            tail = f"escalation {result.status}; governance resolves it at its next step"
        seq = result.entry.seq if result.entry else "?"
        typer.echo(clean(f"{result.reason} {result.proposal_id} (ledger #{seq}) — {tail}"))
    else:
        typer.echo(f"refused: {clean(result.reason)}", err=True)
    if not result.accepted:
        raise typer.Exit(1)


@approvals_app.command("approve")
def approve(
    proposal_id: ProposalId,
    *,
    approver: Approver,
    reason: Reason,
    proposal_hash: HashOption = None,
    password_stdin: PasswordStdin = False,
    ledger: LedgerPath = None,
    run: RunOption = None,
    as_json: JsonFlag = False,
    amend: Annotated[
        str | None,
        typer.Option(
            "--amend",
            metavar="JSON",
            help="Adopt an assistive draft (gate draft_review) with these arguments changed (a JSON object).",
        ),
    ] = None,
) -> None:
    """Approve an escalation (you must hold one of its gate's roles, and not be the proposer); an assistive
    draft is adopted as drafted, or amended with --amend.

    Example: coalition approvals approve 3f2a --as carol --reason "CA has a legal path and demand" (password asked)
    Example: coalition approvals approve 7c1d --as carol --reason "a smaller step" --amend '{"price": 70}'
    """
    _decide(
        "approve",
        proposal_id=proposal_id,
        approver=approver,
        reason=reason,
        proposal_hash=proposal_hash,
        ledger=ledger,
        run=run,
        as_json=as_json,
        password_stdin=password_stdin,
        amend=amend,
    )


@approvals_app.command("reject")
def reject(
    proposal_id: ProposalId,
    *,
    approver: Approver,
    reason: Reason,
    proposal_hash: HashOption = None,
    password_stdin: PasswordStdin = False,
    ledger: LedgerPath = None,
    run: RunOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Reject an escalation: one authorized rejection denies it.

    Example: coalition approvals reject 3f2a --as dave --reason "wait for the Q2 numbers" --password-stdin < pw
    """
    _decide(
        "reject",
        proposal_id=proposal_id,
        approver=approver,
        reason=reason,
        proposal_hash=proposal_hash,
        ledger=ledger,
        run=run,
        as_json=as_json,
        password_stdin=password_stdin,
    )
