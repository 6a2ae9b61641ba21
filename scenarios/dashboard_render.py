"""The dashboards (scenarios/dashboards.py) as sections of `coalition report`: Markdown and self-contained HTML.
Entries are named by their number within the run, as `coalition ledger explain N --run RUN` takes them."""

from __future__ import annotations

import html
from collections.abc import Sequence

from coalition.scenarios.dashboard_figures import Figure
from coalition.scenarios.dashboards import Dashboards
from coalition.scenarios.incidents import IncidentRecord

MAX_LISTED = 10


def entry_list(d: Dashboards, seqs: Sequence[int], limit: int = MAX_LISTED) -> str:
    numbers = [f"#{d.numbers.get(s, s)}" for s in seqs[:limit]]
    if not numbers:
        return "—"
    more = f" … ({len(seqs)} entries)" if len(seqs) > limit else ""
    return " ".join(numbers) + more


def _money(value: object) -> str:
    return f"{float(str(value)):,.2f}"


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _figures_md(d: Dashboards, figures: Sequence[Figure]) -> list[str]:
    return [
        "| figure | value | definition | entries |",
        "|---|---|---|---|",
        *[f"| {_md(f.label)} | {_md(f.value)} | {_md(f.definition)} | {entry_list(d, f.seqs)} |" for f in figures],
    ]


def _statements_md(d: Dashboards) -> list[str]:
    declared = d.declared_statements
    if declared is None:
        return ["The run's pack declares no three-statement model.", ""]
    return [
        declared.note,
        "",
        "| days | revenue | costs | net income | assets | liabilities | equity | operating cash | outside P&L "
        "| cash change | entries |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {w['days']} | {_money(w['revenue'])} | {_money(w['costs'])} | {_money(w['net'])} "
            f"| {_money(w['assets'])} | {_money(w['liabilities'])} | {_money(w['equity'])} | {_money(w['operating'])} "
            f"| {_money(w['other'])} | {_money(w['cash_change'])} | {entry_list(d, w['seqs'], 2)} |"
            for w in d.weeks()
        ],
        "",
    ]


def _breakdowns_md(d: Dashboards, board: str) -> list[str]:
    lines: list[str] = []
    for breakdown in d.breakdowns_on(board):
        lines += [f"### {breakdown.title}", ""]
        for group in breakdown.groups:
            lines += [f"**{group.name}**", "", *_figures_md(d, list(group.figures.values())), ""]
        if not breakdown.groups:
            lines += [breakdown.empty, ""]
    return lines


def render_md(d: Dashboards) -> str:
    lines = [
        "## Executive overview",
        "",
        *_figures_md(d, d.kpis),
        "",
        "### Three-statement model (USD, by simulated week)",
        "",
        *_statements_md(d),
        "## Trust dashboard",
        "",
        *_figures_md(d, d.trust),
        "",
        *_breakdowns_md(d, "trust"),
        "## Ops cockpit",
        "",
        *_figures_md(d, d.ops),
        "",
        *_breakdowns_md(d, "ops"),
        "### Incidents",
        "",
    ]
    if d.incidents:
        lines += [
            "| incident | also called | severity | status | age (simulated h) | entries |",
            "|---|---|---|---|---|---|",
        ]
        for i in d.incidents:
            age = i.age_hours(d.end) if d.end else None
            lines.append(
                f"| {_md(i.incident_id)} | {_md(', '.join(i.aliases) or '—')} | {i.severity} | {i.status} "
                f"| {f'{age:.0f}' if age is not None else '—'} | {entry_list(d, i.seqs, 3)} |"
            )
    else:
        lines.append("No incident was opened in this run.")
    lines += ["", "### Anomaly alerts", ""]
    lines += [f"- #{d.numbers.get(a.seq, a.seq)} {a.sim_time[:10]} **{a.kind}** {_md(a.subject)}" for a in d.alerts]
    lines += ["" if d.alerts else "No anomaly was reported in this run.", ""]
    return "\n".join(lines)


def _figures_html(d: Dashboards, figures: Sequence[Figure]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(f.label)}</td><td><b>{e(f.value)}</b></td><td>{e(f.definition)}</td>"
        f"<td><code>{e(entry_list(d, f.seqs))}</code></td></tr>"
        for f in figures
    )
    return f"<table><tr><th>figure</th><th>value</th><th>definition</th><th>entries</th></tr>{rows}</table>"


def _breakdowns_html(d: Dashboards, board: str) -> str:
    e = html.escape
    return "".join(
        f"<h3>{e(b.title)}</h3>"
        + "".join(f"<h3>{e(g.name)}</h3>{_figures_html(d, list(g.figures.values()))}" for g in b.groups)
        + ("" if b.groups else f"<p>{e(b.empty)}</p>")
        for b in d.breakdowns_on(board)
    )


def render_html(d: Dashboards) -> str:
    e = html.escape
    weeks = "".join(
        f"<tr><td>{e(str(w['days']))}</td><td>{_money(w['revenue'])}</td><td>{_money(w['costs'])}</td>"
        f"<td>{_money(w['net'])}</td><td>{_money(w['assets'])}</td><td>{_money(w['liabilities'])}</td>"
        f"<td>{_money(w['equity'])}</td><td>{_money(w['operating'])}</td><td>{_money(w['other'])}</td>"
        f"<td>{_money(w['cash_change'])}</td><td><code>{e(entry_list(d, w['seqs'], 2))}</code></td></tr>"
        for w in d.weeks()
    )
    incidents = "".join(
        f"<tr><td>{e(i.incident_id)}</td><td>{e(', '.join(i.aliases) or '—')}</td><td>{i.severity}</td>"
        f"<td>{e(i.status)}</td><td>{_age(d, i)}</td><td><code>{e(entry_list(d, i.seqs, 3))}</code></td></tr>"
        for i in d.incidents
    )
    alerts = "".join(
        f"<li><code>#{d.numbers.get(a.seq, a.seq)}</code> {e(a.sim_time[:10])} <b>{e(a.kind)}</b> {e(a.subject)}</li>"
        for a in d.alerts
    )
    table = (
        f"""<div class="scroll"><table><tr><th>days</th><th>revenue</th>
<th>costs</th><th>net income</th><th>assets</th><th>liabilities</th><th>equity</th><th>operating cash</th>
<th>outside P&amp;L</th><th>cash change</th><th>entries</th></tr>{weeks}</table></div>"""
        if d.declared_statements is not None
        else "<p>The run's pack declares no three-statement model.</p>"
    )
    return f"""<section id="executive-overview"><h2>Executive overview</h2>{_figures_html(d, d.kpis)}
<h3>Three-statement model (USD, by simulated week)</h3>{table}</section>
<section id="trust-dashboard"><h2>Trust dashboard</h2>{_figures_html(d, d.trust)}
{_breakdowns_html(d, "trust")}</section>
<section id="ops-cockpit"><h2>Ops cockpit</h2>{_figures_html(d, d.ops)}{_breakdowns_html(d, "ops")}<h3>Incidents</h3>
<table><tr><th>incident</th><th>also called</th><th>severity</th><th>status</th><th>age (simulated h)</th>
<th>entries</th></tr>{incidents}</table><h3>Anomaly alerts</h3><ul>{alerts}</ul>
<p>Entries are numbered within the run: <code>coalition ledger explain N --run {e(d.run_id)}</code>.</p></section>
"""


def _age(d: Dashboards, incident: IncidentRecord) -> str:
    age = incident.age_hours(d.end) if d.end is not None else None
    return f"{age:.0f}" if age is not None else "—"
