"""Policy rollout through the CLI as an operator uses it: `coalition run --shadow-policy FILE` records what a second
policy would have decided beside every real verdict, never changes the run, replays IDENTICAL, and `coalition
report` shows where the two differ; a bad shadow policy is one line and exit 2 before anything runs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
POLICY = Path(__file__).resolve().parents[2] / "packs" / "helios" / "policies" / "helios.yaml"
SCENARIO = "price-spike"  # short; finance proposes prices every day, one at the surge cap


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS", "COALITION_LEDGER"}}
    env["COALITION_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [COALITION, *args], capture_output=True, text=True, timeout=300, env=env, check=False, cwd=data_dir
    )


def verdicts(ledger: Path, run: str) -> list[dict[str, Any]]:
    with sqlite3.connect(ledger) as db:
        bodies = [json.loads(body) for (body,) in db.execute("SELECT body FROM entries ORDER BY seq")]
    return [b["payload"] for b in bodies if b.get("kind") == "verdict" and b.get("run_id") == run]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same scenario run plainly and with a shadow policy whose surge cap is 10 % instead of 25 %."""
    data = tmp_path_factory.mktemp("shadow")
    doc = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    doc["limits"]["pricing"]["surge_cap_pct"] = 10
    shadow = data / "tight-surge.yaml"
    shadow.write_text(yaml.safe_dump(doc), encoding="utf-8")
    for run, extra in (("plain", []), ("shadowed", ["--shadow-policy", str(shadow)])):
        done = cli("run", SCENARIO, "--bus", "memory", "--ledger", "l.db", "--run-id", run, *extra, data_dir=data)
        assert done.returncode == 0, done.stderr
    return data, data / "l.db"


class TestShadowPolicy:
    def test_the_shadow_never_changes_the_run(self, runs: tuple[Path, Path]) -> None:
        _, ledger = runs
        plain, shadowed = verdicts(ledger, "plain"), verdicts(ledger, "shadowed")
        decided = ("action", "outcome", "reasons", "rule_ids", "gate", "approver_roles", "policy_version")
        assert [[p[k] for k in decided] for p in shadowed] == [[p[k] for k in decided] for p in plain]
        assert all("shadow" not in p for p in plain)  # no shadow: the payload is as before (recorded ledgers)
        assert all(p["shadow"]["policy_version"] != p["policy_version"] for p in shadowed)

    def test_the_would_be_verdict_is_recorded_beside_the_real_one(self, runs: tuple[Path, Path]) -> None:
        _, ledger = runs
        differ = [p for p in verdicts(ledger, "shadowed") if p["shadow"]["outcome"] != p["outcome"]]
        assert differ, "the tighter surge cap should deny a price the real policy allowed"
        assert differ[0]["outcome"] == "allow"
        assert differ[0]["shadow"]["rule_ids"] == ["limit.price.surge_cap"]
        assert "× 1.1 =" in differ[0]["shadow"]["reasons"][0]

    def test_report_shows_where_they_differ(self, runs: tuple[Path, Path]) -> None:
        data, _ = runs
        done = cli("report", "shadowed", "--ledger", "l.db", "--format", "json", data_dir=data)
        assert done.returncode == 0, done.stderr
        shadow = json.loads(done.stdout)["shadow"]
        assert shadow["by_rule"] == {"limit.price.surge_cap": len(shadow["rows"])}
        assert shadow["by_action"] == {"set_price": len(shadow["rows"])}
        assert shadow["rows"][0]["shadow_outcome"] == "deny"
        md = cli("report", "shadowed", "--ledger", "l.db", "--format", "md", data_dir=data).stdout
        assert "## Shadow policy" in md
        assert "would have decided 1 otherwise" in md or "otherwise." in md
        plain = json.loads(cli("report", "plain", "--ledger", "l.db", "--format", "json", data_dir=data).stdout)
        assert plain["shadow"] is None

    def test_replay_of_a_shadowed_run_is_identical(self, runs: tuple[Path, Path]) -> None:
        data, _ = runs
        done = cli("replay", "shadowed", "--ledger", "l.db", data_dir=data)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "IDENTICAL" in done.stdout

    def test_verify_of_a_shadowed_run_is_identical(self, runs: tuple[Path, Path]) -> None:
        """replay --verify re-derives the shadow verdicts too (it once left them out: a false divergence)."""
        data, _ = runs
        done = cli("replay", "shadowed", "--ledger", "l.db", "--verify", data_dir=data)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "IDENTICAL" in done.stdout
        assert "DIVERGENT" not in done.stdout


class TestBadShadowPolicy:
    @pytest.mark.parametrize(
        ("text", "words"),
        [
            ("x: [\n", "invalid YAML"),
            ("name: x\n", "required key is missing"),
            (None, "rules[0].when"),
        ],
    )
    def test_one_line_exit_2_and_nothing_recorded(self, tmp_path: Path, text: str | None, words: str) -> None:
        path = tmp_path / "bad.yaml"
        if text is None:
            doc = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
            doc["rules"][0]["when"] = "args.price <"
            text = yaml.safe_dump(doc)
        path.write_text(text, encoding="utf-8")
        done = cli(
            "run", SCENARIO, "--bus", "memory", "--ledger", "l.db", "--shadow-policy", str(path), data_dir=tmp_path
        )
        assert done.returncode == 2
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("error: --shadow-policy: ")
        assert words in lines[0]
        assert "Traceback" not in done.stderr + done.stdout
        assert not (tmp_path / "l.db").exists() or not verdicts(tmp_path / "l.db", "x")

    def test_missing_file(self, tmp_path: Path) -> None:
        done = cli("run", SCENARIO, "--bus", "memory", "--shadow-policy", "nope.yaml", data_dir=tmp_path)
        assert done.returncode == 2
        assert "nope.yaml" in done.stderr
        assert "Traceback" not in done.stderr

    def test_not_with_resume(self, tmp_path: Path) -> None:
        done = cli("run", "--resume", "--run-id", "r", "--shadow-policy", str(POLICY), data_dir=tmp_path)
        assert done.returncode == 2
        assert "--resume" in done.stderr
