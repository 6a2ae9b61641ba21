"""Rendering a RunReport: plotly figures (reusable by the web console) and self-contained HTML, Markdown, JSON and
CSV documents. The HTML embeds plotly's own offline bundle, so it opens with no network at all."""

from __future__ import annotations

import csv
import html
import io
from typing import Any

import orjson
import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from coalition.bus.redaction import redact, redactor
from coalition.domain import Chart, Line, ProposalMarks
from coalition.scenarios import dashboard_render, drift_render, lane_report, review_report
from coalition.scenarios.chart_series import Drawn, chart_values
from coalition.scenarios.dashboards import Dashboards
from coalition.scenarios.drift import DriftResult
from coalition.scenarios.reports import BudgetUse, EscalationRow, RunReport
from coalition.scenarios.world_kpis import reporting_of, world_kpis

OUTCOME_COLOURS = {"allow": "#2e9e5b", "deny": "#d64545", "escalate": "#e8a33d", "none": "#888888"}
FORMATS = ("html", "md", "json", "csv")
_LAYOUT: dict[str, Any] = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 50, "b": 40},
    "height": 360,
    "legend": {"orientation": "h", "y": -0.18},
    "font": {"family": "Inter, system-ui, sans-serif", "size": 12},
}


def _decision_markers(fig: go.Figure, report: RunReport, y: float) -> None:
    """Denials and escalations as markers along the time axis, with the rule that fired on hover."""
    for outcome in ("deny", "escalate"):
        rows = [d for d in report.decisions if d.outcome == outcome]
        if not rows:
            continue
        fig.add_trace(
            go.Scatter(
                x=[d.sim_time for d in rows],
                y=[y] * len(rows),
                mode="markers",
                name=f"{outcome} ({len(rows)})",
                marker={"color": OUTCOME_COLOURS[outcome], "size": 11, "symbol": "triangle-down"},
                text=[f"{d.agent}: {d.action} — {', '.join(d.rule_ids) or d.gate or ''}" for d in rows],
                hoverinfo="text+x",
            )
        )


def _line_style(line: Line) -> dict[str, Any]:
    style: dict[str, Any] = {}
    if line.dash:
        style["dash"] = line.dash
    if line.width is not None:
        style["width"] = line.width
    if line.colour:
        style["color"] = line.colour
    return style


def _scatter(xs: list[str], drawn: Drawn, **more: Any) -> go.Scatter:
    style = _line_style(drawn.line)
    return go.Scatter(x=xs, y=drawn.values, mode="lines", name=drawn.name, **more, **({"line": style} if style else {}))


def _proposal_marks(fig: go.Figure, report: RunReport, marks: ProposalMarks) -> None:
    """An action's proposals at the value of one argument, coloured by their verdict."""
    rows = [d for d in report.decisions if d.action == marks.action]
    if not rows:
        return
    fig.add_trace(
        go.Scatter(
            x=[d.sim_time for d in rows],
            y=[float(d.args.get(marks.value, 0)) for d in rows],
            mode="markers",
            name=marks.name,
            marker={"color": [OUTCOME_COLOURS.get(d.outcome, "#888") for d in rows], "size": 10},
            text=[f"{d.args.get(marks.label)}: {d.outcome} ({', '.join(d.rule_ids)})" for d in rows],
            hoverinfo="text+y",
        )
    )


def _right_axis(chart: Chart, values: list[float]) -> dict[str, Any]:
    """The right axis; below `right_floor` it stops, so the shape of the rest stays readable (a big early spend
    against little revenue gives margins of -5000 %; hover still shows the real value)."""
    axis: dict[str, Any] = {"title": {"text": chart.right_axis}, "overlaying": "y", "side": "right"}
    axis.update(showgrid=False, tickmode="auto", zeroline=True, zerolinecolor="#cfd6de")
    floor = chart.right_floor
    if floor is not None and values and min(values) < floor:
        axis["range"] = [floor - 5, max(*values, 0.0) + 5]
        axis["title"] = {"text": f"{chart.right_axis} (axis cut at {floor:.0f})"}
    return axis


