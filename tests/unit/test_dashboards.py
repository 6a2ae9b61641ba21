"""The dashboards read model: the three statements agree with each other and with the world's own KPIs, each
figure's entries are entries of the run that say what the figure claims, and a run missing what a figure needs
says so instead of inventing a number."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import orjson
import pytest

from coalition.bus.memory import MemoryBus
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.dashboard_render import render_html, render_md
from coalition.scenarios.dashboards import Dashboards, build_dashboards, reading_ease, run_dashboards
from coalition.scenarios.reports import ReportError
from coalition.scenarios.spec import load_scenario


@pytest.fixture(scope="module")
def launch() -> Iterator[tuple[SqliteLedger, Dashboards, list[LedgerEntry]]]:
    """A helios-launch run recorded after a meter-outage run in the same ledger (numbers ≠ seqs)."""
    ledger = SqliteLedger(":memory:")
    assemble_run(load_scenario("meter-outage"), bus=MemoryBus(namespace="m"), ledger=ledger, run_id="outage-1").run()
    assemble_run(load_scenario("helios-launch"), bus=MemoryBus(namespace="h"), ledger=ledger, run_id="launch-1").run()
    entries = list(ledger.iter_entries(run_id="launch-1"))
    yield ledger, run_dashboards(ledger, "launch-1"), entries
    ledger.close()


def _by_seq(entries: list[LedgerEntry]) -> dict[int, LedgerEntry]:
    return {e.seq: e for e in entries}


class TestThreeStatements:
    """P&L, balance sheet and cash flow from the daily snapshots, and the identity that ties them."""

    def test_one_row_per_simulated_day(self, launch: tuple[SqliteLedger, Dashboards, list[LedgerEntry]]) -> None:
        _, d, _ = launch
        assert [s.day for s in d.statements] == list(range(90))

    def test_equity_moves_by_net_income_plus_what_moved_outside_the_pnl(
        self, launch: tuple[SqliteLedger, Dashboards, list[LedgerEntry]]
    ) -> None:
        """Δequity = net income + outside-P&L cash, every day, to the cent; the only outside movement in
        helios-launch is the approved 750k capital commitment, on the day it executed."""
        _, d, entries = launch
        for before, after in zip(d.statements, d.statements[1:], strict=False):
            change = Decimal(str(after.equity_usd)) - Decimal(str(before.equity_usd))
            assert change == Decimal(str(after.net_income_usd)) + Decimal(str(after.other_cash_usd)), after.day
        outside = [(s.day, s.other_cash_usd) for s in d.statements if s.other_cash_usd]
        assert outside == [(41, -750000.0)]
        committed = [e for e in entries if e.kind == "execution" and e.payload.get("action") == "commit_capital"]
        assert len(committed) == 1

    def test_the_last_day_ends_where_the_run_summary_does(
        self, launch: tuple[SqliteLedger, Dashboards, list[LedgerEntry]]
    ) -> None:
        """Cumulative net income = revenue − costs of the run's final KPIs; cash and reserves the same."""
        _, d, entries = launch
        kpis = next(e for e in entries if e.kind == "run" and e.outcome == "completed").payload["summary"]["kpis"]
        last = d.statements[-1]
        expected = Decimal(str(kpis["revenue_usd"])) - Decimal(str(kpis["costs_usd"]))
        assert Decimal(str(last.cumulative_net_income_usd)) == expected
        assert (last.assets_parts["cash"], last.assets_parts["reserves"], last.liabilities_usd) == (
            kpis["cash_usd"],
            kpis["reserves_usd"],
            kpis["backlog_usd"],
        )

    def test_weeks_sum_the_days(self, launch: tuple[SqliteLedger, Dashboards, list[LedgerEntry]]) -> None:
        _, d, _ = launch
        weeks = d.weeks()
        assert sum(len(w["seqs"]) for w in weeks) == 90
        total = sum(Decimal(str(w["net"])) for w in weeks)
        assert total == Decimal(str(d.statements[-1].cumulative_net_income_usd))


