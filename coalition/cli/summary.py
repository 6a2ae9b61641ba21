"""The end-of-run summary: what governance did, told from the ledger (decisions, escalations, blocks, money)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.table import Table

from coalition.governance.decision_signatures import decision_entry_problem, identities_in
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.numbering import numbers_of

OUTCOME_STYLE = {"allow": "green", "deny": "red", "escalate": "yellow"}


def decisions_table(entries: Sequence[LedgerEntry]) -> Table:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for e in entries:
        if e.kind == "verdict":
            counts[str(e.payload.get("agent"))][str(e.outcome)] += 1
    table = Table(title="Decisions by agent and outcome", title_justify="left")
    table.add_column("agent")
    for outcome in ("allow", "deny", "escalate"):
        table.add_column(outcome, justify="right", style=OUTCOME_STYLE[outcome])
    for agent in sorted(counts):
        table.add_row(agent, *(str(counts[agent][o]) for o in ("allow", "deny", "escalate")))
    total = Counter[str]()
    for c in counts.values():
        total.update(c)
    table.add_row("[b]all[/b]", *(f"[b]{total[o]}[/b]" for o in ("allow", "deny", "escalate")))
    return table


def escalations(entries: Sequence[LedgerEntry]) -> list[dict[str, Any]]:
    """Every escalation of the run with how it ended and who decided ("number": the verdict's number within the
    run, as `ledger explain NUMBER` takes it; "seq": its ledger-wide sequence number)."""
    numbers = numbers_of(list(entries))
    proposals = {e.subject: e for e in entries if e.kind == "proposal"}
    resolutions = {e.subject: e for e in entries if e.kind == "resolution"}
    deciders: dict[str, list[str]] = defaultdict(list)
    identities = identities_in(entries)
    for e in entries:
        # only a decision its approver signed decided anything (governance took no other; ledger verify names it)
        if e.kind in ("approval", "rejection") and e.approver and decision_entry_problem(e, identities) is None:
            deciders[e.subject].append(e.approver)
    rows = []
    for e in entries:
        if e.kind != "verdict" or e.outcome != "escalate":
            continue
        proposal = proposals.get(e.subject)
        resolution = resolutions.get(e.subject)
        rows.append(
            {
                "proposal_id": e.subject,
                "number": numbers[e.seq],
                "seq": e.seq,
                "agent": e.payload.get("agent"),
                "action": e.payload.get("action"),
                "args": proposal.payload.get("args", {}) if proposal else {},
                "gate": e.gate,
                "outcome": resolution.outcome if resolution else "pending",
                "decided_by": deciders.get(e.subject, []),
            }
        )
    return rows


def escalations_table(entries: Sequence[LedgerEntry]) -> Table:
    table = Table(title="Escalations and how they were decided", title_justify="left")
    for col in ("#", "agent", "action", "gate", "outcome", "decided by"):
        table.add_column(col)
    style = {"approved": "green", "rejected": "red", "expired": "magenta", "pending": "yellow"}
    for row in escalations(entries):
        outcome = str(row["outcome"])
        table.add_row(
            str(row["number"]),
            str(row["agent"]),
            str(row["action"]),
            str(row["gate"]),
            f"[{style.get(outcome, 'white')}]{outcome}[/]",
            ", ".join(row["decided_by"]) or ("(expired: deny)" if outcome == "expired" else "—"),
        )
    return table


def blocked_table(entries: Sequence[LedgerEntry]) -> Table:
    table = Table(title="Blocked violations (denied by governance)", title_justify="left")
    for col in ("#", "agent", "action", "rule", "why"):
        table.add_column(col, overflow="fold")
    numbers = numbers_of(list(entries))
    for e in entries:
        if e.kind == "verdict" and e.outcome == "deny":
            reasons = e.payload.get("reasons") or [e.rationale]
            table.add_row(
                str(numbers[e.seq]),
                str(e.payload.get("agent")),
                str(e.payload.get("action")),
                ", ".join(e.rule_ids),
                str(reasons[0]),
            )
    return table


def state_table(kpis: dict[str, Any]) -> Table:
    table = Table(title="Final state of the business", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in kpis.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                table.add_row(f"{key}.{sub}", _fmt(inner))
        elif isinstance(value, list):
            table.add_row(key, ", ".join(str(v) for v in value) or "—")
        else:
            table.add_row(key, _fmt(value))
    return table


def expectations_table(
    results: Sequence[Any], board: set[str] | None = None, humans_differ: set[str] | None = None
) -> Table:
    """✔ held, ✘ failed, ≠ failed only because people decided otherwise than the scripted board; an id marked
    "(scripted board)" is an expectation written for the board's answers."""
    table = Table(title="Expectations", title_justify="left")
    for col in ("", "id", "expected", "observed"):
        table.add_column(col, overflow="fold")
    for r in results:
        mark = "[green]✔[/]" if r.passed else "[yellow]≠[/]" if r.id in (humans_differ or set()) else "[red]✘[/]"
        name = r.id + (" [dim](scripted board)[/dim]" if r.id in (board or set()) else "")
        table.add_row(mark, name, _short(r.expected), _short(r.observed))
    return table


def _short(value: Any, limit: int = 60) -> str:
    """One cell's worth of a value: long observations (e.g. every region's price) are cut with an ellipsis."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def render_summary(
    console: Console,
    entries: Sequence[LedgerEntry],
    kpis: dict[str, Any],
    results: Sequence[Any],
    board: set[str] | None = None,
    humans_differ: set[str] | None = None,
) -> None:
    console.print(
        Group(
            decisions_table(entries),
            escalations_table(entries),
            blocked_table(entries),
            state_table(kpis),
            expectations_table(results, board, humans_differ),
        )
    )
