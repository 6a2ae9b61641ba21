"""The ledger that proves itself, from the CLI as an operator or an attacker would use it: verify names truncation,
rollback, rewrite, a fork, a foreign key and a rolled-back witness in one line (each with a negative control);
every command refuses a ledger inconsistent with what the CLI saw; `ledger prove` and audit packages verify offline
with their own script in a clean virtualenv holding only `cryptography` — and fail when an entry is altered."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import venv
import zipfile
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from coalition.bootstrap import attach_notary, ledger_trust
from coalition.governance.decision_signatures import scripted_key, sign, statement
from coalition.ledger import EntryDraft, SqliteLedger, merkle
from coalition.ledger.checkpoint import Checkpoint
from coalition.ledger.notary import origin_of
from coalition.ledger.signed_note import Signer
from coalition.ledger.tree import StoredTree
from coalition.settings import Settings
from coalition.web.app import create_app
from coalition.web.passwords import hash_password

pytestmark = pytest.mark.e2e

T0 = datetime(2025, 3, 1, tzinfo=UTC)
COALITION = Path(sys.executable).with_name("coalition")
CRYPTOGRAPHY_PIN = "cryptography==51.0.1"  # as in constraints.txt
PASSWORD = "correct horse battery"


def _scripted_decision(n: int, at: datetime) -> dict[str, object]:
    """A scripted board's approval, signed by carol's declared test identity (ledger verify checks decisions)."""
    fields = {"proposal_id": f"p-{n}", "proposal_hash": f"h-{n}", "approver": "carol", "reason": "entry case"}
    data = statement(**fields, decision="approve", decided_at=at)  # type: ignore[arg-type]
    return {**fields, "method": "scenario-board", "scripted": True, "signature": sign(scripted_key("carol"), data)}


def draft(n: int, *, tag: str = "", kind: str = "verdict") -> EntryDraft:
    at = T0 + timedelta(hours=n)
    return EntryDraft(
        run_id="run-p",
        sim_time=at,
        actor="human:carol" if kind == "approval" else "governance",
        actor_kind="human" if kind == "approval" else "governance",
        kind=kind,  # type: ignore[arg-type]
        subject=f"p-{n}",
        outcome="approved" if kind == "approval" else "deny",
        payload={"agent": "finance", "n": n, **(_scripted_decision(n, at) if kind == "approval" else {})},
        rationale=f"rationale of entry {n}{tag}",
        message_id=f"m-{n}{tag}",
        message_type="approval.granted" if kind == "approval" else None,  # a decision names itself twice, alike
    )


class Operator:
    """One data directory (keys, witness) and one CLI memory (COALITION_STATE_DIR), used through subprocesses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.ledger = self.data / "ledger.db"
        self.env = {**os.environ, "COALITION_DATA_DIR": str(self.data), "COALITION_STATE_DIR": str(root / "state")}
        self.witness_dir: Path | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(COALITION), *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def grow(self, upto: int, *, approvals: tuple[int, ...] = (), tag: str = "", path: Path | None = None) -> None:
        """Append entries up to `upto` (the approvals among them make the notary sign), then a checkpoint, by CLI."""
        with SqliteLedger(path or self.ledger, synchronous="NORMAL") as ledger:
            settings = Settings(data_dir=self.data, state_dir=self.root / "state", witness_dir=self.witness_dir)
            attach_notary(ledger, ledger_trust(settings, ledger, client="cli"))
            size = ledger.head()[0]
            for end in sorted(
                {*(a for a in approvals if size < a < upto), upto}
            ):  # a transaction ends at each approval
                kinds = ["approval" if n in approvals else "verdict" for n in range(size + 1, end + 1)]
                ledger.append(
                    [draft(n, tag=tag, kind=kind) for n, kind in zip(range(size + 1, end + 1), kinds, strict=True)]
                )
                size = end
        done = self.cli("ledger", "checkpoint", "--ledger", str(path or self.ledger))
        assert done.returncode == 0, done.stderr

    def verify(self, path: Path | None = None) -> subprocess.CompletedProcess[str]:
        return self.cli("ledger", "verify", "--ledger", str(path or self.ledger))