def chart_figure(chart: Chart, report: RunReport) -> go.Figure:
    """One chart the run's pack declares, over its daily snapshots: lines (left and right axis), its band as two
    dashed lines, an action's proposals and the decision markers."""
    xs = [p.sim_time for p in report.series]
    found = chart_values(chart, [p.data for p in report.series])
    fig = go.Figure()
    for drawn in found.lines:
        fig.add_trace(_scatter(xs, drawn, **({"yaxis": "y2"} if drawn.line.right else {})))
    if found.band is not None:
        for drawn in reversed(found.band):
            fig.add_trace(_scatter(xs, drawn))
    if chart.proposals is not None:
        _proposal_marks(fig, report, chart.proposals)
    if chart.decisions:
        top = max([v for d in found.lines if not d.line.right for v in d.values if v is not None] or [0])
        _decision_markers(fig, report, top * 1.03)
    fig.update_layout(title=chart.title, **_LAYOUT)
    axes: dict[str, Any] = {}
    if any(d.line.right for d in found.lines):
        axes["margin"] = {**_LAYOUT["margin"], "r": 60}
    if chart.axis:
        axes["yaxis"] = {"title": {"text": chart.axis}}
    if any(d.line.right for d in found.lines):
        axes["yaxis2"] = _right_axis(chart, [v for d in found.lines if d.line.right for v in d.values if v is not None])
    if axes:
        fig.update_layout(**axes)
    return fig


def _budget_figure(report: RunReport) -> go.Figure:
    """Share of each agent's budget (policy limit + approved increases) spent, one bar per budget period."""
    fig = go.Figure()
    agents = sorted({b.agent for b in report.budgets})
    periods = sorted({b.period for b in report.budgets})
    for period in periods:
        rows = {b.agent: b for b in report.budgets if b.period == period}
        fig.add_trace(
            go.Bar(
                x=agents,
                y=[_share(rows[a].spent_usd, rows[a].budget_usd) if a in rows else None for a in agents],
                name=period,
                text=[_budget_hover(rows[a]) if a in rows else "" for a in agents],
                hoverinfo="text",
                textposition="none",
            )
        )
    fig.add_hline(y=100, line={"dash": "dash", "color": "#d64545", "width": 1})
    period = f"per {report.budget_period}" if report.budget_period else "per period"
    fig.update_layout(title=f"Budget used per agent, {period} (% spent)", barmode="group")
    fig.update_layout(**_LAYOUT)
    fig.update_layout(yaxis={"title": {"text": "% of budget"}, "rangemode": "tozero"})
    return fig


def _share(amount: float, budget: float) -> float | None:
    return round(100 * amount / budget, 1) if budget else None


def _budget_hover(b: BudgetUse) -> str:
    text = f"{b.agent}, {b.period}: spent {b.spent_usd:,.0f} of {b.budget_usd:,.0f} USD"
    if b.increase_usd:
        text += f" (limit {b.limit_usd:,.0f} + approved increases {b.increase_usd:,.0f})"
    if b.reserved_usd:
        text += f"; {b.reserved_usd:,.0f} reserved, not yet executed"
    return text


def figures(report: RunReport) -> dict[str, go.Figure]:
    """The report's charts over simulated time, by name: the charts the run's pack declares, then the decision
    timeline, outcomes by agent and budgets."""
    declared = {chart.name: chart_figure(chart, report) for chart in reporting_of(report.pack).charts}

    timeline = go.Figure()
    for outcome in ("allow", "deny", "escalate"):
        rows = [d for d in report.decisions if d.outcome == outcome]
        if rows:
            timeline.add_trace(
                go.Scatter(
                    x=[d.sim_time for d in rows],
                    y=[d.agent for d in rows],
                    mode="markers",
                    name=outcome,
                    marker={"color": OUTCOME_COLOURS[outcome], "size": 10, "opacity": 0.85},
                    text=[f"{d.action}: {d.rationale[:140]}" for d in rows],
                    hoverinfo="text+x",
                )
            )
    timeline.update_layout(title="Decision timeline by agent", **_LAYOUT)

    by_agent = report.decisions_by_agent
    outcomes = go.Figure()
    for outcome in ("allow", "deny", "escalate"):
        outcomes.add_trace(
            go.Bar(
                x=list(by_agent),
                y=[by_agent[a].get(outcome, 0) for a in by_agent],
                name=outcome,
                marker_color=OUTCOME_COLOURS[outcome],
            )
        )
    outcomes.update_layout(title="Decisions by agent and outcome", barmode="stack", **_LAYOUT)

    return {
        **declared,
        "timeline": timeline,
        "outcomes": outcomes,
        "budgets": _budget_figure(report),
    }


