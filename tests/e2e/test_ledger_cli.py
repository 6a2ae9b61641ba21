"""`coalition ledger …` end to end: CliRunner over a real ledger file, and one real subprocess."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from decision_forgeries import append_forged_decisions
from typer.testing import CliRunner

from coalition.bus.envelope import Envelope
from coalition.bus.message import Message
from coalition.bus.messages import ActionProposed, Observation, RunFinished, RunStarted, VerdictIssued
from coalition.cli import app
from coalition.cli.ledger_cmd import ledger_app
from coalition.ledger import SqliteLedger, run_digest
from coalition.ledger.mapping import draft_from_envelope

pytestmark = pytest.mark.e2e

T0 = datetime(2025, 3, 1, tzinfo=UTC)
runner = CliRunner()


def envelope(message: Message, name: str, run_id: str, cause: str | None = None) -> Envelope:
    return Envelope.wrap(message, id=name, source="x", run_id=run_id, superstep=1, sim_time=T0, causation_id=cause)


def record_run(
    ledger: SqliteLedger,
    run_id: str,
    scenario: str,
    *,
    rationale: str = "Texas demand, legal path clear",
    outcome: str = "escalate",
    reason: str = "market entry needs the board",
) -> None:
    started = RunStarted(scenario=scenario, scenario_hash="sh", seed=7, policy_version="pv1", start=T0, days=1)
    obs = Observation(kind="supply.shock", subject="TX", evidence_id=f"{run_id}-ev")
    prop = ActionProposed(
        proposal_id=f"{run_id}-p1",
        agent="finance",
        action="enter_market",
        args={"region": "TX"},
        rationale=rationale,
        evidence=[f"{run_id}-ev"],
    )
    verdict = VerdictIssued(
        proposal_id=f"{run_id}-p1",
        proposal_hash="h",
        agent="finance",
        action="enter_market",
        outcome=outcome,
        reasons=[reason],
        rule_ids=["gate.market_entry"],
        gate="market_entry",
        policy_version="pv1",
    )
    envelopes = [
        envelope(started, f"{run_id}-1", run_id),
        envelope(obs, f"{run_id}-2", run_id),
        envelope(prop, f"{run_id}-3", run_id, f"{run_id}-2"),
        envelope(verdict, f"{run_id}-4", run_id, f"{run_id}-3"),
        envelope(RunFinished(status="completed"), f"{run_id}-5", run_id),
    ]
    drafts = [draft_from_envelope(e) for e in envelopes]
    ledger.append([d for d in drafts if d is not None])


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    """A ledger holding two runs of five entries each: run-old (seq 1-5) and run-new (seq 6-10)."""
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        record_run(ledger, "run-old", "helios-launch")
        record_run(ledger, "run-new", "settlement-incident")
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["ledger", *args])
    return result.exit_code, result.stdout, result.stderr


class TestList:
    """list filters a run's entries and prints a table, JSON, JSON lines or CSV."""

    def test_table_defaults_to_the_most_recent_run(self, ledger_file: Path) -> None:
        """Without --run the newest run is listed, as a table."""
        code, out, _ = invoke("list", "--ledger", str(ledger_file))
        assert code == 0
        assert "run run-new: 5 entries" in out
        assert "run-old" not in out

    def test_json_with_filters(self, ledger_file: Path) -> None:
        """--json prints full entries; --agent/--kind/--outcome/--gate narrow them."""
        code, out, _ = invoke(
            "list",
            "--ledger",
            str(ledger_file),
            "--run",
            "run-old",
            "--agent",
            "finance",
            "--kind",
            "verdict",
            "--outcome",
            "escalate",
            "--gate",
            "market_entry",
            "--json",
        )
        assert code == 0
        entries = orjson.loads(out)
        assert [(e["seq"], e["kind"], e["gate"]) for e in entries] == [(4, "verdict", "market_entry")]
        assert entries[0]["hash"]

    def test_search_limit_and_json_lines(self, ledger_file: Path) -> None:
        """--search finds words of the rationale; --nl prints one JSON entry per line; --limit keeps the newest."""
        code, out, _ = invoke("list", "--ledger", str(ledger_file), "--search", "texas demand", "--nl")
        assert code == 0
        assert [orjson.loads(line)["seq"] for line in out.splitlines()] == [8]
        code, out, _ = invoke("list", "--ledger", str(ledger_file), "--limit", "2", "--nl")
        assert [orjson.loads(line)["seq"] for line in out.splitlines()] == [9, 10]

    def test_csv(self, ledger_file: Path) -> None:
        """--csv prints a header and one row per entry, rule ids joined with ';'."""
        code, out, _ = invoke("list", "--ledger", str(ledger_file), "--run", "run-old", "--csv")
        assert code == 0
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["seq"] for r in rows] == ["1", "2", "3", "4", "5"]
        assert rows[3]["rule_ids"] == "gate.market_entry"
        assert rows[3]["rationale"] == "market entry needs the board"

    FORMULAS = ("=1+1", " =1+1", '\t=HYPERLINK("http://x")', "+cmd", "-2+3", "@SUM(A1)", "\uff1d1+1")

    def test_csv_quotes_cells_a_spreadsheet_would_run(self, tmp_path: Path) -> None:
        """--csv writes a rationale that a spreadsheet would run as a formula with a leading quote, as the
        console's export does (stdout redirected to a .csv file is the same injection)."""
        path = tmp_path / "ledger.db"
        with SqliteLedger(path) as ledger:
            for n, text in enumerate(self.FORMULAS):
                record_run(ledger, f"f{n}", "helios-launch", rationale=text, reason=text)
        for n, text in enumerate(self.FORMULAS):
            code, out, _ = invoke("list", "--ledger", str(path), "--run", f"f{n}", "--csv")
            assert code == 0
            rows = list(csv.DictReader(io.StringIO(out)))
            assert [rows[2]["rationale"], rows[3]["rationale"]] == ["'" + text] * 2, text


