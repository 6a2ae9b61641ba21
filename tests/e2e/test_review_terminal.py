"""The terminal as an approver, a risk officer and an auditor use it, on real helios-launch runs: one numbering
across summaries and `ledger explain`, the action column, incidents by any name, expectations written for the
scripted board when people decide otherwise, and what-if amounts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from coalition.scenarios.spec import list_library

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
ENV = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"COLUMNS": "200"}


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COALITION, *args], capture_output=True, text=True, timeout=timeout, env=ENV, check=False)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Two helios-launch runs in one ledger: the second one's ledger seqs all lie above the first's entries."""
    ledger = str(tmp_path_factory.mktemp("two") / "ledger.db")
    docs = []
    for run_id in ("first", "second"):
        done = cli("run", "helios-launch", "--bus", "memory", "--ledger", ledger, "--run-id", run_id, "--json")
        assert done.returncode == 0, done.stderr
        docs.append(json.loads(done.stdout))
    return ledger, docs[0], docs[1]


class TestOneNumbering:
    """A number seen beside a run means that run's entry, in every command."""

    def test_explain_a_summary_number_shows_that_runs_entry(self, two_runs: tuple[str, Any, Any]) -> None:
        """The second run's summary names escalation #N; `ledger explain N` explains it — not the first run's
        entry whose ledger seq happens to be N."""
        ledger, first, second = two_runs
        escalation = second["escalations"][0]
        number, seq = escalation["number"], escalation["seq"]
        assert seq > first["entries"] >= number  # the trap: seq N of the ledger belongs to the first run
        shown = cli("ledger", "explain", str(number), "--ledger", ledger, "--json")
        assert shown.returncode == 0, shown.stderr
        doc = json.loads(shown.stdout)
        assert (doc["run_id"], doc["seq"], doc["number"]) == ("second", seq, number)
        assert doc["focus"]["gate"] == escalation["gate"]
        tree = cli("ledger", "explain", str(number), "--ledger", ledger)
        assert f"why #{number} of run second?" in tree.stdout
        assert f"(seq {seq})" in tree.stdout
        first_one = cli("ledger", "explain", str(number), "--run", "first", "--ledger", ledger, "--json")
        assert json.loads(first_one.stdout)["run_id"] == "first"
        assert json.loads(first_one.stdout)["seq"] == first["escalations"][0]["seq"]

    def test_the_run_summary_table_numbers_are_the_runs(self, two_runs: tuple[str, Any, Any]) -> None:
        """Printed as a table, the second run's escalations carry numbers within the run (≤ its entry count)."""
        _, first, second = two_runs
        numbers = [e["number"] for e in second["escalations"]]
        assert all(1 <= n <= second["entries"] for n in numbers)
        assert [e["seq"] - e["number"] for e in second["escalations"]] == [first["entries"]] * len(numbers)

    def test_ledger_list_has_number_seq_and_action(self, two_runs: tuple[str, Any, Any]) -> None:
        """Approvals name only the proposal in their payload; the action column still says what was approved."""
        ledger, _, _ = two_runs
        listed = cli("ledger", "list", "--kind", "approval", "--ledger", ledger)
        assert listed.returncode == 0, listed.stderr
        header = next(line for line in listed.stdout.splitlines() if "action" in line and "seq" in line)
        assert "#" in header
        rows = [line for line in listed.stdout.splitlines() if "human:" in line]
        assert rows
        assert any("enter_market" in row for row in rows)
        assert any("commit_capital" in row for row in rows)


class TestReportDashboards:
    """`coalition report` carries the executive overview, the trust dashboard and the ops cockpit."""

    def test_json_figures_name_entries_of_the_reported_run_only(self, two_runs: tuple[str, Any, Any]) -> None:
        ledger, first, _ = two_runs
        done = cli("report", "second", "--format", "json", "--ledger", ledger)
        assert done.returncode == 0, done.stderr
        boards = json.loads(done.stdout)["dashboards"]
        assert [f["key"] for f in boards["kpis"]] == [
            "completion_rate",
            "exception_rate",
            "time_to_resolution",
            "cost_per_outcome",
            "audit_pass_rate",
        ]
        seqs = [s for group in ("kpis", "trust", "ops") for f in boards[group] for s in f["entries"]]
        assert seqs
        assert min(seqs) > first["entries"]  # nothing of the first run leaks into the second's figures
        assert len(boards["statements"]) == 90
        md = cli("report", "second", "--format", "md", "--ledger", ledger).stdout
        for heading in ("## Executive overview", "### Three-statement model", "## Trust dashboard", "## Ops cockpit"):
            assert heading in md


