"""The report read model and its renderings, over real chaos-week and helios-launch runs in temporary SQLite ledgers."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from decision_forgeries import append_forged_decisions

from coalition.bus.keys import public_text
from coalition.bus.memory import MemoryBus
from coalition.cli.summary import escalations
from coalition.governance.decision_signatures import sign, statement
from coalition.governance.policy import charged_args
from coalition.ledger.entry import EntryDraft, LedgerEntry
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.audit import AuditError, write_audit
from coalition.scenarios.board_divergence import divergences
from coalition.scenarios.report_render import figures, render
from coalition.scenarios.reports import ReportError, RunReport, run_report
from coalition.scenarios.spec import load_scenario

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteLedger, RunReport]]:
    ledger = SqliteLedger(tmp_path_factory.mktemp("r") / "ledger.db")
    assemble_run(load_scenario("chaos-week"), bus=MemoryBus(namespace="c"), ledger=ledger, run_id="chaos-1").run()
    yield ledger, run_report(ledger, "chaos-1")
    ledger.close()


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteLedger, RunReport]]:
    """Ninety days of helios-launch: finance enters a market, marketing launches a campaign, research commissions
    a study over its budget (approved as a budget increase)."""
    ledger = SqliteLedger(tmp_path_factory.mktemp("h") / "ledger.db")
    assemble_run(load_scenario("helios-launch"), bus=MemoryBus(namespace="h"), ledger=ledger, run_id="launch-1").run()
    yield ledger, run_report(ledger, "launch-1")
    ledger.close()


def copy_run(
    entries: list[LedgerEntry], path: Path, run_id: str, *, before_seq: int | None = None, drop_policy: bool = False
) -> SqliteLedger:
    """A new ledger holding a copy of a run's entries under another run id (cut short, or without its policy)."""
    ledger = SqliteLedger(path)
    drafts = []
    for e in entries:
        if before_seq is not None and e.seq >= before_seq:
            break
        fields = {name: getattr(e, name) for name in EntryDraft.model_fields}
        fields["run_id"] = run_id
        if drop_policy and e.kind == "run":
            settings = {k: v for k, v in e.payload.get("settings", {}).items() if k != "policy_document"}
            fields["payload"] = {**e.payload, "settings": settings}
        drafts.append(EntryDraft(**fields))
    ledger.append(drafts)
    return ledger


def forged_decisions(source: SqliteLedger, tmp_path: Path) -> SqliteLedger:
    """chaos-1 copied as forged-1, with an unsigned approval in carol's name and alice's signed rejection re-filed as
    an approval (message type approval.granted) appended on the rejected pricing change."""
    ledger = copy_run(list(source.iter_entries(run_id="chaos-1")), tmp_path / "forged.db", "forged-1")
    (rejection,) = [e for e in ledger.iter_entries(run_id="forged-1") if e.kind == "rejection"]
    append_forged_decisions(ledger, rejection)
    return ledger


