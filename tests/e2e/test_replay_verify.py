"""`coalition replay RUN --verify` re-derives every verdict, authorization and effect from the recorded proposals,
model answers and human decisions without re-running the agents: IDENTICAL on normal, interactive and resumed runs;
DIVERGENT, in one line naming the entry, on a ledger rewritten with recomputed hashes (which a chain check alone
accepts). Run from the CLI, as an operator or an auditor given the file would."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from ledger_attacks import rewrite_chain
from test_human_history import entries_at_least, run_interactively, waiting_on

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS"}}
    env["COALITION_DATA_DIR"] = str(data_dir)
    return subprocess.run([COALITION, *args], capture_output=True, text=True, timeout=300, env=env, check=False)


def verified(data_dir: Path, ledger: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    return cli(data_dir, "replay", run_id, "--ledger", str(ledger), "--verify")


@pytest.fixture(scope="module")
def price_spike(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished price-spike run (a denied surge, executed price changes, a scripted-board rejection)."""
    home = tmp_path_factory.mktemp("spike")
    ledger = home / "ledger.db"
    done = cli(home / "data", "run", "price-spike", "--bus", "memory", "--ledger", str(ledger), "--run-id", "spike")
    assert done.returncode in (0, 1), done.stderr
    return ledger


def rewritten(original: Path, target: Path, pick: Callable[[dict[str, Any]], bool], change: Callable[..., None]) -> int:
    """A copy of the ledger at `target` whose first entry that `pick` accepts was changed, and the chain rewritten
    from it as a thorough attacker would (tests/ledger_attacks.py). Returns the changed entry's seq."""
    target.write_bytes(original.read_bytes())
    conn = sqlite3.connect(target)
    rows = conn.execute("SELECT seq, body FROM entries ORDER BY seq").fetchall()
    conn.close()
    start = next(seq for seq, body in rows if pick(orjson.loads(body)))
    rewrite_chain(target, start, change)
    return start


def _denied(fields: dict[str, Any]) -> bool:
    return fields["kind"] == "verdict" and fields["outcome"] == "deny"


def _allow_instead(fields: dict[str, Any]) -> None:
    fields["outcome"] = "allow"
    fields["payload"]["outcome"] = "allow"


def _price_applied(fields: dict[str, Any]) -> bool:
    return fields["kind"] == "execution" and fields["outcome"] == "applied" and "price" in fields["payload"]["changes"]


def _another_price(fields: dict[str, Any]) -> None:
    fields["payload"]["changes"]["price"]["new"] = 999.0


def _proposal(fields: dict[str, Any]) -> bool:
    return fields["kind"] == "proposal"


def _published_by(actor: str) -> Callable[[dict[str, Any]], None]:
    def change(fields: dict[str, Any]) -> None:
        fields["actor"] = actor

    return change


def _human_decision(fields: dict[str, Any]) -> bool:
    return fields["kind"] in ("approval", "rejection")


def _another_reason(fields: dict[str, Any]) -> None:
    fields["payload"]["reason"] = "approved after all"
    fields["rationale"] = "approved after all"


class TestVerifyIdentical:
    """What was recorded is what governance and the executor derive again from the recorded inputs."""

    def test_a_finished_run_verifies_identical_in_one_line(self, price_spike: Path, tmp_path: Path) -> None:
        done = verified(tmp_path, price_spike, "spike")
        assert done.returncode == 0, done.stdout + done.stderr
        lines = done.stdout.strip().splitlines()
        assert len(lines) == 1, done.stdout
        assert lines[0].startswith("IDENTICAL: "), done.stdout

    def test_json_says_identical(self, price_spike: Path, tmp_path: Path) -> None:
        done = cli(tmp_path, "replay", "spike", "--ledger", str(price_spike), "--verify", "--json")
        assert done.returncode == 0, done.stderr
        doc = orjson.loads(done.stdout)
        assert doc["identical"] is True
        assert doc["divergence"] is None
        assert doc["entries"] > 20

    def test_an_interactive_run_with_cli_decisions_killed_and_resumed_verifies_identical(self, tmp_path: Path) -> None:
        """CLI approvals (four-eyes included), SIGKILL twice (once with a decision made while it was down),
        resumed each time: the decisions are taken where the run took them and everything re-derives."""
        ledger = run_interactively(
            tmp_path,
            "resumed",
            [
                ("mid day 1", entries_at_least(12), False),
                ("waiting; the human decides while the run is down", waiting_on("compliance_change"), True),
            ],
        )
        done = verified(tmp_path, ledger, "resumed")
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("IDENTICAL: "), done.stdout


