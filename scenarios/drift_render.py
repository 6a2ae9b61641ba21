"""Drift as people read it: a markdown section, an HTML section (for the run report) and JSON."""

from __future__ import annotations

import html

import orjson

from coalition.scenarios.drift import OUTCOMES, DriftResult, Mix

FORMATS = ("table", "md", "json")


def share(value: float | None) -> str:
    """A rate as a whole percentage, or an em dash when there is nothing to divide."""
    return "—" if value is None else f"{value:.0%}"


def divergence(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def signed(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.0f} pt"


def mix_cell(mix: Mix) -> str:
    """`n · allow / deny / escalate` rates of one side, e.g. `12 · 75% / 8% / 17%`."""
    if not mix.proposals:
        return "0"
    return f"{mix.proposals} · " + " / ".join(share(mix.rate(o)) for o in OUTCOMES)


def summary_line(result: DriftResult) -> str:
    return (
        f"drift {result.label_a} → {result.label_b}: action mix JS {divergence(result.overall_js)}, "
        f"TV {divergence(result.overall_tv)}; decision mix JS {divergence(result.decision_js)}; "
        f"{result.paired} proposals paired ({len(result.decided_otherwise)} decided otherwise), "
        f"{result.only_a} only in A, {result.only_b} only in B"
    )


def render_json(result: DriftResult) -> str:
    return orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_md(result: DriftResult) -> str:
    lines = [
        f"## Drift against {_md(result.run_b)}",
        "",
        f"A = `{_md(result.label_a)}`, B = `{_md(result.label_b)}`. Jensen–Shannon divergence (base 2: 0 = the same "
        "mix, 1 = nothing in common) and total variation distance between the two runs' action distributions.",
        "",
        *([f"**{_md(warning)}**", ""] if (warning := result.scenario_warning()) else []),
        f"- action mix: JS {divergence(result.overall_js)}, TV {divergence(result.overall_tv)}",
        f"- decision mix (agent × action × outcome): JS {divergence(result.decision_js)}",
        f"- {result.paired} proposals made in both runs, {len(result.decided_otherwise)} of them decided otherwise; "
        f"{result.only_a} only in A, {result.only_b} only in B",
        "",
        "| agent | proposals A | proposals B | action JS | action TV | outcome JS |",
        "|---|---|---|---|---|---|",
        *[
            f"| {_md(a.agent)} | {a.proposals_a} | {a.proposals_b} | {divergence(a.action_js)} "
            f"| {divergence(a.action_tv)} | {divergence(a.outcome_js)} |"
            for a in result.agents
        ],
        "",
        "| agent | action | A: n · allow / deny / escalate | B: n · allow / deny / escalate | Δ allow | Δ deny "
        "| Δ escalate |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {_md(r.agent)} | {_md(r.action)} | {mix_cell(r.a)} | {mix_cell(r.b)} | {signed(r.delta('allow'))} "
            f"| {signed(r.delta('deny'))} | {signed(r.delta('escalate'))} |"
            for r in result.rows
        ],
        "",
    ]
    if result.decided_otherwise:
        lines += [
            "Decided otherwise (same agent, action and decision arguments):",
            "",
            *[f"- {_md(d.agent)} {_md(d.action)}: {_md(d.a)} → {_md(d.b)}" for d in result.decided_otherwise],
            "",
        ]
    return "\n".join(lines)


def render_html(result: DriftResult) -> str:
    """A `<section>` for the self-contained run report (same classes as its other sections)."""
    e = html.escape
    agents = "".join(
        f"<tr><td>{e(a.agent)}</td><td>{a.proposals_a}</td><td>{a.proposals_b}</td><td>{divergence(a.action_js)}</td>"
        f"<td>{divergence(a.action_tv)}</td><td>{divergence(a.outcome_js)}</td></tr>"
        for a in result.agents
    )
    rows = "".join(
        f"<tr><td>{e(r.agent)}</td><td>{e(r.action)}</td><td>{e(mix_cell(r.a))}</td><td>{e(mix_cell(r.b))}</td>"
        f"<td>{e(signed(r.delta('allow')))}</td><td>{e(signed(r.delta('deny')))}</td>"
        f"<td>{e(signed(r.delta('escalate')))}</td></tr>"
        for r in result.rows
    )
    otherwise = "".join(f"<li>{e(d.agent)} {e(d.action)}: {e(d.a)} → {e(d.b)}</li>" for d in result.decided_otherwise)
    return f"""<section id="drift"><h2>Drift against {e(result.run_b)}</h2>
<p>{e(summary_line(result))}. Jensen–Shannon divergence is base 2 (0 = the same mix, 1 = nothing in common).</p>
{f"<p><strong>{e(warning)}</strong></p>" if (warning := result.scenario_warning()) else ""}
<table><tr><th>agent</th><th>proposals A</th><th>proposals B</th><th>action JS</th><th>action TV</th>
<th>outcome JS</th></tr>{agents}</table>
<table><tr><th>agent</th><th>action</th><th>A: n · allow / deny / escalate</th><th>B: n · allow / deny / escalate</th>
<th>Δ allow</th><th>Δ deny</th><th>Δ escalate</th></tr>{rows}</table>
{f"<p>Decided otherwise:</p><ul>{otherwise}</ul>" if otherwise else ""}</section>"""