def render_json(report: RunReport, dashboards: Dashboards | None = None) -> str:
    doc = report.to_json()
    if dashboards is not None:
        doc["dashboards"] = dashboards.to_json()
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def render_csv(report: RunReport) -> str:
    """The decisions as CSV (one row per verdict), the table people open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["seq", "sim_time", "day", "agent", "action", "outcome", "gate", "rule_ids", "proposal_id", "args"])
    for d in report.decisions:
        args = orjson.dumps(d.args, option=orjson.OPT_SORT_KEYS).decode()
        writer.writerow(
            [
                d.seq,
                d.sim_time,
                d.day,
                d.agent,
                d.action,
                d.outcome,
                d.gate or "",
                " ".join(d.rule_ids),
                d.proposal_id,
                args,
            ]
        )
    return out.getvalue()


def _kpi_pairs(report: RunReport) -> list[tuple[str, str]]:
    """The world's KPIs as the run's pack declares them, then the run's own."""
    passed, total = report.expectations_passed
    return [
        *world_kpis(report.pack, report.kpis),
        ("Agent spend (charged)", f"{sum(b.spent_usd for b in report.budgets):,.0f} USD"),
        ("Decisions", str(len(report.decisions))),
        ("Blocked violations", str(len(report.blocked))),
        ("Escalations", str(len(report.escalations))),
        ("Mean time to decision", mean_time_to_decision(report)),
        ("Expectations passed", f"{passed} / {total}"),
    ]


