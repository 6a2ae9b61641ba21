"""The model lanes in a run report: per agent, proposals chosen by the model vs the engine with their allowed /
denied / escalated rates, and every case where the model chose otherwise than the engine (and what governance
did with it), with the sampled approval tier's verdict on them: how many of each row's proposals were drawn for
review, reviewed, and marked wrong (the sampled error rate, governance/reviews.py). Read from the proposals'
`choice` (agents/lanes.py); a run without model lanes has no section."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from coalition.bus.canonical import canonical_json
from coalition.governance.reviews import ReviewMark

OUTCOMES = ("allow", "deny", "escalate")


@dataclass(frozen=True, slots=True)
class LaneRow:
    """One agent's proposals in a model lane, chosen by one side (model or engine)."""

    agent: str
    chosen_by: str
    proposals: int
    outcomes: dict[str, int]
    refused_calls: int  # tool calls refused before these choices
    sampled: int = 0  # drawn for after-the-fact review (approval tier `sampled`)
    reviewed: int = 0  # of those, marked by a reviewer (a mark that verifies)
    wrong: int = 0  # of those, marked wrong

    def rate(self, outcome: str) -> float | None:
        return self.outcomes.get(outcome, 0) / self.proposals if self.proposals else None

    @property
    def sampled_error_rate(self) -> float | None:
        """Wrong among the reviewed (None before any is reviewed)."""
        return self.wrong / self.reviewed if self.reviewed else None


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A proposal where the model chose otherwise than the engine."""

    proposal_id: str
    agent: str
    action: str
    args: dict[str, Any]
    engine_action: str
    engine_args: dict[str, Any]
    outcome: str | None
    review: str | None = None  # the reviewer's mark when it was sampled and reviewed ("wrong: frank: why")


@dataclass(frozen=True, slots=True)
class LaneSummary:
    rows: list[LaneRow] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)


def lane_summary(
    proposals: Mapping[str, Mapping[str, Any]],
    outcomes: Mapping[str, str],
    marks: Mapping[str, ReviewMark | None] | None = None,
) -> LaneSummary | None:
    """From the run's proposals (id → payload), their verdicts (id → outcome) and the sampled ones (id → their
    verified mark, None while waiting); None without model lanes."""
    marks = marks or {}
    counts: dict[tuple[str, str], Counter[str]] = {}
    refused: Counter[tuple[str, str]] = Counter()
    review: dict[tuple[str, str], Counter[str]] = {}
    disagreements: list[Disagreement] = []
    for pid, p in proposals.items():
        choice = p.get("choice")
        if not isinstance(choice, dict):
            continue
        key = (str(p.get("agent")), str(choice.get("chosen_by")))
        outcome = outcomes.get(pid)
        counts.setdefault(key, Counter())[outcome or "pending"] += 1
        refused[key] += len(choice.get("refused") or [])
        mark = marks.get(pid)
        if pid in marks:
            tally = review.setdefault(key, Counter())
            tally["sampled"] += 1
            tally["reviewed"] += mark is not None
            tally["wrong"] += mark is not None and mark.mark == "wrong"
        if choice.get("engine_args") is not None:
            disagreements.append(
                Disagreement(
                    proposal_id=pid,
                    agent=key[0],
                    action=str(p.get("action")),
                    args=dict(p.get("args") or {}),
                    engine_action=str(choice.get("engine_action")),
                    engine_args=dict(choice["engine_args"]),
                    outcome=outcome,
                    review=None if mark is None else f"{mark.mark}: {mark.reviewer}: {mark.reason}",
                )
            )
    if not counts:
        return None
    rows = [
        LaneRow(
            agent,
            by,
            sum(c.values()),
            dict(sorted(c.items())),
            refused[(agent, by)],
            **{k: review.get((agent, by), Counter())[k] for k in ("sampled", "reviewed", "wrong")},
        )
        for (agent, by), c in sorted(counts.items())
    ]
    return LaneSummary(rows, disagreements)


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _args(args: Mapping[str, Any]) -> str:
    text = canonical_json(dict(args)).decode()
    return text if len(text) <= 160 else text[:159] + "…"


def _differing(d: Disagreement) -> tuple[dict[str, Any], dict[str, Any]]:
    """The arguments where the two choices differ (all of them when the actions differ)."""
    if d.action != d.engine_action:
        return d.args, d.engine_args
    keys = sorted(k for k in {*d.args, *d.engine_args} if str(d.args.get(k)) != str(d.engine_args.get(k)))
    return {k: d.args.get(k) for k in keys}, {k: d.engine_args.get(k) for k in keys}


def render_md(summary: LaneSummary) -> str:
    lines = [
        "## Model lanes: who chose",
        "",
        "| agent | chosen by | proposals | allow | deny | escalate | refused tool calls | sampled | reviewed | "
        "sampled wrong |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {r.agent} | {r.chosen_by} | {r.proposals} | "
            + " | ".join(_share(r.rate(o)) for o in OUTCOMES)
            + f" | {r.refused_calls} | {r.sampled} | {r.reviewed} | {_wrong(r)} |"
            for r in summary.rows
        ],
        "",
        f"### Model and engine disagreed ({len(summary.disagreements)})",
        "",
        *_disagreement_lines(summary.disagreements),
        "",
    ]
    return "\n".join(lines)


def _wrong(row: LaneRow) -> str:
    """The wrong marks and the sampled error rate ("1 (50%)"); — before any review."""
    rate = row.sampled_error_rate
    return "—" if rate is None else f"{row.wrong} ({_share(rate)})"


def _disagreement_lines(items: Iterable[Disagreement]) -> list[str]:
    return [
        f"- {d.agent}: model {d.action} `{_args(_differing(d)[0])}` vs engine {d.engine_action} "
        f"`{_args(_differing(d)[1])}` → {d.outcome or 'pending'}" + (f"; reviewed {d.review}" if d.review else "")
        for d in items
    ] or ["None: wherever the model chose, it chose what the engine would have."]


def render_html(summary: LaneSummary) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(r.agent)}</td><td>{e(r.chosen_by)}</td><td>{r.proposals}</td>"
        + "".join(f"<td>{_share(r.rate(o))}</td>" for o in OUTCOMES)
        + f"<td>{r.refused_calls}</td><td>{r.sampled}</td><td>{r.reviewed}</td><td>{_wrong(r)}</td></tr>"
        for r in summary.rows
    )
    cases = "".join(
        f"<tr><td>{e(d.agent)}</td><td>{e(d.action)} <code>{e(_args(_differing(d)[0]))}</code></td>"
        f"<td>{e(d.engine_action)} <code>{e(_args(_differing(d)[1]))}</code></td>"
        f"<td>{e(d.outcome or 'pending')}</td><td>{e(d.review or '—')}</td></tr>"
        for d in summary.disagreements
    )
    return (
        "<section><h2>Model lanes: who chose</h2><table><tr><th>agent</th><th>chosen by</th><th>proposals</th>"
        f"<th>allow</th><th>deny</th><th>escalate</th><th>refused tool calls</th><th>sampled</th><th>reviewed</th>"
        f"<th>sampled wrong</th></tr>{rows}</table>"
        f"<h3>Model and engine disagreed ({len(summary.disagreements)})</h3><table><tr><th>agent</th><th>model</th>"
        f"<th>engine</th><th>outcome</th><th>review</th></tr>{cases}</table></section>"
    )