HOSTILE = "Texas \x1b]0;owned\x07\x1b[2J\x00\rAPPROVED \u202egnp.exe\u2066\x9b31m"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


class TestStoredTextOnATerminal:
    """Stored text (a rationale holding escape sequences, NUL, a carriage return, bidi overrides) printed to stdout
    as CSV or as a report is shown with visible escapes, never acted on by the terminal; JSON keeps the exact text."""

    @pytest.fixture
    def hostile_ledger(self, tmp_path: Path) -> Path:
        path = tmp_path / "ledger.db"
        with SqliteLedger(path) as ledger:
            record_run(ledger, "evil", "helios-launch", rationale=HOSTILE, outcome="deny", reason=HOSTILE)  # blocked
        return path

    def test_csv_shows_controls_as_visible_escapes(self, hostile_ledger: Path) -> None:
        code, out, _ = invoke("list", "--ledger", str(hostile_ledger), "--run", "evil", "--csv")
        assert code == 0
        assert not UNSAFE.findall(out), sorted(set(UNSAFE.findall(out)))
        rows = list(csv.DictReader(io.StringIO(out)))
        assert (
            rows[2]["rationale"] == "Texas \\x1b]0;owned\\x07\\x1b[2J\\x00\\x0dAPPROVED \\u202egnp.exe\\u2066\\x9b31m"
        )

    @pytest.mark.parametrize("fmt", ["md", "csv", "json"])
    def test_a_report_on_stdout_shows_controls_as_visible_escapes(self, hostile_ledger: Path, fmt: str) -> None:
        result = runner.invoke(app, ["report", "evil", "--format", fmt, "--ledger", str(hostile_ledger)])
        assert result.exit_code == 0, result.stderr
        assert not UNSAFE.findall(result.stdout), sorted(set(UNSAFE.findall(result.stdout)))
        if fmt == "md":  # the blocked violation's rationale is there, made visible
            assert "Texas \\x1b]0;owned\\x07" in result.stdout
        if fmt == "json":  # the same JSON value: a parser reads back the exact stored text
            assert HOSTILE in strings(orjson.loads(result.stdout))

    def test_a_report_written_to_a_file_keeps_the_exact_text(self, hostile_ledger: Path, tmp_path: Path) -> None:
        out = tmp_path / "r.md"
        result = runner.invoke(
            app, ["report", "evil", "--format", "md", "--out", str(out), "--ledger", str(hostile_ledger)]
        )
        assert result.exit_code == 0, result.stderr
        assert HOSTILE in out.read_bytes().decode("utf-8")  # (read_text would turn its CR into LF)