class TestFiguresAndTheirEntries:
    """Every figure's entries are entries of the run, of the kind its definition names."""

    def test_every_listed_entry_belongs_to_the_run(
        self, launch: tuple[SqliteLedger, Dashboards, list[LedgerEntry]]
    ) -> None:
        _, d, entries = launch
        mine = _by_seq(entries)
        groups = [g for b in d.breakdowns for g in b.groups]
        figures = [*d.kpis, *d.trust, *d.ops, *(f for g in groups for f in g.figures.values())]
        assert all(set(f.seqs) <= set(mine) for f in figures)
        assert {d.numbers[s] for s in mine} == set(range(1, len(entries) + 1))
        assert min(mine) > 1  # the trap: this run's numbers are not its seqs
        assert d.numbers[min(mine)] == 1

    def test_exception_rate_counts_denials_and_escalations(
        self, launch: tuple[SqliteLedger, Dashboards, list[LedgerEntry]]
    ) -> None:
        _, d, entries = launch
        figure = next(f for f in d.kpis if f.key == "exception_rate")
        mine = _by_seq(entries)
        assert {mine[s].outcome for s in figure.seqs} == {"deny", "escalate"}
        verdicts = sum(1 for e in entries if e.kind == "verdict" and e.outcome in ("allow", "deny", "escalate"))
        assert verdicts == len({e.subject for e in entries if e.kind == "proposal"})
        assert figure.number == round(100 * len(figure.seqs) / verdicts, 1)

    def test_audit_pass_rate_fails_a_chain_with_a_missing_execution(
        self, launch: tuple[SqliteLedger, Dashboards, list[LedgerEntry]]
    ) -> None:
        """Drop one execution from the entries: the audit pass rate falls and lists exactly that proposal."""
        _, d, entries = launch
        assert next(f for f in d.kpis if f.key == "audit_pass_rate").number == 100.0
        execution = next(e for e in entries if e.kind == "execution")
        cut = [e for e in entries if e.seq != execution.seq]
        broken = build_dashboards(cut, "launch-1")
        figure = next(f for f in broken.kpis if f.key == "audit_pass_rate")
        assert figure.number is not None
        assert figure.number < 100.0
        proposal = next(e for e in entries if e.kind == "proposal" and e.subject == execution.subject)
        assert figure.seqs == (proposal.seq,)

    def test_ops_cockpit_names_the_expired_escalation_and_the_open_incident(
        self, launch: tuple[SqliteLedger, Dashboards, list[LedgerEntry]]
    ) -> None:
        _, d, entries = launch
        mine = _by_seq(entries)
        sla = next(f for f in d.ops if f.key == "decision_sla")
        assert [mine[s].outcome for s in sla.seqs] == ["expired"]
        assert [i.status for i in d.incidents].count("open") == 1
        assert any(a.kind == "meter.outage" and a.subject == "tx-meter-firmware" for a in d.alerts)

    def test_the_outage_customers_were_all_credited(
        self, launch: tuple[SqliteLedger, Dashboards, list[LedgerEntry]]
    ) -> None:
        _, d, _ = launch
        (regions,) = d.breakdowns_on("trust")
        tx = next(g for g in regions.groups if g.name == "TX")
        assert tx.figures["outage_customers"].value == "36"
        assert tx.figures["uncredited"].value == "0"
        assert len(tx.figures["uncredited"].seqs) == 36  # the credits that prove it


class TestWhatCannotBeComputed:
    """A run without what a figure needs shows a dash and says why, never a made-up number."""

    def test_a_run_without_snapshots_or_incidents(self) -> None:
        ledger = SqliteLedger(":memory:")
        assemble_run(load_scenario("claims-pressure"), bus=MemoryBus(namespace="c"), ledger=ledger, run_id="c-1").run()
        entries = [
            e
            for e in ledger.iter_entries(run_id="c-1")
            if not (e.kind == "observation" and e.payload.get("kind") == "market.snapshot")
        ]
        d = build_dashboards(entries, "c-1")
        assert d.statements == []
        cost = next(f for f in d.kpis if f.key == "time_to_resolution")
        assert cost.value.startswith("—")
        assert cost.number is None
        ledger.close()

    def test_unknown_run(self) -> None:
        with SqliteLedger(":memory:") as ledger, pytest.raises(ReportError, match="no run 'nope'"):
            run_dashboards(ledger, "nope")


class TestReadingEase:
    """The comprehension proxy: Flesch reading ease, deterministic."""

    def test_plain_beats_dense(self) -> None:
        plain = reading_ease("We paused payouts. Your money is safe. We will pay you on Friday.")
        dense = reading_ease(
            "Notwithstanding contemporaneous infrastructural irregularities, settlement disbursement "
            "obligations remain provisionally deferred pending comprehensive reconciliation."
        )
        assert plain is not None
        assert dense is not None
        assert plain > 80 > 0 > dense

    def test_no_words(self) -> None:
        assert reading_ease("  ... 123 ") is None


class TestRendered:
    """The report sections carry every figure, its definition and run numbers (never raw seqs)."""

    def test_md_and_html(self, launch: tuple[SqliteLedger, Dashboards, list[LedgerEntry]]) -> None:
        _, d, _ = launch
        md, page = render_md(d), render_html(d)
        for f in [*d.kpis, *d.trust, *d.ops]:
            assert f.label in md
            assert f.definition.replace("|", "\\|") in md
        assert "Three-statement model" in md
        assert "Ops cockpit" in page
        assert "Trust dashboard" in page
        doc = orjson.loads(orjson.dumps(d.to_json()))
        assert {k["key"] for k in doc["kpis"]} == {
            "completion_rate",
            "exception_rate",
            "time_to_resolution",
            "cost_per_outcome",
            "audit_pass_rate",
        }