@pytest.fixture
def op(tmp_path: Path) -> Operator:
    operator = Operator(tmp_path)
    operator.grow(300, approvals=(120,))
    done = operator.verify()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "consistent with the newest checkpoint (300 entries" in done.stdout
    return operator


def _attacker(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return lines[0]


class TestVerifyFromTheCli:
    def test_truncated_tail(self, op: Operator) -> None:
        conn = _attacker(op.ledger)
        conn.execute("DELETE FROM entries WHERE seq > 280")
        conn.close()
        done = op.verify()
        assert done.returncode == 1
        assert _one_line(done).startswith("TAMPERED at seq 281: truncated after seq 280")

    def test_rolled_back_to_an_older_copy_and_every_command_refuses_it(self, op: Operator) -> None:
        backup = op.root / "backup.db"
        shutil.copy(op.ledger, backup)
        op.grow(400)
        shutil.copy(backup, op.ledger)
        done = op.verify()
        assert done.returncode == 1
        assert _one_line(done).startswith("TAMPERED at seq 301: rolled back to seq 300: the ")
        listed = op.cli("ledger", "list", "--ledger", str(op.ledger))
        assert listed.returncode == 2
        assert listed.stderr.startswith(f"error: refusing the ledger at {op.ledger}: rolled back to seq 300")
        assert len(listed.stderr.strip().splitlines()) == 1

    def test_negative_control_a_current_copy(self, op: Operator) -> None:
        shutil.copy(op.ledger, op.root / "copy.db")
        shutil.copy(op.root / "copy.db", op.ledger)
        assert op.verify().returncode == 0
        assert op.cli("ledger", "list", "--ledger", str(op.ledger)).returncode == 0

    def test_full_rewrite_with_recomputed_hashes(self, op: Operator) -> None:
        """Entry 200 retold, every later hash recomputed, index and tree rebuilt, the ledger's checkpoints gone."""
        conn = _attacker(op.ledger)
        prev = conn.execute("SELECT hash FROM entries WHERE seq = 199").fetchone()[0]
        for seq, body in conn.execute("SELECT seq, body FROM entries WHERE seq >= 200 ORDER BY seq").fetchall():
            fields = json.loads(body)
            fields["prev_hash"] = prev
            if seq == 200:
                fields["rationale"] = "a decision nobody took"
            new = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            prev = hashlib.sha256(prev.encode() + new).hexdigest()
            conn.execute("UPDATE entries SET body = ?, hash = ? WHERE seq = ?", (new.decode(), prev, seq))
        conn.execute("DELETE FROM tree_nodes")
        conn.execute("DELETE FROM checkpoints")
        conn.execute("INSERT INTO entries_fts (entries_fts) VALUES ('delete-all')")
        conn.execute(
            "INSERT INTO entries_fts (rowid, rationale, subject)"
            " SELECT seq, json_extract(body, '$.rationale'), subject FROM entries"
        )
        conn.close()
        done = op.verify()
        assert done.returncode == 1
        assert _one_line(done).startswith("TAMPERED at seq 121: rewritten from seq 121 at the latest")

    def test_fork_checked_against_the_original_witness(self, op: Operator) -> None:
        """A copy of the data directory (same key) grows another history: alone it verifies (negative control);
        against the original operator's witness and memory it is a fork after 300."""
        other = Operator(op.root / "other")
        shutil.copytree(op.data, other.data)
        op.grow(350)
        other.grow(360, tag=" (retold)")
        assert other.verify().returncode == 0
        forked = other.ledger
        done = op.cli(
            "ledger", "verify", "--ledger", str(forked)
        )  # the original's witness, keyed by the same origin; its memory is for another path
        assert done.returncode == 1
        assert _one_line(done).startswith("TAMPERED at seq 301: forked after seq 300: ")

    def test_checkpoint_signed_by_another_key(self, op: Operator) -> None:
        with SqliteLedger(op.ledger, create=False) as ledger:
            origin = origin_of(ledger)
            note = Checkpoint(origin, 300, StoredTree(ledger, 300).root()).sign(
                Signer(origin, Ed25519PrivateKey.generate())
            )
        folder = next((op.data / "witness").iterdir())
        (folder / "00000000000000000300-forged.checkpoint").write_text(note)
        done = op.verify()
        assert done.returncode == 1
        line = _one_line(done)
        assert line.startswith("TAMPERED: the checkpoint of size 300 in the witness directory")
        assert "signed by an unknown key" in line

    def test_witness_rolled_back(self, op: Operator) -> None:
        folder = next((op.data / "witness").iterdir())
        max(folder.iterdir()).unlink()
        done = op.verify()
        assert done.returncode == 1
        assert _one_line(done).startswith(
            "TAMPERED: the witness store was rolled back: its newest checkpoint covers 120"
        )

    def test_an_older_witness_file_that_cannot_be_read_stops_neither_opening_nor_checkpointing(
        self, op: Operator
    ) -> None:
        """Opening the ledger and signing a checkpoint look at the witness's newest checkpoint only: an older file
        below it that cannot be read (here a directory in its place) is not read at all, so it neither refuses the
        ledger nor leaves the next checkpoint unwitnessed (all eight newest were read, and the first failure
        stopped both)."""
        folder = next((op.data / "witness").iterdir())
        (folder / "00000000000000000050-0000000000000000.checkpoint").mkdir()
        op.grow(320)  # a checkpoint at 320 by the notary, then `ledger checkpoint` opens the ledger (its guard)
        assert any(name.name.startswith("00000000000000000320-") for name in folder.iterdir())
        done = op.cli("ledger", "checkpoint", "--ledger", str(op.ledger))
        assert done.returncode == 0, done.stdout + done.stderr

    def test_negative_control_a_witness_elsewhere_that_kept_everything(self, op: Operator) -> None:
        op.env["COALITION_WITNESS_DIR"] = str(op.root / "remote-witness")
        op.witness_dir = op.root / "remote-witness"
        shutil.copytree(op.data / "witness", op.root / "remote-witness")
        shutil.rmtree(op.data / "witness")
        op.grow(320)
        assert op.verify().returncode == 0
        assert not (op.data / "witness").exists()

    def test_derived_data_deleted_fts_row(self, op: Operator) -> None:
        conn = _attacker(op.ledger)
        conn.execute(
            "INSERT INTO entries_fts (entries_fts, rowid, rationale, subject) VALUES ('delete', 9, ?, 'p-9')",
            ("rationale of entry 9",),
        )
        conn.close()
        done = op.verify()
        assert done.returncode == 1
        assert _one_line(done) == "TAMPERED: derived data: the full-text index does not match the entries at seq 9"


def _clean_venv(root: Path) -> Path:
    """A virtualenv with only `cryptography` (pip's cache or registry must be reachable, else skip/fail in CI)."""
    target = root / "clean-venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    python = target / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", CRYPTOGRAPHY_PIN],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot install {CRYPTOGRAPHY_PIN} into a clean virtualenv: {done.stderr.strip()[-300:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    probe = subprocess.run(
        [str(python), "-I", "-c", "import coalition"], cwd=root, capture_output=True, timeout=60, check=False
    )
    assert probe.returncode != 0  # clean: nothing of ours is importable there
    return python


def _rezip(source: Path, target: Path, name: str, edit: bytes) -> None:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, edit if item == name else src.read(item))


def test_audit_package_verifies_offline_in_a_clean_venv(op: Operator) -> None:
    python = _clean_venv(op.root)
    package = op.root / "audit.zip"
    done = op.cli("audit", "--ledger", str(op.ledger), "--out", str(package))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(package) as zf:
        zf.extract("verify.py", op.root)
        ledger_lines = zf.read("ledger.jsonl")
        proofs = zf.read("proofs.jsonl")
    script = str(op.root / "verify.py")
    state = str(op.root / "auditor-state")

    def auditor(pkg: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-I", script, str(pkg), "--state", state],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = auditor(package)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK: 300 entries proven included in coalition.ledger/")

    altered = op.root / "altered.zip"
    _rezip(package, altered, "ledger.jsonl", ledger_lines.replace(b"rationale of entry 17", b"rationale of entry 71"))
    bad = auditor(altered)
    assert (bad.returncode, bad.stdout.strip()) == (
        1,
        "FAILED: ledger.jsonl entry seq 17 is not the entry proven included (altered)",
    )

    first = proofs.split(b"\n")[0]
    item = json.loads(first)
    item["entry"] = item["entry"].replace("rationale of entry 1", "rationale of entry X")
    _rezip(package, altered, "proofs.jsonl", proofs.replace(first, json.dumps(item).encode()))
    bad = auditor(altered)
    assert bad.returncode == 1
    assert bad.stdout.startswith("FAILED: entry seq 1: its hash does not match its content")

    # the ledger grows; the auditor's next package must extend the one it saw: it does (consistency proof) …
    op.grow(420)
    later = op.root / "later.zip"
    assert op.cli("audit", "--ledger", str(op.ledger), "--out", str(later)).returncode == 0
    assert auditor(later).returncode == 0
    # … and a package from the older ledger is refused now: the verifier remembers the newest checkpoint it saw
    old = auditor(package)
    assert (old.returncode, old.stdout.strip()) == (
        1,
        "FAILED: this package's checkpoint (300 entries) is older than the one seen before (420)",
    )


def test_prove_prints_a_proof_that_checks_against_the_checkpoint(op: Operator) -> None:
    done = op.cli("ledger", "prove", "42", "--ledger", str(op.ledger))
    assert done.returncode == 0, done.stderr
    bundle = json.loads(done.stdout)
    assert (bundle["seq"], bundle["tree_size"]) == (42, 300)
    root = base64.b64decode(bundle["checkpoint"].split("\n")[2])
    leaf = merkle.leaf_hash(bundle["entry"].encode())
    assert base64.b64decode(bundle["leaf_hash"]) == leaf
    proof = [base64.b64decode(p) for p in bundle["proof"]]
    merkle.verify_inclusion(41, 300, leaf, proof, root)
    missing = op.cli("ledger", "prove", "999", "--ledger", str(op.ledger))
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        "error: no ledger entry with seq 999 (the ledger holds 300)",
    )