def strings(value: object) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


class TestOtherCommands:
    """show, verify, digest, explain and runs."""

    def test_show(self, ledger_file: Path) -> None:
        """show prints every field of one entry as JSON: NUMBER within the most recent run, or --run's, or the
        ledger-wide sequence number with --seq."""
        code, out, _ = invoke("show", "3", "--ledger", str(ledger_file))
        assert code == 0
        entry = orjson.loads(out)
        assert (entry["seq"], entry["run_id"], entry["kind"]) == (8, "run-new", "proposal")
        code, out, _ = invoke("show", "3", "--run", "run-old", "--ledger", str(ledger_file))
        assert (code, orjson.loads(out)["seq"]) == (0, 3)
        code, out, _ = invoke("show", "3", "--seq", "--ledger", str(ledger_file))
        entry = orjson.loads(out)
        assert (code, entry["seq"], entry["run_id"], entry["rationale"]) == (
            0,
            3,
            "run-old",
            "Texas demand, legal path clear",
        )

    def test_verify_intact(self, ledger_file: Path) -> None:
        """An intact ledger: exit 0 and 'OK: N entries, head <hash>'."""
        with SqliteLedger(ledger_file) as ledger:
            head = ledger.head()[1]
        code, out, _ = invoke("verify", "--ledger", str(ledger_file))
        assert code == 0
        assert out.startswith(f"OK: 10 entries, head {head}; tree root ")

    def test_verify_tampered(self, ledger_file: Path) -> None:
        """A rationale edited behind the ledger's back: exit 1 and 'TAMPERED at seq 3: …'."""
        with sqlite3.connect(ledger_file) as conn:
            conn.execute("DROP TRIGGER entries_no_update")
            conn.execute(
                "UPDATE entries SET body = replace(body, 'legal path clear', 'legal path CLEAR') WHERE seq = 3"
            )
        code, out, _ = invoke("verify", "--ledger", str(ledger_file))
        assert code == 1
        assert out.startswith("TAMPERED at seq 3: ")

    def test_digest(self, ledger_file: Path) -> None:
        """digest prints the most recent run's digest by default, or the digest of the run named by --run."""
        with SqliteLedger(ledger_file) as ledger:
            expected = run_digest(ledger, "run-new")
        assert invoke("digest", "--ledger", str(ledger_file)) == (0, expected + "\n", "")
        code, out, _ = invoke("digest", "--ledger", str(ledger_file), "--run", "run-old")
        assert code == 0
        assert len(out.strip()) == 64

    def test_explain_tree_and_json(self, ledger_file: Path) -> None:
        """explain shows the chain as a tree, or as JSON with --json."""
        code, out, _ = invoke("explain", "4", "--run", "run-old", "--ledger", str(ledger_file))
        assert code == 0
        assert "decision on proposal run-old-p1" in out
        assert "gate market_entry" in out
        assert "observation" in out
        code, out, _ = invoke("explain", "2", "--seq", "--ledger", str(ledger_file), "--json")
        assert code == 0
        assert [d["proposal_id"] for d in orjson.loads(out)["decisions"]] == ["run-old-p1"]

    def test_runs(self, ledger_file: Path) -> None:
        """runs lists every run with scenario and status."""
        code, out, _ = invoke("runs", "--ledger", str(ledger_file), "--json")
        assert code == 0
        runs = orjson.loads(out)
        assert [(r["run_id"], r["scenario"], r["status"], r["entries"]) for r in runs] == [
            ("run-old", "helios-launch", "completed", 5),
            ("run-new", "settlement-incident", "completed", 5),
        ]
        code, out, _ = invoke("runs", "--ledger", str(ledger_file))
        assert code == 0
        assert "helios-launch" in out


