"""`coalition approvals review …`: the review queue of the sampled approval tier — list what governance allowed and
drew for review, and mark each one right, or wrong with why.

A mark goes through the review service (coalition.governance.reviews.record_review): the reviewer is a name in the
run's policy approver directory, signs with their approver key (opened by their password, as for a decision), and
marks a sampled proposal once. A refused mark prints why and exits 1; bad input exits 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from coalition.cli.approver_key import trusted_keys, unlock_approver_key
from coalition.cli.common import JsonFlag, LedgerPath, OneLineGroup, RunOption, fail, open_ledger, run_or_latest
from coalition.cli.terminal import TerminalConsole, clean, json_text
from coalition.governance.approvals import policy_for_run
from coalition.governance.errors import PolicyError
from coalition.governance.reviews import Mark, ReviewResult, SampledItem, record_review, review_queue

review_app = typer.Typer(
    help="Review what the sampled approval tier drew: list the queue, mark an item right or wrong.",
    no_args_is_help=True,
    cls=OneLineGroup,
)

ProposalId = Annotated[str, typer.Argument(help="Proposal id of the sampled item (a unique prefix is enough).")]
Reviewer = Annotated[
    str,
    typer.Option("--as", help="Your name in the policy's approver directory; your password opens your signing key."),
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read your password from the first line of stdin (no prompt).")
]
AllFlag = Annotated[bool, typer.Option("--all", help="Also list the items already marked.")]


def _print_json(value: Any) -> None:
    typer.echo(json_text(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()))


def _find(items: list[SampledItem], wanted: str) -> str:
    """The full proposal id of a sampled item given by a unique prefix (else the id as given, for the service)."""
    matches = [i.proposal_id for i in items if i.proposal_id.startswith(wanted)]
    if wanted in matches:
        return wanted
    if len(matches) > 1:
        fail(f"{wanted!r} matches {len(matches)} sampled items; give more of the id")
    return matches[0] if matches else wanted


@review_app.command("list")
def list_queue(
    ledger: LedgerPath = None, run: RunOption = None, show_all: AllFlag = False, as_json: JsonFlag = False
) -> None:
    """List the sampled items of a run that wait for review (with --all, the marked ones too).

    Example: coalition approvals review list --run chaos-week-1
    """
    led = open_ledger(ledger)
    with led:
        run_id = run_or_latest(led, run)
        items = review_queue(led, run_id, trusted=_all_trusted(led, run_id))
    shown = items if show_all else [i for i in items if not i.reviewed]
    if as_json:
        _print_json([i.as_json() for i in shown])
        return
    console = TerminalConsole()
    waiting = sum(1 for i in items if not i.reviewed)
    console.print(
        f"[bold]{waiting} of {len(items)} sampled item(s) wait for review — run {escape(run_id)}[/bold]", soft_wrap=True
    )
    for i in shown:
        args = orjson.dumps(i.args, option=orjson.OPT_SORT_KEYS).decode()
        state = "waits" if i.mark is None else f"marked {i.mark.mark} by {i.mark.reviewer}: {i.mark.reason}"
        console.print(
            f"\n[bold]{escape(i.proposal_id)}[/bold]  {escape(i.agent)}: {escape(i.action)} {escape(args)}  "
            f"verdict [bold]{escape(i.verdict)}[/bold]  (draw {escape(i.draw)} < rate {escape(i.rate)})",
            soft_wrap=True,
        )
        for label, value in (
            ("why", i.verdict_reasons),
            ("rule", ", ".join(i.rule_ids)),
            ("rationale", i.rationale),
            ("review", state),
        ):
            console.print(f"  {label:>9}: {escape(value)}", soft_wrap=True)


def _all_trusted(led: Any, run_id: str) -> dict[str, str]:
    """This installation's approver keys for every approver of the run's policy (checks marks in the queue)."""
    try:
        policy = policy_for_run(led, run_id)
    except PolicyError as exc:
        fail(str(exc))
    found: dict[str, str] = {}
    for name in policy.approvers:
        found.update(trusted_keys(name))
    return found


def _mark(mark: Mark, *, proposal_id: str, reviewer: str, reason: str, ledger: Any, run: str | None, **kw: Any) -> None:
    if not reviewer.strip():
        fail("--as needs your name")
    led = open_ledger(ledger)
    with led:
        run_id = run_or_latest(led, run)
        try:
            policy = policy_for_run(led, run_id)
        except PolicyError as exc:
            fail(str(exc))
        trusted = _all_trusted(led, run_id)
        full_id = _find(review_queue(led, run_id, trusted=trusted), proposal_id)
        key = unlock_approver_key(reviewer.strip(), kw["password_stdin"], what="a review mark")
        result = record_review(
            led,
            run_id=run_id,
            proposal_id=full_id,
            reviewer=reviewer,
            mark=mark,
            reason=reason,
            policy=policy,
            key=key,
            trusted=trusted,
            method="cli",
        )
    _report(result, kw["as_json"])


def _report(result: ReviewResult, as_json: bool) -> None:
    if as_json:
        _print_json(
            {
                "accepted": result.accepted,
                "reason": result.reason,
                "code": result.code,
                "proposal_id": result.proposal_id,
                "mark": result.mark,
                "reviewer": result.reviewer,
                "ledger_seq": result.entry.seq if result.entry else None,
            }
        )
    elif result.accepted:
        seq = result.entry.seq if result.entry else "?"
        typer.echo(clean(f"{result.reason}: {result.proposal_id} (ledger #{seq})"))
    else:
        typer.echo(f"refused: {clean(result.reason)}", err=True)
    if not result.accepted:
        raise typer.Exit(1)


@review_app.command("right")
def right(
    proposal_id: ProposalId,
    *,
    reviewer: Reviewer,
    reason: Annotated[str, typer.Option("--reason", help="Why (optional for right).")] = "",
    password_stdin: PasswordStdin = False,
    ledger: LedgerPath = None,
    run: RunOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Mark a sampled item right: governance's verdict was correct.

    Example: coalition approvals review right 3f2a --as frank --password-stdin < pw
    """
    _mark(
        "right",
        proposal_id=proposal_id,
        reviewer=reviewer,
        reason=reason,
        ledger=ledger,
        run=run,
        password_stdin=password_stdin,
        as_json=as_json,
    )


@review_app.command("wrong")
def wrong(
    proposal_id: ProposalId,
    *,
    reviewer: Reviewer,
    reason: Annotated[str, typer.Option("--reason", help="What governance should have done (recorded).")],
    password_stdin: PasswordStdin = False,
    ledger: LedgerPath = None,
    run: RunOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Mark a sampled item wrong, with why: it counts in the agent's sampled error rate (coalition report).

    Example: coalition approvals review wrong 3f2a --as frank --reason "credit above the policy's tier" < pw
    """
    _mark(
        "wrong",
        proposal_id=proposal_id,
        reviewer=reviewer,
        reason=reason,
        ledger=ledger,
        run=run,
        password_stdin=password_stdin,
        as_json=as_json,
    )