def _append_repeating_a_key(path: Path) -> int:
    """What a superuser's SQL appends: the next entry, chained and indexed as the ledger would, but its bytes say
    `outcome` twice ("allow" first, which SQLite's columns read, "deny" last, which Python reads); returns its seq."""
    conn = sqlite3.connect(path, isolation_level=None)
    seq, head, body = conn.execute("SELECT seq, hash, body FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
    fields = json.loads(body)
    fields.update(seq=seq + 1, prev_hash=head, subject="p-forged", rationale="forged but allowed", message_id="m-x")
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    forged = canonical.replace('"outcome":"deny"', '"outcome":"allow","outcome":"deny"', 1)
    assert forged != canonical
    digest = hashlib.sha256(head.encode() + forged.encode()).hexdigest()
    conn.execute("INSERT INTO entries (seq, hash, body) VALUES (?, ?, ?)", (seq + 1, digest, forged))
    conn.execute(
        "INSERT INTO entries_fts (rowid, rationale, subject) VALUES (?, ?, ?)",
        (seq + 1, fields["rationale"], fields["subject"]),
    )
    conn.close()
    return int(seq) + 1


def test_an_entry_repeating_a_key_is_named_by_verify_and_the_offline_verifier(op: Operator) -> None:
    """Bytes that hash and link right but repeat a key read two ways: the outcome column says allow, the entry deny.
    `ledger verify` names the entry (its derived-data check: readers disagree; `--skip-derived` skips it, and says
    so in its help); reading it (show, list, search) is no traceback; an audit package holding it, under a checkpoint
    signed after it, fails the package's own verify.py naming it."""
    seq = _append_repeating_a_key(op.ledger)
    listed = op.cli("ledger", "list", "--ledger", str(op.ledger), "--outcome", "allow", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [e["outcome"] for e in json.loads(listed.stdout)] == ["deny"]  # what the ambiguity looks like
    why = f"seq {seq}'s stored JSON is not canonical: the key 'outcome' appears twice in one object"
    done = op.verify()
    assert done.returncode == 1
    assert _one_line(done) == f"TAMPERED: derived data: {why} (readers disagree on its value)"
    chain_only = op.cli("ledger", "verify", "--ledger", str(op.ledger), "--skip-derived")
    assert chain_only.returncode == 0, chain_only.stdout + chain_only.stderr
    assert "not canonical" not in chain_only.stdout
    helped = op.cli("ledger", "verify", "--help")
    assert "Skip the derived-data check: that every stored body is exactly the canonical JSON of its value" in (
        " ".join(helped.stdout.replace("│", " ").split())
    )
    for args in (("ledger", "show", str(seq)), ("ledger", "list", "--search", "forged")):
        read = op.cli(*args, "--ledger", str(op.ledger))
        assert read.returncode == 0, read.stdout + read.stderr
        assert "Traceback" not in read.stdout + read.stderr
    explorer = create_app(op.ledger, op.root / "users.db")
    explorer.state.console.users.add("vera", ["viewer"], hash_password(PASSWORD), now=T0)
    with TestClient(explorer, base_url="http://127.0.0.1") as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        login = {"name": "vera", "password": PASSWORD, "csrf_token": token.group(1), "next": "/ledger"}
        assert client.post("/login", data=login, follow_redirects=False).status_code == 303
        pages = [client.get(url) for url in ("/ledger?outcome=allow", f"/ledger/entries/{seq}")]
    explorer.state.console.close()
    assert [page.status_code for page in pages] == [200, 200]
    assert "forged but allowed" in pages[1].text

    op.grow(seq + 1)  # a checkpoint signed over it, as the notary signs what the ledger holds
    package = op.root / "audit"
    audited = op.cli("audit", "--ledger", str(op.ledger), "--out", str(package))
    assert (audited.returncode, "ledger VERIFICATION FAILED" in audited.stdout) == (1, True)  # written, and says so
    offline = subprocess.run(
        [sys.executable, "-I", str(package / "verify.py"), str(package), "--state", str(op.root / "auditor")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (offline.returncode, offline.stdout.strip()) == (
        1,
        f"FAILED: entry seq {seq}: its stored bytes are not canonical JSON: the key 'outcome' appears twice in one"
        " object (readers disagree on its value)",
    )


@pytest.mark.parametrize("command", [["ledger", "checkpoint"], ["audit", "run-p"]], ids=["ledger checkpoint", "audit"])
def test_signing_over_a_ledger_missing_an_entry_is_refused_in_one_line(tmp_path: Path, command: list[str]) -> None:
    """An entry deleted before any checkpoint was signed (nothing to compare with yet): signing one now (ledger
    checkpoint, or audit's attestation) is refused in one line naming the missing entries, exit 2, and no checkpoint
    is kept; it was a LookupError traceback."""
    operator = Operator(tmp_path)
    with SqliteLedger(operator.ledger) as ledger:
        ledger.append([draft(n) for n in range(1, 4)])
    with closing(_attacker(operator.ledger)) as conn:
        conn.execute("DELETE FROM entries WHERE seq = 2")
    done = operator.cli(
        *command, "--ledger", str(operator.ledger), *(["--out", str(tmp_path / "a")] if command[0] == "audit" else [])
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert "cannot sign a checkpoint" in line, line
    assert "entries 1..3 are not all in the ledger" in line, line
    with SqliteLedger(operator.ledger) as ledger:
        assert ledger.stored_checkpoints() == []