class TestBadInput:
    """Every user mistake is one line on stderr and exit status 2, never a traceback."""

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["verify", "--ledger", "{missing}"], "error: no ledger at"),
            (["show", "99", "--ledger", "{db}"], "error: no entry #99 in run run-new (it has 5 entries"),
            (["explain", "99", "--ledger", "{db}"], "error: no entry #99 in run run-new (it has 5 entries"),
            (["show", "99", "--seq", "--ledger", "{db}"], "error: no ledger entry with seq 99"),
            (["explain", "99", "--seq", "--ledger", "{db}"], "error: no ledger entry with seq 99"),
            (["explain", "2", "--seq", "--run", "run-old", "--ledger", "{db}"], "error: give either --run"),
            (["explain", "2", "--run", "nope", "--ledger", "{db}"], "error: no run 'nope'"),
            (["show", "abc", "--ledger", "{db}"], "error: Invalid value for 'NUMBER'"),
            (["list", "--bogus", "--ledger", "{db}"], "error: No such option: --bogus"),
            (["list", "--kind", "nope", "--ledger", "{db}"], "error: unknown kind 'nope'"),
            (["list", "--json", "--csv", "--ledger", "{db}"], "error: choose one output format"),
            (["digest", "--run", "nope", "--ledger", "{db}"], "error: no run 'nope'"),
            (["nonsense"], "error: No such command 'nonsense'"),
        ],
    )
    def test_one_line_and_exit_2(self, ledger_file: Path, tmp_path: Path, args: list[str], message: str) -> None:
        """The message names what is wrong; stdout stays empty."""
        filled = [a.format(db=ledger_file, missing=tmp_path / "missing.db") for a in args]
        code, out, err = invoke(*filled)
        assert code == 2
        assert out == ""
        assert err.startswith(message)
        assert len(err.strip().splitlines()) == 1

    def test_every_command_has_an_example(self) -> None:
        """Each command's help has an 'Example:' line."""
        for command in ledger_app.registered_commands:
            assert command.callback is not None
            assert "Example: coalition ledger" in (command.callback.__doc__ or ""), command.name
        code, out, _ = invoke("verify", "--help")
        assert code == 0
        assert "Example:" in out


class TestSubprocess:
    """The installed console script, in a real process."""

    def test_verify_via_console_script(self, ledger_file: Path) -> None:
        """`.venv/bin/coalition ledger verify` exits 0 on an intact ledger and 1 once it is tampered with."""
        script = Path(sys.executable).with_name("coalition")
        command = [str(script), "ledger", "verify", "--ledger", str(ledger_file)]
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout.startswith("OK: 10 entries, head ")
        with sqlite3.connect(ledger_file) as conn:
            conn.execute("DROP TRIGGER entries_no_delete")
            conn.execute("DELETE FROM entries WHERE seq = 6")
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert done.stdout.startswith("TAMPERED at seq 6: seq 6 is missing")


