"""A pack's reporting declarations drive the report, the dashboards and the console's charts: the billing desk's own
KPIs, charts, customer texts, anomalies and panels are drawn with no core code naming them, and the chart lines
read exactly the snapshot paths a declaration names."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from coalition.bus.memory import MemoryBus
from coalition.domain import Chart, Line, Panel, Reporting, catalog
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.chart_series import chart_values
from coalition.scenarios.dashboard_figures import Figure, RunEntries
from coalition.scenarios.dashboard_render import render_md
from coalition.scenarios.dashboards import build_dashboards, run_dashboards
from coalition.scenarios.report_render import figures, render
from coalition.scenarios.reports import RunReport, run_report
from coalition.scenarios.spec import load_scenario

pytestmark = pytest.mark.unit

RUN = "desk-1"


@pytest.fixture(scope="module")
def desk() -> Iterator[tuple[SqliteLedger, RunReport]]:
    """A billing-desk run: customers' cases through several channels, an outage, a case escalated to a person."""
    ledger = SqliteLedger(":memory:")
    scenario = load_scenario("billing-desk-regulator-escalation")
    assemble_run(scenario, bus=MemoryBus(namespace="desk"), ledger=ledger, run_id=RUN).run()
    yield ledger, run_report(ledger, RUN)
    ledger.close()


class TestTheDeskDeclaresItsReport:
    """The desk's report shows the charts and figures its Reporting declares, and nothing of another business."""

    def test_the_report_draws_the_desks_charts(self, desk: tuple[SqliteLedger, RunReport]) -> None:
        report = desk[1]
        declared = [c.name for c in catalog().pack("billing-desk").reporting.charts]
        figs = figures(report)
        assert list(figs) == [*declared, "timeline", "outcomes", "budgets"]
        accounts = {str(t.name): list(t.y) for t in figs["accounts"].data}
        days = len(report.series)
        snapshot = report.series[-1].data
        assert accounts["accounts"] == [float(len(snapshot["accounts"]))] * days
        assert accounts["cancelled"][-1] == sum(a["cancelled"] for a in snapshot["accounts"])
        assert "Cash" not in render(report, "md")

    def test_the_dashboards_hold_the_desks_panels(self, desk: tuple[SqliteLedger, RunReport]) -> None:
        ledger, _ = desk
        d = run_dashboards(ledger, RUN)
        assert d.statements == []
        assert d.declared_statements is None
        (channels,) = d.breakdowns_on("trust")
        assert channels.title == "Cases by channel"
        entries = {e.seq: e for e in ledger.iter_entries(run_id=RUN)}
        cases = [e for e in entries.values() if e.kind == "observation" and e.payload.get("kind") == "case"]
        received = {g.name: int(g.figures["cases"].value) for g in channels.groups}
        assert sum(received.values()) == len(cases)
        escalated = next(f for f in d.ops if f.key == "cases_with_a_person")
        assert escalated.seqs
        assert {entries[s].payload.get("action") for s in escalated.seqs} == {"escalate_case"}
        comprehension = next(f for f in d.trust if f.key == "comprehension_score")
        assert comprehension.seqs, "the desk's notices are scored"
        md = render_md(d)
        assert "### Cases by channel" in md
        assert "declares no three-statement model" in md
        assert orjson.loads(orjson.dumps(d.to_json()))["breakdowns"][0]["title"] == "Cases by channel"

    def test_without_the_declarations_nothing_of_the_desk_is_shown(self, desk: tuple[SqliteLedger, RunReport]) -> None:
        """The negative control: the same entries read with no declaration show no desk figure."""
        ledger, _ = desk
        d = build_dashboards(list(ledger.iter_entries(run_id=RUN)), RUN, Reporting())
        assert d.breakdowns == []
        assert "cases_with_a_person" not in {f.key for f in d.ops}
        assert not next(f for f in d.trust if f.key == "comprehension_score").seqs


class TestAMinimalPack:
    """A declaration no installed pack makes is drawn as declared; a panel that fails is one alert, not a crash."""

    def test_declared_panels_and_a_failing_one(self, desk: tuple[SqliteLedger, RunReport]) -> None:
        def notices(run: RunEntries) -> list[Figure]:
            sent = [x for x in run.applied() if run.action(x.subject) == "notify_customer"]
            return [Figure("notices", "Notices sent", str(len(sent)), "Notices the executor sent.", (sent[0].seq,))]

        def broken(run: RunEntries) -> list[Figure]:
            raise KeyError("a field the pack expected")

        reporting = Reporting(
            snapshot="accounts.snapshot",
            panels=(
                Panel("overview", notices),
                Panel("ops", broken),
                Panel("trust", "coalition.nowhere:figures", title="By nothing"),
            ),
        )
        ledger, _ = desk
        d = build_dashboards(list(ledger.iter_entries(run_id=RUN)), RUN, reporting)
        assert d.kpis[-1].label == "Notices sent"
        assert int(d.kpis[-1].value) > 0
        failed = next(f for f in d.ops if f.key == "panel_failed")
        assert (failed.label, failed.status) == ("A panel of the pack failed (broken)", "alert")
        assert failed.definition == "KeyError: 'a field the pack expected'"
        (nowhere,) = d.breakdowns_on("trust")
        assert nowhere.groups[0].figures["panel_failed"].definition.startswith("ModuleNotFoundError")
        assert "### By nothing" in render_md(d)


class TestChartValues:
    """A line reads the snapshot path it names: `*` per key, kept keys, a raised cap, gaps, folds."""

    DAYS = (
        {"live": ["a"], "q": {"a": {"p": 10, "b": 8}, "z": {"p": 99, "b": 90}}, "cap": 25, "rev": 0, "m": -5},
        {"live": ["a", "z"], "q": {"a": {"p": 12, "b": 8}, "z": {"p": 91, "b": 90}}, "cap": 50, "rev": 3, "m": 7},
    )

    def test_star_lines_are_drawn_key_by_key_and_keep_only_the_listed_keys(self) -> None:
        chart = Chart(
            "t",
            (
                Line("{key}", "q.*.p", only="live"),
                Line("{key} cap", "q.*.b", only="live", plus_pct="cap"),
                Line("margin", "m", unless="rev", right=True),
            ),
        )
        found = chart_values(chart, self.DAYS)
        assert [(d.name, d.values) for d in found.lines] == [
            ("a", [10.0, 12.0]),
            ("a cap", [10.0, 12.0]),
            ("z", [None, 91.0]),
            ("z cap", [None, 135.0]),
            ("margin", [None, 7.0]),
        ]

    def test_folds(self) -> None:
        days = [{"xs": [{"on": True, "v": 1}, {"on": False, "v": 3}, {"on": True, "fs": [{"v": 2}, {"v": 5}]}]}]
        chart = Chart(
            "t",
            (
                Line("n", "xs.*.on", reduce="count"),
                Line("on", "xs.*.on", reduce="sum"),
                Line("mean", "xs.*.v", reduce="mean"),
                Line("nested", "xs.*.fs.*.v", reduce="sum"),
            ),
        )
        assert [d.values for d in chart_values(chart, days).lines] == [[3.0], [2.0], [2.0], [7.0]]
