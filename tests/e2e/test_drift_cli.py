"""`coalition drift` through the CLI as a user runs it: two runs of one scenario under two policies (one that no
longer lets finance set prices), in one ledger and across two; bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
POLICY = Path(__file__).resolve().parents[2] / "packs" / "helios" / "policies" / "helios.yaml"
SCENARIO = "price-spike"  # short; finance proposes prices every day


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS", "COALITION_LEDGER"}}
    env["COALITION_DATA_DIR"] = str(data_dir)
    env["COLUMNS"] = "400"  # a table names whole ledger paths: keep each on one line whatever the path's length
    return subprocess.run([COALITION, *args], capture_output=True, text=True, timeout=300, env=env, check=False)


def run_id(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode in (0, 1), done.stderr
    return next(line.split()[1].rstrip(":") for line in done.stdout.splitlines() if line.startswith("Run "))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The shipped policy, and one under which finance may no longer set prices (each set_price is denied)."""
    data = tmp_path_factory.mktemp("drift")
    doc = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    doc["permissions"]["finance"] = [a for a in doc["permissions"]["finance"] if a != "set_price"]
    strict = data / "no-prices.yaml"
    strict.write_text(yaml.safe_dump(doc), encoding="utf-8")
    a = run_id(cli("run", SCENARIO, "--bus", "memory", data_dir=data))
    b = run_id(cli("run", SCENARIO, "--bus", "memory", "--policy", str(strict), data_dir=data))
    return data, a, b


def test_the_same_run_does_not_drift(two_runs: tuple[Path, str, str]) -> None:
    data, a, _ = two_runs
    done = cli("drift", a, a, "--format", "json", data_dir=data)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["overall"]["action_divergence"] == {"jensen_shannon": 0.0, "total_variation": 0.0}
    assert doc["pairing"]["decided_otherwise"] == []


def test_a_revoked_permission_shows_as_denials_and_drift(two_runs: tuple[Path, str, str]) -> None:
    data, a, b = two_runs
    doc = json.loads(cli("drift", a, b, "--format", "json", data_dir=data).stdout)
    assert "scenarios" not in doc  # one scenario under two policies: no warning
    rows = {(r["agent"], r["action"]): r for r in doc["actions"]}
    prices = rows[("finance", "set_price")]
    assert prices["b"]["rates"]["deny"] == 1.0
    assert prices["a"]["rates"]["deny"] < 1.0
    assert prices["rate_delta"]["deny"] > 0
    assert doc["overall"]["decision_divergence"]["jensen_shannon"] > 0
    assert any(d["action"] == "set_price" and d["b"] == "deny" for d in doc["pairing"]["decided_otherwise"])
    finance = next(x for x in doc["agents"] if x["agent"] == "finance")
    assert finance["outcome_divergence"]["jensen_shannon"] > 0


def test_table_and_markdown_name_the_runs_and_the_rates(two_runs: tuple[Path, str, str]) -> None:
    data, a, b = two_runs
    table = cli("drift", a, b, data_dir=data)
    assert table.returncode == 0, table.stderr
    assert f"drift {a} → {b}" in " ".join(table.stdout.split())
    assert "set_price" in table.stdout
    md = cli("drift", a, b, "--format", "md", data_dir=data).stdout
    assert md.startswith(f"## Drift against {b}")
    assert "| finance | set_price |" in md


