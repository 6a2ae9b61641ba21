"""The audit package's standalone verifier (verify.py) against a hostile package: whatever a file holds, the auditor
gets one line and exit 1 or 2, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from verdict_drafts import verdict_draft

from coalition.bus.clock import WallClock
from coalition.ledger import SqliteLedger
from coalition.ledger import offline_verifier as verifier
from coalition.ledger.notary import Notary, origin_of
from coalition.ledger.proofs import Attestation
from coalition.ledger.signed_note import Signer
from coalition.ledger.witness import WitnessDir
from coalition.scenarios.audit import write_audit

pytestmark = pytest.mark.unit

DEEP = "[" * 100_000 + "]" * 100_000  # nested past any JSON parser's recursion limit


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signed package of run r (4 entries; the ledger's only run, so it is also that run's chain from GENESIS)."""
    root = tmp_path_factory.mktemp("pkg")
    key = Ed25519PrivateKey.generate()
    with SqliteLedger(root / "ledger.db") as ledger:
        ledger.append([verdict_draft(n, run_id="r") for n in range(4)])
        origin = origin_of(ledger)
        signed = Notary(ledger, lambda: Signer(origin, key), WitnessDir(root / "w"), WallClock()).checkpoint()
        assert signed is not None
        write_audit(ledger, "r", root / "pkg", attestation=Attestation(ledger, signed))
    return root / "pkg"


def _verify(package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = verifier.main([str(package), "--state", str(tmp_path / "state")])
    out, err = capsys.readouterr()
    return code, (out + err).strip()


def _first_proof(edit: Callable[[dict[str, object]], None]) -> Callable[[Path], None]:
    def change(package: Path) -> None:
        lines = (package / "proofs.jsonl").read_text().splitlines()
        item = json.loads(lines[0])
        edit(item)
        lines[0] = json.dumps(item)
        (package / "proofs.jsonl").write_text("\n".join(lines) + "\n")

    return change


def _first_body_field(key: str, value: object) -> Callable[[Path], None]:
    def edit(item: dict[str, object]) -> None:
        body = json.loads(str(item["entry"]))
        body[key] = value
        item["entry"] = json.dumps(body, separators=(",", ":"), sort_keys=True)

    return _first_proof(edit)


def _first_ledger_line(text: str) -> Callable[[Path], None]:
    def change(package: Path) -> None:
        lines = (package / "ledger.jsonl").read_text().splitlines()
        (package / "ledger.jsonl").write_text("\n".join([text, *lines[1:]]) + "\n")

    return change


def _file(name: str, text: str) -> Callable[[Path], None]:
    return lambda package: (package / name).write_text(text)


def _copy(package: Path, target: Path) -> Path:
    target.mkdir()
    for path in package.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


class TestHostilePackage:
    def test_negative_control_the_package_verifies(
        self, package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        intact = _copy(package, tmp_path / "p")
        (intact / "run-chain.json").write_text('{"run_id":"r","entries":4}')
        code, said = _verify(intact, tmp_path, capsys)
        assert code == 0, said
        assert said.endswith(
            "run r's chain holds from GENESIS (4 entries, none missing up to seq 4; no run.finished entry among them;"
            " entries after that seq are not proven absent offline)"
        )

    def test_a_run_package_cut_short_says_the_last_seq_it_proves_not_the_whole_run(
        self, package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """run-chain.json is not signed: a package with its last entry cut and the count edited to match verifies,
        and the line must not read as the whole run — it names seq 3 as the last it proves."""
        cut = _copy(package, tmp_path / "p")
        for name in ("proofs.jsonl", "ledger.jsonl"):
            lines = (cut / name).read_text().splitlines()
            (cut / name).write_text("\n".join(lines[:3]) + "\n")
        (cut / "run-chain.json").write_text('{"run_id":"r","entries":3}')
        code, said = _verify(cut, tmp_path, capsys)
        assert code == 0, said
        assert "(3 entries, none missing up to seq 3;" in said
        assert "entries after that seq are not proven absent offline" in said

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            (_first_proof(lambda item: item.update(entry=5)), "proofs.jsonl line 1"),
            (_first_proof(lambda item: item.update(entry=[1])), "proofs.jsonl line 1"),
            (_first_proof(lambda item: item.update(entry=DEEP)), "nested too deeply"),
            (_first_body_field("prev_hash", 5), "proofs.jsonl line 1"),
            (_first_ledger_line("[1]"), "ledger.jsonl line 1"),
            (_first_ledger_line('"x"'), "ledger.jsonl line 1"),
            (_first_ledger_line(DEEP), "nested too deeply"),
            (_file("run-chain.json", DEEP), "nested too deeply"),
            (_file("run-chain.json", "[1]"), "run-chain.json"),
            (_file("run-chain.json", '{"run_id":"r","entries":"4"}'), "run-chain.json"),
            (_file("run-chain.json", '{"run_id":"r","entries":true}'), "run-chain.json"),
            (_file("run-chain.json", '{"run_id":5,"entries":4}'), "run-chain.json"),
        ],
        ids=[
            "entry-a-number",
            "entry-a-list",
            "entry-nested-deep",
            "prev_hash-a-number",
            "ledger-line-a-list",
            "ledger-line-a-string",
            "ledger-line-nested-deep",
            "run-chain-nested-deep",
            "run-chain-a-list",
            "run-chain-count-a-string",
            "run-chain-count-a-boolean",
            "run-chain-run-a-number",
        ],
    )
    def test_a_malformed_file_is_one_line_and_exit_2(
        self,
        package: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        change: Callable[[Path], None],
        reason: str,
    ) -> None:
        hostile = _copy(package, tmp_path / "p")
        change(hostile)
        code, said = _verify(hostile, tmp_path, capsys)
        assert code == 2, said
        assert len(said.splitlines()) == 1, said
        assert said.startswith("error: "), said
        assert reason in said, said