def wall_duration(seconds: float) -> str:
    """Seconds as people say them: 42 s, 3 min 5 s, 2 h 10 min."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def mean_time_to_decision(report: RunReport) -> str:
    """Interactive runs: wall time (the simulated clock stood still while people decided, so simulated hours
    would say 0.0 h); scripted runs: simulated hours."""
    if report.interactive:
        walls = [e.wall_seconds_to_decision for e in report.escalations if e.wall_seconds_to_decision is not None]
        return f"{wall_duration(sum(walls) / len(walls))} (wall time)" if walls else "—"
    hours = [e.hours_to_decision for e in report.escalations if e.hours_to_decision is not None]
    return f"{sum(hours) / len(hours):.1f} h (simulated)" if hours else "—"


def time_to_decision(report: RunReport, e: EscalationRow) -> str:
    if report.interactive:
        return wall_duration(e.wall_seconds_to_decision) if e.wall_seconds_to_decision is not None else "—"
    return f"{e.hours_to_decision} h" if e.hours_to_decision is not None else "—"


def expectation_mark(report: RunReport, expectation: dict[str, Any]) -> str:
    """pass, fail, or "humans" for a failure that holds with the scripted board (people decided otherwise)."""
    if expectation.get("passed"):
        return "pass"
    board = report.scripted_board or {}
    return "humans" if expectation.get("id") in (board.get("written_for_scripted_board") or []) else "fail"


_MARK_TEXT = {"pass": "✅", "fail": "❌", "humans": "≠ humans decided otherwise"}


def _used(amount: float, budget: float) -> str:
    return f"{100 * amount / budget:.0f} %" if budget else "—"


def render_md(report: RunReport) -> str:
    lines = [
        f"# Run report: {report.run_id}",
        "",
        f"Scenario **{report.scenario}**, seed {report.seed}, {report.days} days from {report.start}; policy "
        f"`{(report.policy_version or '')[:16]}`; status {report.status}; {report.entries} ledger entries; "
        f"digest `{report.digest}`.",
        "",
        report.description,
        "",
        "## KPIs",
        "",
        "| KPI | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in _kpi_pairs(report)],
        "",
        "## Decisions by agent",
        "",
        "| agent | allow | deny | escalate |",
        "|---|---|---|---|",
        *[
            f"| {a} | {c.get('allow', 0)} | {c.get('deny', 0)} | {c.get('escalate', 0)} |"
            for a, c in report.decisions_by_agent.items()
        ],
        "",
        "## Budget use per agent and period",
        "",
        "| period | agent | budget | of which increases | spent | reserved | used |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {b.period} | {b.agent} | {b.budget_usd:,.0f} | {b.increase_usd:,.0f} | {b.spent_usd:,.0f} "
            f"| {b.reserved_usd:,.0f} | {_used(b.spent_usd + b.reserved_usd, b.budget_usd)} |"
            for b in report.budgets
        ],
        "",
        "## Escalations",
        "",
        f"| day | agent | action | gate | outcome | decided by | time to decision ({_ttd_unit(report)}) |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {e.opened[:10]} | {e.agent} | {e.action} | {e.gate} | {e.outcome} | {', '.join(e.decided_by) or '—'} "
            f"| {time_to_decision(report, e)} |"
            for e in report.escalations
        ],
        "",
        "## Blocked violations",
        "",
        *[f"- day {d.day}: {d.agent} {d.action} — {d.rationale}" for d in report.blocked],
        "",
        *_shadow_md(report),
        "## Expectations",
        "",
        *([f"**{(report.scripted_board or {}).get('summary')}**", ""] if _board_summary(report) else []),
        "| | id | description | expected | observed |",
        "|---|---|---|---|---|",
        *[
            f"| {_MARK_TEXT[expectation_mark(report, e)]} | `{e.get('id')}` | {_md_cell(e.get('description'))} "
            f"| {_md_cell(e.get('expected'))} | {_md_cell(e.get('observed'))} |"
            for e in report.expectations
        ],
        "",
    ]
    return "\n".join(lines)


def _shadow_md(report: RunReport) -> list[str]:
    """Where the run's shadow policy would have decided otherwise (nothing when the run had none)."""
    shadow = report.shadow
    if shadow is None:
        return []
    return [
        "## Shadow policy",
        "",
        f"Policy `{shadow.policy_version[:16]}` evaluated {shadow.evaluated} proposals beside the real policy; it "
        f"would have decided {len(shadow.rows)} otherwise.",
        "",
        "| by rule | differing |",
        "|---|---|",
        *[f"| `{rule}` | {n} |" for rule, n in shadow.by_rule.items()],
        "",
        "| by action | differing |",
        "|---|---|",
        *[f"| {action} | {n} |" for action, n in shadow.by_action.items()],
        "",
        "| day | agent | action | decided | shadow would | shadow's reason |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r.day} | {r.agent} | {r.action} | {r.outcome} {_decided_by(r.outcome, r.rule_ids)} "
            f"| {r.shadow_outcome} {_decided_by(r.shadow_outcome, r.shadow_rule_ids)} | {_md_cell(r.shadow_reason)} |"
            for r in shadow.rows
        ],
        "",
    ]


def _decided_by(outcome: str, rule_ids: list[str]) -> str:
    return "" if outcome == "allow" or not rule_ids else f"`{_md_cell(rule_ids[0])}`"