def test_runs_in_two_ledgers(two_runs: tuple[Path, str, str], tmp_path: Path) -> None:
    """Run B recorded by another deployment (another data directory) is read with --ledger-b; when it has run A's
    id, the summary names each run's ledger (else it read "drift X → X")."""
    data, a, _ = two_runs
    other = tmp_path / "other"
    c = run_id(cli("run", SCENARIO, "--bus", "memory", "--run-id", a, data_dir=other))
    assert c == a
    done = cli("drift", a, c, "--ledger-b", str(other / "ledger.db"), "--format", "json", data_dir=data)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["overall"]["decision_divergence"]["jensen_shannon"] == 0.0
    assert doc["ledgers"] == {"a": f"sqlite at {data / 'ledger.db'}", "b": f"sqlite at {other / 'ledger.db'}"}
    assert "scenarios" not in doc  # the same scenario: nothing to warn about
    table = " ".join(cli("drift", a, c, "--ledger-b", str(other / "ledger.db"), data_dir=data).stdout.split())
    assert f"drift {a} (sqlite at {data / 'ledger.db'}) → {a} (sqlite at {other / 'ledger.db'})" in table
    md = cli("drift", a, c, "--ledger-b", str(other / "ledger.db"), "--format", "md", data_dir=data).stdout
    assert f"A = `{a} (sqlite at {data / 'ledger.db'})`" in md


def test_runs_of_different_scenarios_are_flagged(two_runs: tuple[Path, str, str]) -> None:
    """A helios run against a chaos-week run: every output says the mixes are different businesses' days."""
    data, a, _ = two_runs
    chaos = run_id(cli("run", "chaos-week", "--bus", "memory", data_dir=data))
    warning = f"A is {SCENARIO}, B is chaos-week: the mixes compare different businesses' days"
    table = cli("drift", a, chaos, data_dir=data)
    assert table.returncode == 0, table.stderr
    assert f"warning: {warning}" in " ".join(table.stdout.split())
    md = cli("drift", a, chaos, "--format", "md", data_dir=data).stdout
    assert f"**warning: {warning}**" in md
    doc = json.loads(cli("drift", a, chaos, "--format", "json", data_dir=data).stdout)
    assert doc["scenarios"] == {"a": SCENARIO, "b": "chaos-week", "warning": f"warning: {warning}"}
    assert "ledgers" not in doc  # one ledger, two ids: no label needed
    page = data / "chaos-drift.html"
    done = cli("report", a, "--out", str(page), "--drift-against", chaos, data_dir=data)
    assert done.returncode == 0, done.stderr
    assert f"<p><strong>warning: {warning}</strong></p>" in page.read_text(encoding="utf-8").replace("&#x27;", "'")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("no-such-run", "{a}"), "no run 'no-such-run'"),
        (("{a}", "../../etc/passwd"), "is not a valid run id"),
        (("{a}", "{a}", "--format", "pdf"), "--format 'pdf' is not one of table, md, json"),
        (("{a}", "{a}", "--ledger-b", "missing.db"), "no ledger at missing.db"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(two_runs: tuple[Path, str, str], args: tuple[str, ...], says: str) -> None:
    data, a, _ = two_runs
    done = cli("drift", *(x.format(a=a) for x in args), data_dir=data)
    assert done.returncode == 2
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_the_run_report_shows_the_drift(two_runs: tuple[Path, str, str]) -> None:
    """`coalition report A --drift-against B` holds the same comparison in html, md and json; csv refuses it."""
    data, a, b = two_runs
    md = cli("report", a, "--format", "md", "--drift-against", b, data_dir=data)
    assert md.returncode == 0, md.stderr
    assert f"## Drift against {b}" in md.stdout
    assert "| finance | set_price |" in md.stdout
    doc = json.loads(cli("report", a, "--format", "json", "--drift-against", b, data_dir=data).stdout)
    assert doc["drift"]["run_b"] == b
    assert doc["drift"]["overall"]["decision_divergence"]["jensen_shannon"] > 0
    page = data / "report.html"
    html = cli("report", a, "--out", str(page), "--drift-against", b, data_dir=data)
    assert html.returncode == 0, html.stderr
    assert '<section id="drift">' in page.read_text(encoding="utf-8")
    csv = cli("report", a, "--format", "csv", "--drift-against", b, data_dir=data)
    assert csv.returncode == 2
    assert "--drift-against works with --format html, md or json" in csv.stderr