class TestReadModel:
    """run_report reads everything from the ledger."""

    def test_series_has_one_point_per_day(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """Nine simulated days, nine snapshots, each with the band and prices."""
        report = chaos[1]
        assert [p.day for p in report.series] == list(range(9))
        assert report.series[-1].data["pricing_policy"]["ceiling"] == 250
        assert "TX" in report.series[-1].data["prices"]

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

    def test_series_carries_revenue_costs_and_margin(self, launch: tuple[SqliteLedger, RunReport]) -> None:
        """Cumulative revenue never falls, starts at 0 and ends at the run's KPI; margin is the KPI formula."""
        report = launch[1]
        revenue = [p.data.get("revenue_usd") for p in report.series]
        assert None not in revenue
        assert revenue[0] == 0
        assert revenue == sorted(revenue)  # type: ignore[type-var]
        last = report.series[-1].data
        assert last["revenue_usd"] == report.kpis["revenue_usd"]
        assert last["costs_usd"] == report.kpis["costs_usd"]
        assert last["margin_pct"] == report.kpis["margin_pct"]
        for p in (point.data for point in report.series[1:]):
            assert p["revenue_usd"]
            assert p["costs_usd"] is not None
            assert p["margin_pct"] is not None
            revenue, costs = Decimal(str(p["revenue_usd"])), Decimal(str(p["costs_usd"]))
            assert p["margin_pct"] == float(((revenue - costs) / revenue * 100).quantize(Decimal("0.1")))

    def test_budget_use_per_agent_and_period(self, launch: tuple[SqliteLedger, RunReport]) -> None:
        """Spend lands in the month governance charged it; research's approved overrun raises its April budget."""
        report = launch[1]
        assert report.budget_period == "month"
        use = {(b.period, b.agent): b for b in report.budgets}
        assert sorted({b.period for b in report.budgets}) == ["2025-03", "2025-04", "2025-05"]
        assert {b.agent for b in report.budgets} == {"finance", "legal", "marketing", "ops", "research"}
        assert use["2025-03", "finance"].spent_usd == 292500
        assert use["2025-03", "marketing"].spent_usd == 40000
        research = use["2025-04", "research"]
        assert (research.limit_usd, research.increase_usd, research.budget_usd) == (20000, 15000, 35000)
        assert research.spent_usd == 35000
        assert use["2025-03", "research"].spent_usd == use["2025-05", "research"].spent_usd == 0
        assert use["2025-05", "research"].budget_usd == 20000  # the increase was for April only
        assert all(b.reserved_usd == 0 for b in report.budgets)  # every authorization was executed

    def test_budget_spend_matches_the_applied_charged_actions(self, launch: tuple[SqliteLedger, RunReport]) -> None:
        """Per agent, reported spend is the sum of the charged argument of every applied authorized action."""
        ledger, report = launch
        entries = list(ledger.iter_entries(run_id="launch-1"))
        applied = {e.subject for e in entries if e.kind == "execution" and e.outcome == "applied"}
        expected: dict[str, float] = {}
        charged = charged_args()
        for e in entries:
            action = e.payload.get("action")
            if e.kind == "authorization" and action in charged and e.subject in applied:
                agent = e.payload["agent"]
                expected[agent] = expected.get(agent, 0) + float(e.payload["args"][charged[action]])
        reported: dict[str, float] = {}
        for b in report.budgets:
            if b.spent_usd:
                reported[b.agent] = reported.get(b.agent, 0) + b.spent_usd
        assert reported == expected
        assert set(expected) == {"finance", "marketing", "research"}

    def test_authorized_not_executed_is_reserved(self, launch: tuple[SqliteLedger, RunReport], tmp_path: Path) -> None:
        """A run cut between research's authorization and its execution shows the amount reserved, not spent."""
        entries = list(launch[0].iter_entries(run_id="launch-1"))
        execution = next(
            e for e in entries if e.kind == "execution" and e.payload.get("action") == "commission_research"
        )
        cut = copy_run(entries, tmp_path / "cut.db", "cut-1", before_seq=execution.seq)
        use = {(b.period, b.agent): b for b in run_report(cut, "cut-1").budgets}
        cut.close()
        assert (use["2025-04", "research"].spent_usd, use["2025-04", "research"].reserved_usd) == (0, 35000)
        assert use["2025-03", "finance"].spent_usd == 292500

    def test_without_a_recorded_policy_the_snapshot_limits_count(
        self, launch: tuple[SqliteLedger, RunReport], tmp_path: Path
    ) -> None:
        """A run.started without policy_document: limits come from the snapshots, spend still from the ledger."""
        entries = list(launch[0].iter_entries(run_id="launch-1"))
        ledger = copy_run(entries, tmp_path / "nopolicy.db", "np-1", drop_policy=True)
        report = run_report(ledger, "np-1")
        ledger.close()
        use = {(b.period, b.agent): b for b in report.budgets}
        assert report.budget_period is None
        assert use["2025-03", "marketing"].budget_usd == 60000
        assert use["2025-03", "marketing"].spent_usd == 40000
        assert use["2025-04", "research"].budget_usd == 35000  # the increase is in the ledger, not the policy

    def test_who_decided_names_only_decisions_that_verify(
        self, chaos: tuple[SqliteLedger, RunReport], tmp_path: Path
    ) -> None:
        """An approval appended past the approvals service (unsigned) and a signed rejection re-filed as an approval
        decide nothing (governance never took them; `ledger verify` names them), but the report listed both among
        who decided the escalation, the forger's words among its reasons."""
        ledger = forged_decisions(chaos[0], tmp_path)
        report = run_report(ledger, "forged-1")
        summary = escalations(list(ledger.iter_entries(run_id="forged-1")))  # what `coalition run` prints at its end
        ledger.close()
        rejected = next(e for e in report.escalations if e.action == "change_pricing_policy")
        assert (rejected.outcome, rejected.decided_by) == ("rejected", ["alice (risk_officer)"])
        assert "forged" not in rejected.reasons
        printed = next(row for row in summary if row["action"] == "change_pricing_policy")
        assert printed["decided_by"] == ["alice"]

    def test_who_decided_otherwise_than_the_board_names_only_decisions_that_verify(
        self, chaos: tuple[SqliteLedger, RunReport], tmp_path: Path
    ) -> None:
        """The scripted-board check (`coalition run`'s 'decided otherwise: … by …', the report's scripted_board)
        read every approval and rejection entry too: the unsigned approval in carol's name was listed among who
        decided, and as it copies the board's method it hid the divergence altogether ("the board answered")."""
        ledger = forged_decisions(chaos[0], tmp_path)
        entries = list(ledger.iter_entries(run_id="forged-1"))
        ledger.close()
        alice = Ed25519PrivateKey.generate()  # as in an interactive run: alice rejected with her own key
        interactive: list[LedgerEntry] = []
        for e in entries:
            payload = e.payload
            if e.kind == "run" and e.message_type == "run.started":
                keys = {"alice": public_text(alice.public_key())}
                payload = {**payload, "settings": {**payload["settings"], "interactive": True, "approver_keys": keys}}
            elif e.kind == "rejection" and e.message_id not in ("forged-1", "forged-2"):
                p = e.payload
                said = statement(
                    proposal_id=p["proposal_id"], proposal_hash=p["proposal_hash"], approver="alice",
                    decision="reject", reason=p["reason"], decided_at=e.sim_time, run_id="forged-1",
                )  # fmt: skip
                signed = {"method": "cli", "scripted": False, "signed_run": "forged-1", "signature": sign(alice, said)}
                payload = {**p, **signed, "signer_key": public_text(alice.public_key())}
            interactive.append(e.model_copy(update={"payload": payload}))
        scenario = load_scenario("chaos-week")  # whose board would have approved the pricing change
        board = scenario.board.model_copy(
            update={
                "decisions": [
                    d.model_copy(update={"decision": "approve"}) if d.match.gate == "pricing_policy_change" else d
                    for d in scenario.board.decisions
                ]
            }
        )
        found = divergences(interactive, scenario.model_copy(update={"board": board}))
        assert [(d.action, d.scripted, d.decided, d.deciders) for d in found] == [
            ("change_pricing_policy", "approved", "rejected", ("alice",))
        ]

    def test_unknown_run(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """A run that is not there is a ReportError naming it."""
        with pytest.raises(ReportError, match="no run 'x'"):
            run_report(chaos[0], "x")


class TestRenderings:
    """html / md / json / csv, and the figures the web console embeds."""

    def test_figures_have_data(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """Six figures, each with at least one trace; denials are marked on the money chart."""
        figs = figures(chaos[1])
        assert list(figs) == ["money", "revenue", "prices", "timeline", "outcomes", "budgets"]
        assert all(len(f.data) > 0 for f in figs.values())
        assert any(str(t.name).startswith("deny") for t in figs["money"].data)

    def test_revenue_figure(self, launch: tuple[SqliteLedger, RunReport]) -> None:
        """Revenue and costs per day on the USD axis, margin on its own axis with no point before any revenue."""
        report = launch[1]
        traces = {str(t.name): t for t in figures(report)["revenue"].data}
        assert list(traces["revenue (cumulative)"].y) == [p.data["revenue_usd"] for p in report.series]
        assert list(traces["costs (cumulative)"].y) == [p.data["costs_usd"] for p in report.series]
        margin = traces["margin (%)"]
        assert margin.yaxis == "y2"
        assert margin.y[0] is None  # day 0: no revenue yet, so no margin
        assert margin.y[-1] == report.kpis["margin_pct"]

    def test_budget_figure_shows_share_spent(self, launch: tuple[SqliteLedger, RunReport]) -> None:
        """One bar trace per month, % of budget spent per agent: research spent all of its raised April budget."""
        fig = figures(launch[1])["budgets"]
        bars = {str(t.name): dict(zip(t.x, t.y, strict=True)) for t in fig.data}
        assert list(bars) == ["2025-03", "2025-04", "2025-05"]
        assert bars["2025-03"]["finance"] == 58.5
        assert bars["2025-03"]["marketing"] == pytest.approx(66.7)
        assert bars["2025-04"]["research"] == 100
        assert bars["2025-05"] == dict.fromkeys(("finance", "legal", "marketing", "ops", "research"), 0)

    def test_md_has_budget_table_and_spend_kpi(self, launch: tuple[SqliteLedger, RunReport]) -> None:
        """Markdown lists budget use per period and agent; the KPIs add up the agents' charged spend."""
        md = render(launch[1], "md")
        assert "| 2025-04 | research | 35,000 | 15,000 | 35,000 | 0 | 100 % |" in md
        assert "| Agent spend (charged) | 367,500 USD |" in md

    def test_html_is_self_contained(self, chaos: tuple[SqliteLedger, RunReport]) -> None:
        """plotly.js is inlined and nothing is fetched from a CDN."""
        page = render(chaos[1], "html")
        assert "<script src=" not in page  # plotly's bundle mentions its CDN in strings, but nothing loads it
        assert '<script src="http' not in page
        assert "Plotly.newPlot" in page
        assert 'id="fig-prices"' in page
        assert 'id="fig-revenue"' in page

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