class TestIncidents:
    """`ledger incidents` lists what ops opened; `audit --incident` takes the id or the announcing event's name."""

    def test_incidents_list_names_the_event_too(self, two_runs: tuple[str, Any, Any]) -> None:
        ledger, _, _ = two_runs
        listed = cli("ledger", "incidents", "--ledger", ledger, "--json")
        assert listed.returncode == 0, listed.stderr
        by_alias = {alias: r for r in json.loads(listed.stdout) for alias in r["aliases"]}
        outage = by_alias["tx-meter-firmware"]
        assert (outage["severity"], outage["regions"], outage["status"]) == (5, ["TX"], "resolved")
        assert outage["entries"] > 100
        table = cli("ledger", "incidents", "--ledger", ledger)
        assert "tx-meter-firmware" in table.stdout
        assert "resolved" in table.stdout

    def test_audit_by_event_name_and_by_id_hold_every_entry_of_the_incident(
        self, two_runs: tuple[str, Any, Any], tmp_path: Path
    ) -> None:
        """Both names give the same package, and it holds every proposal about the incident with its whole
        chain (verdicts, authorizations, executions) — not the 3 entries the event name used to find."""
        ledger, _, _ = two_runs
        incident = next(
            r for r in json.loads(cli("ledger", "incidents", "--ledger", ledger, "--json").stdout) if r["aliases"]
        )
        packages = []
        for name in (incident["aliases"][0], incident["incident_id"]):
            out = tmp_path / f"{len(packages)}.zip"
            done = cli("audit", "--incident", name, "--ledger", ledger, "--out", str(out))
            assert done.returncode == 0, done.stderr
            with zipfile.ZipFile(out) as zf:
                packages.append([json.loads(line) for line in zf.read("ledger.jsonl").splitlines()])
        assert [e["seq"] for e in packages[0]] == [e["seq"] for e in packages[1]]
        assert len(packages[0]) == incident["entries"]
        everything = json.loads(cli("ledger", "list", "--limit", "0", "--ledger", ledger, "--json").stdout)
        about = {
            e["subject"]
            for e in everything
            if (e["payload"].get("args") or {}).get("incident_id") == incident["incident_id"]
        }
        in_package = {e["subject"] for e in packages[0]}
        assert about <= in_package
        kinds = {e["kind"] for e in packages[0] if e["subject"] in about}
        assert {"proposal", "verdict", "authorization", "execution"} <= kinds
        assert all(e["run_id"] == "second" for e in packages[0])

    def test_a_partial_name_is_not_an_incident(self, two_runs: tuple[str, Any, Any], tmp_path: Path) -> None:
        """`--incident meter` matches no incident and no entry: one line, exit 2, no package written."""
        ledger, _, _ = two_runs
        out = tmp_path / "nothing.zip"
        done = cli("audit", "--incident", "meter", "--ledger", ledger, "--out", str(out))
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1
        assert "mentions incident 'meter'" in done.stderr
        assert not out.exists()