def _shadow_html(report: RunReport) -> str:
    shadow = report.shadow
    if shadow is None:
        return ""
    e = html.escape
    counts = "".join(f"<tr><td><code>{e(k)}</code></td><td>{n}</td></tr>" for k, n in shadow.by_rule.items())
    actions = "".join(f"<tr><td>{e(k)}</td><td>{n}</td></tr>" for k, n in shadow.by_action.items())
    rows = "".join(
        f"<tr><td>{r.day}</td><td>{e(r.agent)}</td><td>{e(r.action)}</td><td>{_pill(r.outcome)}</td>"
        f"<td>{_pill(r.shadow_outcome)}</td><td><code>{e(', '.join(r.shadow_rule_ids[:1]))}</code></td>"
        f"<td>{e(r.shadow_reason)}</td></tr>"
        for r in shadow.rows
    )
    return (
        f"<section><h2>Shadow policy</h2><p>Policy <code>{e(shadow.policy_version[:16])}</code> evaluated "
        f"{shadow.evaluated} proposals beside the real policy; it would have decided {len(shadow.rows)} otherwise."
        f'</p><div class="grid"><table><tr><th>rule</th><th>differing</th></tr>{counts}</table>'
        f"<table><tr><th>action</th><th>differing</th></tr>{actions}</table></div>"
        f"<table><tr><th>day</th><th>agent</th><th>action</th><th>decided</th><th>shadow would</th><th>rule</th>"
        f"<th>shadow's reason</th></tr>{rows}</table></section>"
    )


def _board_summary(report: RunReport) -> str | None:
    summary = (report.scripted_board or {}).get("summary")
    return str(summary) if summary else None


def _ttd_unit(report: RunReport) -> str:
    return "wall time" if report.interactive else "simulated hours"


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


CSS = """
body{font-family:Inter,system-ui,-apple-system,Segoe UI,sans-serif;margin:0;background:#f6f7f9;color:#1d232b}
header{background:#14324a;color:#fff;padding:24px 40px}header h1{margin:0 0 6px;font-size:22px}
header p{margin:4px 0;opacity:.85;font-size:13px;max-width:1100px}main{padding:24px 40px;max-width:1300px}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px;margin-bottom:24px}
.kpi{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.kpi .k{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:#66707c}.kpi .v{font-size:20px;
font-weight:600;margin-top:4px}section{background:#fff;border-radius:8px;padding:16px 20px;margin-bottom:20px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}h2{font-size:16px;margin:0 0 12px}table{border-collapse:collapse;width:100%;
font-size:13px}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eceef1;vertical-align:top}
th{background:#f0f2f5;font-weight:600}.pill{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;
font-size:12px}.allow,.approved,.pass{background:#2e9e5b}.deny,.rejected,.fail{background:#d64545}
.escalate,.expired,.pending,.humans{background:#e8a33d}.grid{display:grid;grid-template-columns:1fr 1fr;gap:20px}
code{font-size:12px;color:#445}.scroll{overflow-x:auto}
"""


def _pill(text: str) -> str:
    return f'<span class="pill {html.escape(text)}">{html.escape(text)}</span>'


_BOTTOM = ("outcomes", "budgets")  # side by side under the time series