@pytest.fixture(scope="module")
def forged_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int, int]:
    """A real chaos-week run (its scripted board rejects the pricing-policy change: alice's signed rejection), then,
    appended past the approvals service as anyone who can write the ledger file could: an unsigned approval in
    carol's name and a copy of alice's signed rejection re-filed as approval.granted. Returns the ledger and the seqs
    of the rejection, the unsigned approval and the re-filed copy."""
    from coalition.bus.memory import MemoryBus
    from coalition.ledger import LedgerQuery
    from coalition.scenarios.assembly import assemble_run
    from coalition.scenarios.spec import load_scenario

    path = tmp_path_factory.mktemp("forged") / "ledger.db"
    with SqliteLedger(path) as ledger:
        assemble_run(load_scenario("chaos-week"), bus=MemoryBus(namespace="f"), ledger=ledger, run_id="chaos-1").run()
        (rejection,) = ledger.query(LedgerQuery(run_id="chaos-1", kind="rejection"))
        append_forged_decisions(ledger, rejection)
        unsigned_seq, refiled_seq = (ledger.query(LedgerQuery(message_id=m))[0].seq for m in ("forged-1", "forged-2"))
    return path, rejection.seq, unsigned_seq, refiled_seq


class TestExplainUnverifiedDecisions:
    """`ledger explain` never presents a decision that does not verify as a human decision: it lists it apart,
    flagged, with why (on main the unsigned approval in carol's name and the re-filed copy were among its human
    decisions, in the tree and in --json)."""

    def test_json_lists_only_signed_decisions_as_human(self, forged_run: tuple[Path, int, int, int]) -> None:
        path, rejection, unsigned, refiled = forged_run
        code, out, err = invoke("explain", str(rejection), "--seq", "--ledger", str(path), "--json")
        assert code == 0, err
        (decision,) = orjson.loads(out)["decisions"]
        assert [(h["seq"], h["approver"]) for h in decision["human"]] == [(rejection, "alice")]
        assert decision["human"][0]["verified"] is True
        flagged = {u["seq"]: (u["approver"], u["verified"], u["problem"]) for u in decision["unverified"]}
        assert flagged == {
            unsigned: ("carol", False, "the decision of carol is not signed"),
            refiled: (
                "alice",
                False,
                "the decision of alice is filed as kind 'rejection' with message type 'approval.granted': a signed "
                "decision's kind and type name the same decision",
            ),
        }

    def test_tree_flags_each_with_why(self, forged_run: tuple[Path, int, int, int]) -> None:
        path, rejection, unsigned, refiled = forged_run
        code, out, err = invoke("explain", str(rejection), "--seq", "--ledger", str(path))
        assert code == 0, err
        flat = re.sub(r"[\s│├└─]+", " ", out)
        assert f"(seq {rejection}) rejection → rejected [gate pricing_policy_change] by human:alice" in flat
        assert "(approver alice) (scripted board, signature verified)" in flat  # chaos-week's board decided
        assert "recorded as human decisions but NOT verified" in flat
        assert f"(seq {unsigned}) UNVERIFIED approval" in flat
        assert "(approver carol) — NOT a verified human decision: the decision of carol is not signed" in flat
        assert f"(seq {refiled}) UNVERIFIED rejection" in flat
        assert "filed as kind 'rejection' with message type 'approval.granted'" in flat
        assert flat.count("signature verified)") == 2  # alice's rejection: the focus and its place in the chain

    def test_explaining_the_forged_entry_itself(self, forged_run: tuple[Path, int, int, int]) -> None:
        """From the forged approval: the focus says it is no verified decision, in the tree and in --json."""
        path, _, unsigned, _ = forged_run
        code, out, _ = invoke("explain", str(unsigned), "--seq", "--ledger", str(path), "--json")
        assert code == 0
        focus = orjson.loads(out)["focus"]
        assert (focus["verified"], focus["problem"]) == (False, "the decision of carol is not signed")
        code, out, _ = invoke("explain", str(unsigned), "--seq", "--ledger", str(path))
        assert f"why #{unsigned}" in out
        assert out.startswith(f"why #{unsigned} of run chaos-1? #{unsigned} (seq {unsigned}) UNVERIFIED approval")
