"""A second pack runs through the same commands as Helios: `coalition run billing-desk-regulator-escalation` governs
the billing desk with its own default policy (CEL rules and gates: the unauthorised-transfer claim goes to a human,
the scripted approvers answer), checks its expectations, replays IDENTICAL, verifies, reports and measures pass^k.
A scenario and a policy of two different packs are refused at load, one line, exit 2, before anything runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from coalition.bus.clock import SimulatedClock
from coalition.ledger.sqlite import SqliteLedger
from coalition.web.app import create_app
from coalition.web.passwords import hash_password
from coalition.web.views import gate_risk, run_row, run_series

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
ROOT = Path(__file__).resolve().parents[2]
HELIOS_POLICY = ROOT / "packs" / "helios" / "policies" / "helios.yaml"
DESK_SCENARIO = ROOT / "packs" / "billing_desk" / "scenarios" / "regulator-escalation.yaml"
DESK_POLICY = ROOT / "packs" / "billing_desk" / "policy.yaml"
SCENARIO = "billing-desk-regulator-escalation"
RUN = "desk-1"
PASSWORD = "correct horse battery"
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS", "COALITION_LEDGER"}}
    env["COALITION_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [COALITION, *args], capture_output=True, text=True, timeout=120, env=env, check=False, cwd=data_dir
    )


def entries(ledger: Path, run: str) -> list[dict[str, Any]]:
    with sqlite3.connect(ledger) as db:
        bodies = [json.loads(body) for (body,) in db.execute("SELECT body FROM entries ORDER BY seq")]
    return [b for b in bodies if b.get("run_id") == run]


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "Run " not in done.stdout  # refused before anything ran
    return lines[0]


@pytest.fixture(scope="module")
def desk_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One governed run of the billing desk, shared by every assertion below."""
    data = tmp_path_factory.mktemp("desk")
    done = cli("run", SCENARIO, "--bus", "memory", "--ledger", "l.db", "--run-id", RUN, "--json", data_dir=data)
    assert done.returncode == 0, done.stderr
    return data, json.loads(done.stdout)