def render_html(report: RunReport) -> str:
    """A self-contained page: plotly's JS inlined once, then each figure as a div; no CDN, no network."""
    e = html.escape
    figs = figures(report)
    charts = {
        name: fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{name}") for name, fig in figs.items()
    }
    kpis = "".join(
        f'<div class="kpi"><div class="k">{e(k)}</div><div class="v">{e(v)}</div></div>' for k, v in _kpi_pairs(report)
    )
    esc_rows = "".join(
        f"<tr><td>{e(x.opened[:10])}</td><td>{e(x.agent)}</td><td>{e(x.action)}</td><td>{e(str(x.gate))}</td>"
        f"<td>{_pill(x.outcome)}</td><td>{e(', '.join(x.decided_by) or '—')}</td>"
        f"<td>{e(time_to_decision(report, x))}</td>"
        f"<td>{e(' / '.join(x.reasons))}</td></tr>"
        for x in report.escalations
    )
    blocked = "".join(
        f"<tr><td>{d.day}</td><td>{e(d.agent)}</td><td>{e(d.action)}</td>"
        f"<td><code>{e(', '.join(d.rule_ids))}</code></td><td>{e(d.rationale)}</td></tr>"
        for d in report.blocked
    )
    expectations = "".join(
        f"<tr><td>{_pill(expectation_mark(report, x))}</td><td><code>{e(str(x.get('id')))}</code></td>"
        f"<td>{e(str(x.get('description')))}</td><td>{e(str(x.get('expected')))}</td>"
        f"<td>{e(str(x.get('observed')))}</td></tr>"
        for x in report.expectations
    )
    board_summary = f"<p><strong>{e(_board_summary(report) or '')}</strong></p>" if _board_summary(report) else ""
    timeline = "".join(
        f"<tr><td>{d.day}</td><td>{e(d.agent)}</td><td>{e(d.action)}</td><td>{_pill(d.outcome)}</td>"
        f"<td>{e(d.rationale[:220])}</td></tr>"
        for d in sorted(report.decisions, key=lambda d: (d.agent, d.seq))
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Run report {e(report.run_id)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{CSS}</style><script type="text/javascript">{get_plotlyjs()}</script></head>
<body><header><h1>{e(report.scenario)} — run {e(report.run_id)}</h1>
<p>{e(report.description)}</p>
<p>seed {report.seed} · {report.days} simulated days from {e(str(report.start))} · policy
<code style="color:#cfe">{e((report.policy_version or "")[:16])}</code> · {report.entries} ledger entries · status
{e(report.status)} · digest <code style="color:#cfe">{e(report.digest[:16])}…</code></p></header>
<main><div class="kpis">{kpis}</div>
{"".join(f"<section>{chart}</section>" for name, chart in charts.items() if name not in _BOTTOM)}
<div class="grid"><section>{charts["outcomes"]}</section><section>{charts["budgets"]}</section></div>
<section><h2>Escalations and how they were decided</h2><table><tr><th>opened</th><th>agent</th><th>action</th>
<th>gate</th><th>outcome</th><th>decided by</th><th>time to decision ({_ttd_unit(report)})</th><th>reason</th></tr>
{esc_rows}</table></section>
<section><h2>Blocked violations</h2><table><tr><th>day</th><th>agent</th><th>action</th><th>rules</th>
<th>why</th></tr>{blocked}</table></section>
{_shadow_html(report)}
<section><h2>Expectations</h2>{board_summary}<table><tr><th></th><th>id</th><th>description</th><th>expected</th>
<th>observed</th></tr>{expectations}</table></section>
<section><h2>Decisions by agent</h2><table><tr><th>day</th><th>agent</th><th>action</th><th>outcome</th>
<th>rationale</th></tr>{timeline}</table></section>
</main></body></html>
"""


def render(report: RunReport, fmt: str, dashboards: Dashboards | None = None, drift: DriftResult | None = None) -> str:
    """The report in one of FORMATS, with any configured secret redacted (coalition.bus.redaction); with
    `dashboards`, html, md and json also hold the executive overview, the trust dashboard and the ops cockpit; with
    `drift`, they also hold the comparison of this run's decision mix with another run's (csv stays the decisions)."""
    if fmt == "json":
        doc = orjson.loads(render_json(report, dashboards))
        if drift is not None:
            doc["drift"] = drift.to_json()
        # redact the values, not the JSON text: there a secret holding a quote or a backslash is written escaped
        return orjson.dumps(redactor().value(doc), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    renderers = {"html": render_html, "md": render_md, "csv": render_csv}
    text = renderers[fmt](report)
    if fmt == "md":
        text += "".join(
            "\n" + part
            for part in (
                lane_report.render_md(report.lanes) if report.lanes is not None else None,
                review_report.render_md(report.reviews) if report.reviews is not None else None,
                dashboard_render.render_md(dashboards) if dashboards is not None else None,
                drift_render.render_md(drift) if drift is not None else None,
            )
            if part is not None
        )
    elif fmt == "html":
        sections = (
            (lane_report.render_html(report.lanes) if report.lanes is not None else "")
            + (review_report.render_html(report.reviews) if report.reviews is not None else "")
            + (dashboard_render.render_html(dashboards) if dashboards is not None else "")
        ) + (drift_render.render_html(drift) if drift is not None else "")
        text = text.replace("</main></body></html>", sections + "</main></body></html>")
    return redact(text)