class TestVerifyAttacked:
    """A ledger rewritten with recomputed hashes passes a chain check, but not a re-derivation."""

    def test_negative_control_a_rewrite_that_changes_nothing(self, price_spike: Path, tmp_path: Path) -> None:
        ledger = tmp_path / "same.db"
        rewritten(price_spike, ledger, _denied, lambda fields: None)
        done = verified(tmp_path / "auditor", ledger, "spike")
        assert done.returncode == 0, done.stdout + done.stderr

    def test_a_verdict_changed_and_rehashed_is_divergent(self, price_spike: Path, tmp_path: Path) -> None:
        ledger = tmp_path / "verdict.db"
        seq = rewritten(price_spike, ledger, _denied, _allow_instead)
        auditor = tmp_path / "auditor"
        chain = cli(auditor, "ledger", "verify", "--ledger", str(ledger))
        assert chain.returncode == 0, chain.stdout + chain.stderr  # the chain, tree and index all agree
        done = verified(auditor, ledger, "spike")
        assert done.returncode == 1, done.stdout + done.stderr
        lines = done.stdout.strip().splitlines()
        assert len(lines) == 1, done.stdout
        assert lines[0].startswith(f"DIVERGENT at seq {seq} (verdict on "), lines[0]
        assert "outcome recorded 'allow', re-derived 'deny'" in lines[0], lines[0]

    def test_an_execution_whose_effect_differs_is_divergent(self, price_spike: Path, tmp_path: Path) -> None:
        ledger = tmp_path / "effect.db"
        seq = rewritten(price_spike, ledger, _price_applied, _another_price)
        done = verified(tmp_path / "auditor", ledger, "spike")
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stdout.startswith(f"DIVERGENT at seq {seq} (execution on "), done.stdout
        assert "payload.changes.price.new recorded 999.0, re-derived " in done.stdout, done.stdout

    def test_a_proposal_recorded_as_another_agents_is_refused_at_its_entry(
        self, price_spike: Path, tmp_path: Path
    ) -> None:
        """The derivation's bus is unsigned, so the producer rules a run's consumers apply are checked on every
        recorded agent output: a proposal moved to another (known) agent is what they refuse, at its own entry."""
        ledger = tmp_path / "moved.db"
        conn = sqlite3.connect(price_spike)
        bodies = [orjson.loads(body) for (body,) in conn.execute("SELECT body FROM entries ORDER BY seq")]
        conn.close()
        proposer = next(b for b in bodies if _proposal(b))["payload"]["agent"]
        other = "ops" if proposer != "ops" else "finance"
        seq = rewritten(price_spike, ledger, _proposal, _published_by(f"agent:{other}"))
        done = verified(tmp_path / "auditor", ledger, "spike")
        assert done.returncode == 1, done.stdout + done.stderr
        line = done.stdout.strip()
        assert line.startswith(f"DIVERGENT at seq {seq} (proposal on "), line
        assert f"agent:{other} may not publish action.proposed in the name of agent" in line, line

    def test_an_agent_output_from_no_producer_of_the_run_is_refused_at_its_entry(
        self, price_spike: Path, tmp_path: Path
    ) -> None:
        ledger = tmp_path / "stranger.db"
        seq = rewritten(price_spike, ledger, _proposal, _published_by("agent:mallory"))
        done = verified(tmp_path / "auditor", ledger, "spike")
        assert done.returncode == 1, done.stdout + done.stderr
        line = done.stdout.strip()
        assert line.startswith(f"DIVERGENT at seq {seq} (proposal on "), line
        assert "'agent:mallory' is no producer of this run" in line, line

    def test_an_altered_human_decision_is_the_first_divergence(self, price_spike: Path, tmp_path: Path) -> None:
        """A human decision's reason rewritten (and the chain rehashed) no longer matches what its approver signed:
        it is not taken again, and the divergence is that decision's own entry."""
        ledger = tmp_path / "decision.db"
        seq = rewritten(price_spike, ledger, _human_decision, _another_reason)
        done = verified(tmp_path / "auditor", ledger, "spike")
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stdout.startswith(f"DIVERGENT at seq {seq} ("), done.stdout

    def test_an_unknown_run_is_one_line_and_exit_2(self, price_spike: Path, tmp_path: Path) -> None:
        done = verified(tmp_path, price_spike, "nope")
        assert done.returncode == 2
        assert done.stderr.startswith("error: no run 'nope'")
        assert len(done.stderr.strip().splitlines()) == 1