def _scenario_with(tmp_path: Path, extra: list[dict[str, Any]]) -> Path:
    assert "helios-launch" in list_library()
    from importlib import resources

    text = resources.files("coalition.packs.helios").joinpath("scenarios", "helios-launch.yaml").read_text()
    doc = yaml.safe_load(text)
    doc["expectations"] = [*doc["expectations"], *extra]
    path = tmp_path / "helios-plus.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class TestScriptedBoard:
    """People who decide otherwise than the scripted board change the story, not the verdict on governance."""

    def test_nobody_deciding_is_explained_and_exits_0(self, tmp_path: Path) -> None:
        """An interactive run nobody answers: every escalation expires; the expectations that need the board's
        approvals (entries, the capital commitment, credits held behind the incident gate, …) are reported as
        written for the scripted board, exit 0; the report agrees, expectation by expectation."""
        ledger = str(tmp_path / "ledger.db")
        done = cli("run", "helios-launch", "--interactive", "--approval-wait", "0", "--bus", "memory",
                   "--ledger", ledger, "--run-id", "alone")  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        found = re.search(
            r"expectations written for the scripted board: (\d+) differ because humans decided otherwise", done.stdout
        )
        assert found is not None, done.stdout[-2000:]
        differ = int(found.group(1))
        assert differ >= 5
        assert "decided otherwise: finance enter_market (gate market_entry) — the scripted board: approved" in (
            done.stdout
        )
        assert "(scripted board)" in done.stdout
        md = cli("report", "alone", "--format", "md", "--ledger", ledger)
        assert md.returncode == 0, md.stderr
        assert "| | id | description | expected | observed |" in md.stdout
        assert md.stdout.count("≠ humans decided otherwise") == differ
        assert "| count == 1 | 0 |" in md.stdout
        assert "time to decision (wall time)" in md.stdout
        assert "0.0 h" not in md.stdout
        html = tmp_path / "r.html"
        assert cli("report", "alone", "--out", str(html), "--ledger", ledger).returncode == 0
        page = html.read_text()
        assert "<th>expected</th>" in page
        assert "<th>observed</th>" in page
        assert f"expectations written for the scripted board: {differ} differ" in page

    def test_a_real_failure_still_fails_beside_them(self, tmp_path: Path) -> None:
        """Add an expectation no board can satisfy: the run exits 1 and says 1 FAILED besides the others."""
        scenario = _scenario_with(
            tmp_path,
            [
                {
                    "id": "impossible-cash",
                    "description": "Cash below zero (never true).",
                    "world": {"path": "cash_usd", "op": "<", "value": 0},
                }
            ],
        )
        ledger = str(tmp_path / "ledger.db")
        done = cli("run", str(scenario), "--interactive", "--approval-wait", "0", "--bus", "memory",
                   "--ledger", ledger, "--json")  # fmt: skip
        assert done.returncode == 1, done.stderr
        board = json.loads(done.stdout)["scripted_board"]
        assert board["failed"] == ["impossible-cash"]
        assert len(board["written_for_scripted_board"]) >= 5
        assert "impossible-cash" not in board["written_for_scripted_board"]

    def test_a_scripted_run_never_re_runs_or_excuses(self, two_runs: tuple[str, Any, Any]) -> None:
        """Decided by the board itself: no divergence, nothing excused."""
        _, first, _ = two_runs
        assert first["scripted_board"] == {
            "divergences": [],
            "written_for_scripted_board": [],
            "failed": [],
            "summary": None,
        }


class TestWhatIfAmounts:
    """A what-if whose outcomes stay the same still shows the amounts that moved."""

    def test_changed_price_is_shown_with_both_amounts(self, two_runs: tuple[str, Any, Any], tmp_path: Path) -> None:
        ledger, _, _ = two_runs
        from importlib import resources

        shipped = resources.files("coalition.packs.helios").joinpath("policies", "helios.yaml")
        policy = yaml.safe_load(shipped.read_text())
        policy["limits"]["pricing"]["surge_cap_pct"] = 60
        path = tmp_path / "wider.yaml"
        path.write_text(yaml.safe_dump(policy))
        done = cli("whatif", "--policy", str(path), "--ledger", ledger, "--json")
        assert done.returncode == 0, done.stderr
        changes = json.loads(done.stdout)["changes"]
        priced = [c for c in changes if c["action"] == "set_price" and c["changed_args"]]
        assert priced, changes
        moved = priced[0]["changed_args"]["price"]
        assert moved["recorded"] != moved["whatif"]
        assert priced[0]["what_changed"].startswith("arguments: price")
        table = cli("whatif", "--policy", str(path), "--ledger", ledger)
        assert f"price {moved['recorded']} → {moved['whatif']}" in table.stdout
        assert "in amounts or arguments" in table.stdout