class TestTheBillingDeskRuns:
    def test_every_expectation_holds(self, desk_run: tuple[Path, dict[str, Any]]) -> None:
        _, result = desk_run
        assert result["status"] == "completed"
        assert result["expectations"], "the scenario's expectations were checked"
        assert all(e["passed"] for e in result["expectations"]), [e["detail"] for e in result["expectations"]]
        assert result["summary"]["kpis"]["escalated_cases"] == 4  # the desk's own KPIs, not Helios's

    def test_only_the_desks_agents_and_policy_take_part(self, desk_run: tuple[Path, dict[str, Any]]) -> None:
        data, _ = desk_run
        recorded = entries(data / "l.db", RUN)
        started = next(e for e in recorded if e["kind"] == "run")
        assert started["payload"]["settings"]["policy_document"]["pack"] == "billing-desk"
        actors = {e["actor"] for e in recorded if e["actor"].startswith("agent:")}
        assert actors <= {"agent:billing", "agent:retention", "agent:outreach"}
        brief = next(e for e in recorded if e["kind"] == "observation" and e["payload"]["kind"] == "policy.brief")
        assert set(brief["payload"]["data"]) == {"limits", "eligibility"}  # the desk's brief: its tables
        assert brief["payload"]["to"] == ["billing", "retention", "outreach"]

    def test_the_unauthorised_transfer_claim_goes_to_a_human(self, desk_run: tuple[Path, dict[str, Any]]) -> None:
        data, _ = desk_run
        recorded = entries(data / "l.db", RUN)
        proposals = {e["subject"]: e["payload"] for e in recorded if e["kind"] == "proposal"}
        (verdict,) = [
            e
            for e in recorded
            if e["kind"] == "verdict"
            and proposals[e["subject"]]["action"] == "escalate_case"
            and proposals[e["subject"]]["args"].get("case_id") == "C-4002"
        ]
        assert verdict["outcome"] == "escalate"
        assert verdict["gate"] == "case_escalation"
        assert verdict["payload"]["rule_ids"] == ["gate.case_escalation"]  # the policy's CEL rule
        (approval,) = [e for e in recorded if e["kind"] == "approval" and e["subject"] == verdict["subject"]]
        assert approval["actor"] == "human:ivan"
        assert [e["outcome"] for e in recorded if e["kind"] == "resolution"] == ["approved"] * 4

    def test_replay_and_verify_are_identical(self, desk_run: tuple[Path, dict[str, Any]]) -> None:
        data, _ = desk_run
        replayed = cli("replay", RUN, "--ledger", "l.db", data_dir=data)
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout.startswith("IDENTICAL"), replayed.stdout
        verified = cli("replay", RUN, "--verify", "--ledger", "l.db", data_dir=data)
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.startswith("IDENTICAL"), verified.stdout

    def test_the_report_renders_it(self, desk_run: tuple[Path, dict[str, Any]]) -> None:
        data, _ = desk_run
        done = cli("report", RUN, "--ledger", "l.db", "--format", "md", data_dir=data)
        assert done.returncode == 0, done.stderr
        assert "Scenario **billing-desk-regulator-escalation**" in done.stdout
        assert "| billing | escalate_case | case_escalation | approved | ivan (compliance_officer)" in done.stdout
        assert "| Cases escalated to a person | 4 |" in done.stdout  # the KPIs the desk declares, not the market's
        assert "| Credits granted | 0.00 USD |" in done.stdout
        assert "Settlement backlog" not in done.stdout
        assert "Revenue" not in done.stdout

    def test_the_console_charts_and_ranks_what_the_desk_declares(self, desk_run: tuple[Path, dict[str, Any]]) -> None:
        """The run page reads the desk's daily snapshot for the charts the desk declares (its accounts, not a market),
        and its gates carry the risks it declares."""
        data, _ = desk_run
        with SqliteLedger(data / "l.db", create=False) as ledger:
            series = run_series(ledger, RUN)
            (info,) = [i for i in ledger.runs() if i.run_id == RUN]
            row = run_row(ledger, info)
        assert (len(series.days), [c.chart.name for c in series.charts]) == (5, ["accounts", "mood", "fees"])
        assert row.world[:2] == [("Credits granted", "0.00 USD"), ("Fees waived", row.world[1][1])]
        assert gate_risk()["refund_approval"] == 4
        assert gate_risk()["market_entry"] == 4  # every installed pack's gates are ranked

    def test_the_console_shows_the_desks_dashboards(
        self, desk_run: tuple[Path, dict[str, Any]], tmp_path: Path
    ) -> None:
        """The dashboards and the run page show what the desk declares (cases by channel, cases with a person, its
        charts), and nothing of a market: no statements, no region, no settlement."""
        data, _ = desk_run
        ledger = tmp_path / "l.db"
        shutil.copy(data / "l.db", ledger)
        app = create_app(ledger, tmp_path / "users.db", clock=SimulatedClock(T0))
        app.state.console.users.add("vera", ["viewer"], hash_password(PASSWORD), now=T0)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            form = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            login = {"name": "vera", "password": PASSWORD, "csrf_token": token.group(1), "next": "/"}
            assert client.post("/login", data=login).status_code == 200
            pages = {b: client.get(f"/dashboards/{b}/{RUN}") for b in ("overview", "trust", "ops")}
            run_page = client.get(f"/runs/{RUN}").text
        assert {b: r.status_code for b, r in pages.items()} == dict.fromkeys(pages, 200)
        assert "declares no three-statement model" in pages["overview"].text
        assert "Cases by channel" in pages["trust"].text
        assert "Cases with a person" in pages["ops"].text
        for page in (*(r.text for r in pages.values()), run_page):
            assert "settlement" not in page.lower()
            assert "by region" not in page
        assert 'id="fig-accounts"' in run_page
        assert run_page.count('<svg viewBox="0 0 640 200" class="chart"') == 3  # the no-JS fallback of each chart

    def test_whatif_compares_the_desks_own_kpis(self, desk_run: tuple[Path, dict[str, Any]]) -> None:
        """Under a policy whose case-escalation gate only billing managers answer, the recorded approvals of the CX
        lead and the compliance officer no longer decide: no case reaches a human's desk."""
        data, _ = desk_run
        assert DESK_POLICY.is_file()
        doc = yaml.safe_load(DESK_POLICY.read_text(encoding="utf-8"))
        doc["gates"]["case_escalation"]["approver_roles"] = ["billing_manager"]
        (data / "managers.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        done = cli("whatif", RUN, "--ledger", "l.db", "--policy", "managers.yaml", "--json", data_dir=data)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["kpis_before"]["escalated_cases"] == 4
        assert result["kpis_after"]["escalated_cases"] == 0
        assert "revenue_usd" not in result["kpis_before"]
        refused = one_line(cli("whatif", RUN, "--ledger", "l.db", "--policy", str(HELIOS_POLICY), data_dir=data))
        assert "governs pack helios, not this scenario's pack billing-desk" in refused


class TestThePackLibrary:
    def test_scenario_list_names_each_scenarios_pack(self, tmp_path: Path) -> None:
        done = cli("scenario", "list", data_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        rows = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines() if line.strip()}
        assert rows[SCENARIO] == "billing-desk"
        assert rows["price-spike"] == "helios"
        assert sum(1 for pack in rows.values() if pack == "billing-desk") >= 4

    def test_consistency_across_channels_and_days(self, tmp_path: Path) -> None:
        done = cli("consistency", "billing-desk-disputes-across-channels", "--runs", "3", "--json", data_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["pass_k"] == 1.0
        assert result["cases"] == 8  # the eight cases, not the daily account snapshots


class TestPacksDoNotMix:
    """Attacks from the side: a scenario, a policy and a rule of two different packs never run together."""

    def test_a_desk_scenario_under_the_helios_policy_is_refused(self, tmp_path: Path) -> None:
        line = one_line(cli("run", SCENARIO, "--policy", str(HELIOS_POLICY), "--bus", "memory", data_dir=tmp_path))
        assert "governs pack helios, not this scenario's pack billing-desk" in line

    def test_a_helios_scenario_claiming_the_desk_is_refused(self, tmp_path: Path) -> None:
        doc = yaml.safe_load((ROOT / "packs" / "helios" / "scenarios" / "price-spike.yaml").read_text(encoding="utf-8"))
        doc["pack"] = "billing-desk"
        (tmp_path / "spike.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        line = one_line(cli("run", "spike.yaml", "--bus", "memory", data_dir=tmp_path))
        assert line.startswith("error: spike.yaml: world.accounts: is required"), line

    def test_an_unknown_pack_names_the_installed_ones(self, tmp_path: Path) -> None:
        doc = yaml.safe_load(DESK_SCENARIO.read_text(encoding="utf-8"))
        doc["pack"] = "billing_desk"
        (tmp_path / "typo.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        line = one_line(cli("run", "typo.yaml", "--bus", "memory", data_dir=tmp_path))
        assert "pack: 'billing_desk' is not installed (installed packs: billing-desk, helios)" in line
