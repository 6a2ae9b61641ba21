"""What reports, dashboards and the console show of a pack's world, declared by the pack: its KPIs, the charts of
its daily snapshot, its three-statement model, its customer-facing texts, its anomalies and its own dashboard
figures. The core draws what is declared here and names no business itself."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Board = Literal["overview", "trust", "ops"]


@dataclass(frozen=True, slots=True)
class Kpi:
    """One KPI of the pack's world as reports show it: `key` in the world's `kpis()` (a run's summary records
    them), its label, and `format`, a str.format pattern over `value` — a number as a float ("{value:,.0f} USD"),
    a mapping's parts by name ("{value[open]} / {value[resolved]}", a missing part 0); a flag reads yes or no."""

    key: str
    label: str
    format: str = "{value}"


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a chart of the daily snapshot.

    - `label`: its name in the legend; for a path with a `*`, `{key}` stands for the key (one line per key found
      there, "{key} cap"; a label without `{key}` is followed by the key);
    - `path`: dotted path in the snapshot's data ("cases.open_count"); a `*` segment goes over every key of a
      mapping or every item of a list ("prices.*.price");
    - `reduce`: "sum", "mean" or "count" folds every value a `*` path finds into one line (a flag counts 1);
    - `only`: for a `*` line, the path of the list of keys to draw (the others are left out);
    - `plus_pct`: the path of a percentage the value is raised by (a cap over a base: base × (1 + pct / 100));
    - `unless`: the path of a value that must be non-zero for a point to be drawn (a margin before any revenue
      is a gap, not a number);
    - `dash` ("dot", "dash"), `width`, `colour`: how it is drawn; `right`: on the chart's right axis.
    """

    label: str
    path: str
    reduce: Literal["", "sum", "mean", "count"] = ""
    only: str = ""
    plus_pct: str = ""
    unless: str = ""
    dash: Literal["", "dot", "dash"] = ""
    width: float | None = None
    colour: str = ""
    right: bool = False


@dataclass(frozen=True, slots=True)
class ProposalMarks:
    """The proposals of one action drawn on a chart: at the value of argument `value`, coloured by their verdict,
    each named by argument `label`; `name` is the legend's."""

    action: str
    value: str
    label: str
    name: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart of the world's daily snapshot over a run (the report's figures and the console's run page).

    - `title`, with its unit ("Cash (USD)"); `key` names the figure (its element id: "fig-KEY"; default: made of
      the title);
    - `lines`: each a Line;
    - `band`: (lower, upper) lines of an allowed range: the console shades between them, the report draws them
      dashed (upper first);
    - `decisions`: denials and escalations as markers along the top;
    - `proposals`: an action's proposals as markers (ProposalMarks);
    - `axis`: the left axis's title; `right_axis`: the right axis's (lines with `right`), cut at `right_floor`
      when values go below it (hover still shows them).
    """

    title: str
    lines: tuple[Line, ...]
    key: str = ""
    band: tuple[Line, Line] | None = None
    decisions: bool = False
    proposals: ProposalMarks | None = None
    axis: str = ""
    right_axis: str = ""
    right_floor: float | None = None

    @property
    def name(self) -> str:
        """The figure's name: `key`, or the title's words joined by dashes."""
        if self.key:
            return self.key
        words = "".join(c if c.isalnum() else " " for c in self.title.lower()).split()
        return "-".join(words) or "chart"


@dataclass(frozen=True, slots=True)
class Statements:
    """The three-statement model (P&L, balance sheet, cash flow) over the daily snapshot, day by day.

    - `revenue`, `costs`: paths of running totals since day 0;
    - `assets`: (label, path) of each balance counted as an asset (e.g. ("cash", "cash_usd"));
    - `liabilities`: the path of what the business owes;
    - `costs_are`: what costs are, in the business's words (a definition quotes it);
    - `note`: how the statements read, for the report; `long_note`: the same for the console (default `note`).
    """

    revenue: str
    costs: str
    assets: tuple[tuple[str, str], ...]
    liabilities: str
    costs_are: str
    note: str
    long_note: str = ""


@dataclass(frozen=True, slots=True)
class CustomerTexts:
    """The arguments that are texts customers read (action → argument), scored for plain English and, when a
    model writes one in a lane, held to the words check; `are` names them in the business's words ("notices and
    letters")."""

    fields: Mapping[str, str]
    are: str


def _resolved(found: Callable[..., Any] | str) -> Callable[..., Any]:
    if not isinstance(found, str):
        return found
    module_name, _, attribute = found.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    return function


@dataclass(frozen=True, slots=True)
class Panel:
    """Figures the pack adds to one dashboard ("overview", "trust" or "ops").

    `figures`: (the run's entries, a coalition.scenarios RunEntries) → its coalition.scenarios Figures, or where to
    find it as "package.module:attribute", imported only when a dashboard is built. With `title`, the figures
    come in groups (`figures` returns (group, figures) pairs, e.g. by region) under that heading, `empty` saying
    what no group means.
    """

    board: Board
    figures: Callable[[Any], Sequence[Any]] | str
    title: str = ""
    empty: str = ""

    def compute(self, run: Any) -> Sequence[Any]:
        found: Sequence[Any] = _resolved(self.figures)(run)
        return found


@dataclass(frozen=True, slots=True)
class Reporting:
    """What reports and the console show of the pack's world.

    - `snapshot`: the observation kind of the world's daily snapshot (the charts and the statements read it);
    - `kpis`: the KPIs a report lists, in order (none: every key of `kpis()`, labelled from its name);
    - `charts`: the charts of the daily snapshot (the report's figures and the console's run page);
    - `statements`: the three-statement model (none: the dashboards say the pack declares none);
    - `texts`: the customer-facing texts the trust dashboard scores (CustomerTexts);
    - `alerts`: the observation kinds that are anomalies (the ops cockpit lists them);
    - `panels`: the pack's own dashboard figures (Panel);
    - `gate_risk`: per gate of the pack, how much harm a wrong "yes" can do (1-5): the approvals inbox sorts by it.
    """

    snapshot: str = ""
    kpis: tuple[Kpi, ...] = ()
    charts: tuple[Chart, ...] = ()
    statements: Statements | None = None
    texts: CustomerTexts | None = None
    alerts: tuple[str, ...] = ()
    panels: tuple[Panel, ...] = ()
    gate_risk: Mapping[str, int] = field(default_factory=dict)
