"""The report read model and its renderings, over a real chaos-week run in a temporary SQLite ledger."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from coalition.bus.memory import MemoryBus
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.audit import AuditError, write_audit
from coalition.scenarios.report_render import figures, render
from coalition.scenarios.reports import ReportError, RunReport, run_report
from coalition.scenarios.runner import Runner
from coalition.scenarios.spec import load_scenario

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteLedger, RunReport]]:
    ledger = SqliteLedger(tmp_path_factory.mktemp("r") / "ledger.db")
    Runner(load_scenario("chaos-week"), bus=MemoryBus(namespace="c"), ledger=ledger, run_id="chaos-1").run()
    yield ledger, run_report(ledger, "chaos-1")
    ledger.close()


class TestReadModel:
    """run_report reads everything from the ledger."""

    def test_series_has_one_point_per_day(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """Nine simulated days, nine snapshots, each with the band and prices."""
        report = chaos[1]
        assert [p.day for p in report.series] == list(range(9))
        assert report.series[-1].ceiling == 250
        assert "TX" in report.series[-1].prices

    def test_decisions_escalations_and_expectations(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """Counts by agent and outcome, escalations with who decided, all expectations passed."""
        report = chaos[1]
        assert report.decisions_by_agent["finance"]["deny"] == 2
        outcomes = {e.action: e.outcome for e in report.escalations}
        assert outcomes["set_settlement_policy"] == "expired"
        assert outcomes["change_pricing_policy"] == "rejected"
        rejected = next(e for e in report.escalations if e.action == "change_pricing_policy")
        assert rejected.decided_by == ["alice (risk_officer)"]
        assert report.expectations_passed == (12, 12)
        assert {d.action for d in report.blocked} >= {"set_price", "pause_settlement"}

    def test_unknown_run(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """A run that is not there is a ReportError naming it."""
        with pytest.raises(ReportError, match="no run 'x'"):
            run_report(chaos[0], "x")


class TestRenderings:
    """html / md / json / csv, and the figures the web console embeds."""

    def test_figures_have_data(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """Five figures, each with at least one trace; denials are marked on the money chart."""
        figs = figures(chaos[1])
        assert set(figs) == {"money", "prices", "timeline", "outcomes", "budgets"}
        assert all(len(f.data) > 0 for f in figs.values())
        assert any(str(t.name).startswith("deny") for t in figs["money"].data)

    def test_html_is_self_contained(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """plotly.js is inlined and nothing is fetched from a CDN."""
        page = render(chaos[1], "html")
        assert "<script src=" not in page  # plotly's bundle mentions its CDN in strings, but nothing loads it
        assert '<script src="http' not in page
        assert "Plotly.newPlot" in page
        assert 'id="fig-prices"' in page

    def test_csv_has_one_row_per_decision(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """Header plus one row per verdict."""
        rows = list(csv.reader(io.StringIO(render(chaos[1], "csv"))))
        assert rows[0][:3] == ["seq", "sim_time", "day"]
        assert len(rows) == len(chaos[1].decisions) + 1

    def test_json_and_md(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """JSON parses with the summary fields; Markdown names each expectation."""
        doc = orjson.loads(render(chaos[1], "json"))
        assert doc["expectations_summary"] == {"passed": 12, "total": 12}
        assert doc["run_id"] == "chaos-1"
        assert "`fraud-contained`" in render(chaos[1], "md")


class TestAudit:
    """The audit package, by incident or time range, as a directory or a zip."""

    def test_incident_zip(self, chaos: tuple[SqliteLedger, RunReport], tmp_path: Path) -> None:
        """The outage incident's slice holds its approval and the runbook executions; the chain verifies."""
        package = write_audit(chaos[0], "chaos-1", tmp_path / "a.zip", incident="nm-meter-firmware")
        assert package.verified
        assert package.entries > 5
        with zipfile.ZipFile(package.path) as zf:
            names = set(zf.namelist())
            lines = [orjson.loads(x) for x in zf.read("ledger.jsonl").splitlines()]
            approvals = orjson.loads(zf.read("approvals.json"))
        assert {"ledger.jsonl", "verification.json", "policy.json", "approvals.json", "summary.md"} <= names
        assert [a["approver"] for a in approvals] == ["frank"]
        assert any(x["kind"] == "execution" and x["payload"]["action"] == "issue_credit" for x in lines)
        assert not any(x["payload"].get("action") == "freeze_account" for x in lines)

    def test_time_range_directory(self, chaos: tuple[SqliteLedger, RunReport], tmp_path: Path) -> None:
        """A time range keeps only entries inside it."""
        from datetime import UTC, datetime

        start, end = datetime(2025, 9, 3, tzinfo=UTC), datetime(2025, 9, 3, 23, 59, tzinfo=UTC)
        write_audit(chaos[0], "chaos-1", tmp_path / "dir", start=start, end=end)
        lines = [orjson.loads(x) for x in (tmp_path / "dir" / "ledger.jsonl").read_bytes().splitlines()]
        assert lines
        assert all(x["sim_time"].startswith("2025-09-03") for x in lines)
        assert "# Audit package" in (tmp_path / "dir" / "summary.md").read_text()

    def test_unknown_incident(self, chaos: tuple[SqliteLedger, RunReport], tmp_path: Path) -> None:
        """An incident nothing mentions is an AuditError."""
        with pytest.raises(AuditError, match="no entry"):
            write_audit(chaos[0], "chaos-1", tmp_path / "x", incident="nope-incident")
