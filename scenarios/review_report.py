"""The sampled approval tier in a run report: per agent, how many allowed proposals were drawn for review, how
many a reviewer marked, how many were marked wrong, and the sampled error rate (wrong / reviewed). Read from the
review queue (governance/reviews.py); a run without sampled proposals has no section."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field

from coalition.governance.reviews import SampledItem


@dataclass(frozen=True, slots=True)
class ReviewRow:
    """One agent's sampled proposals and what the reviewers said of them."""

    agent: str
    sampled: int
    reviewed: int
    wrong: int

    @property
    def error_rate(self) -> float | None:
        """Wrong among the reviewed (None before any is reviewed)."""
        return self.wrong / self.reviewed if self.reviewed else None


@dataclass(frozen=True, slots=True)
class WrongCase:
    """A sampled proposal a reviewer marked wrong, and why."""

    proposal_id: str
    agent: str
    action: str
    reviewer: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReviewSummary:
    rows: list[ReviewRow] = field(default_factory=list)
    wrong: list[WrongCase] = field(default_factory=list)


def review_summary(items: Iterable[SampledItem]) -> ReviewSummary | None:
    """Per agent (name order); None when nothing was sampled."""
    by_agent: dict[str, list[SampledItem]] = {}
    for item in items:
        by_agent.setdefault(item.agent, []).append(item)
    if not by_agent:
        return None
    rows = [
        ReviewRow(
            agent,
            len(group),
            sum(1 for i in group if i.mark is not None),
            sum(1 for i in group if i.mark is not None and i.mark.mark == "wrong"),
        )
        for agent, group in sorted(by_agent.items())
    ]
    wrong = [
        WrongCase(i.proposal_id, i.agent, i.action, i.mark.reviewer, i.mark.reason)
        for group in by_agent.values()
        for i in group
        if i.mark is not None and i.mark.mark == "wrong"
    ]
    return ReviewSummary(rows, wrong)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def render_md(summary: ReviewSummary) -> str:
    lines = [
        "## Sampled for review: governance's allowed actions, reviewed after the fact",
        "",
        "| agent | sampled | reviewed | wrong | sampled error rate |",
        "|---|---|---|---|---|",
        *[f"| {r.agent} | {r.sampled} | {r.reviewed} | {r.wrong} | {_rate(r.error_rate)} |" for r in summary.rows],
        "",
        f"### Marked wrong ({len(summary.wrong)})",
        "",
        *(
            [f"- {w.agent}: {w.action} `{w.proposal_id}` — {w.reviewer}: {w.reason}" for w in summary.wrong]
            or ["None."]
        ),
        "",
    ]
    return "\n".join(lines)


def render_html(summary: ReviewSummary) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(r.agent)}</td><td>{r.sampled}</td><td>{r.reviewed}</td><td>{r.wrong}</td>"
        f"<td>{_rate(r.error_rate)}</td></tr>"
        for r in summary.rows
    )
    wrong = "".join(
        f"<li>{e(w.agent)}: {e(w.action)} <code>{e(w.proposal_id)}</code> — {e(w.reviewer)}: {e(w.reason)}</li>"
        for w in summary.wrong
    )
    return (
        "<section><h2>Sampled for review</h2><table><tr><th>agent</th><th>sampled</th><th>reviewed</th>"
        f"<th>wrong</th><th>sampled error rate</th></tr>{rows}</table>"
        f"<h3>Marked wrong ({len(summary.wrong)})</h3><ul>{wrong or '<li>None.</li>'}</ul></section>"
    )
