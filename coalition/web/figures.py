"""The run page's plotly figures as JSON data islands, so the strict CSP (no inline script) still holds.

Each figure of `coalition.scenarios.report_render.figures` becomes an empty `<div id="fig-NAME">` plus a
`<script type="application/json">` block (data, never executed); `static/charts.js` draws them with plotly.js.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.io as pio  # type: ignore[import-untyped]
from markupsafe import Markup

from coalition.scenarios.report_render import figures
from coalition.scenarios.reports import RunReport

# The figures after the pack's own charts, in page order (div ids are "fig-NAME"); the time series (the pack's
# charts and the timeline) read best at full width, the last two side by side.
NARROW_FIGURES: tuple[str, ...] = ("outcomes", "budgets")

# JSON inside <script> must not be able to close the element or open a comment: escape <, > and & (as tojson does).
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


@dataclass(frozen=True, slots=True)
class FigureIsland:
    """One figure for the page: the id of the div plotly draws into, its title, and its JSON (script-safe)."""

    name: str
    div_id: str
    title: str
    json: Markup

    @property
    def data_id(self) -> str:
        return f"{self.div_id}-data"


def figure_islands(report: RunReport) -> list[FigureIsland]:
    """The report's figures ready to embed, in page order (the pack's charts, then timeline, outcomes, budgets)."""
    islands = []
    for name, fig in figures(report).items():
        text = str(pio.to_json(fig, validate=False, pretty=False))
        title = str(fig.layout.title.text or name)
        islands.append(FigureIsland(name, f"fig-{name}", title, Markup(text.translate(_SCRIPT_SAFE))))  # noqa: S704
    return islands
