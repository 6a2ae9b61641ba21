"""`coalition approvals` end to end: a real SQLite ledger written by the governance service and the recorder,
decisions taken through the CLI, and the service resolving them at its next step."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from coalition.bus import topics
from coalition.bus.clock import IdFactory, SimulatedClock
from coalition.bus.envelope import Envelope
from coalition.bus.keys import ApproverKeys
from coalition.bus.memory import MemoryBus
from coalition.bus.message import Message
from coalition.bus.messages import ActionAuthorized, ActionProposed, EscalationResolved, Observation, RunStarted
from coalition.cli import app
from coalition.governance import GovernanceService, Policy, default_policy, load_policy
from coalition.governance.decision_signatures import scripted_key
from coalition.ledger.entry import EntryDraft
from coalition.ledger.recorder import Recorder
from coalition.ledger.sqlite import SqliteLedger

pytestmark = pytest.mark.e2e

START = datetime(2025, 3, 10, 9, tzinfo=UTC)
RUN = "run-cli"
PASSWORD = "correct horse battery"
runner = CliRunner()


@pytest.fixture(scope="module")
def sealed_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every approver of the policy with a signing key sealed with PASSWORD (made once: scrypt is slow on purpose)."""
    directory = tmp_path_factory.mktemp("keys") / "approvers"
    store = ApproverKeys(directory)
    for name in default_policy().approvers:
        store.create(name, PASSWORD)
    return directory


def install_keys(sealed: Path, data_dir: Path) -> dict[str, str]:
    """The approvers' keys under data_dir/keys/approvers; returns the directory a run records at start."""
    shutil.copytree(sealed, data_dir / "keys" / "approvers")
    store = ApproverKeys(data_dir / "keys" / "approvers")
    return store.directory_for(store.names())


@dataclass
class World:
    """A run with three open escalations, and the live pieces to continue it."""

    path: Path
    bus: MemoryBus
    ledger: SqliteLedger
    service: GovernanceService
    recorder: Recorder
    clock: SimulatedClock

    def step(self, superstep: int) -> None:
        self.service.accept_decisions()  # the decision point the runner makes after a day settles
        self.service.step(superstep)
        self.recorder.flush()


def build(
    tmp_path: Path, policy: Policy | None = None, settings: dict[str, Any] | None = None, *, sealed: Path
) -> World:
    policy = policy or default_policy()
    directory = install_keys(sealed, tmp_path)
    settings = {"interactive": True, "approver_keys": directory, **(settings or {})}
    path = tmp_path / "ledger.db"
    bus, ledger, clock, ids = MemoryBus(), SqliteLedger(path), SimulatedClock(START), IdFactory("cli")
    recorder = Recorder(bus, ledger)
    service = GovernanceService(bus, ledger, policy, ids=ids, clock=clock, run_id=RUN)
    outside = ids.child("test")

    def emit(topic: str, source: str, message: Message) -> None:
        bus.publish(
            topic, Envelope.wrap(message, id=outside.new(), source=source, run_id=RUN, superstep=0, sim_time=START)
        )

    emit(
        topics.CONTROL,
        "runner",
        RunStarted(
            scenario="cli",
            scenario_hash="h",
            seed=1,
            policy_version=policy.version,
            start=START,
            days=2,
            settings=settings,
        ),
    )
    emit(
        topics.OBSERVATIONS,
        "world",
        Observation(kind="market.snapshot", data={"prices": {"CA": {"price": 60, "base_price": 60}}}),
    )
    proposals = [
        ActionProposed(
            proposal_id="entry-ca-0001",
            agent="finance",
            action="enter_market",
            args={"region": "CA", "sequence": 1, "investment_usd": 300000},
            rationale="CA first: a legal path exists and demand is price-sensitive",
            evidence=["ev-aaaaaaaaaaaaaaaa"],
        ),
        ActionProposed(
            proposal_id="study-0002",
            agent="research",
            action="commission_research",
            args={"topic": "grid", "cost_usd": 25000},
            rationale="need the grid study",
        ),
        ActionProposed(
            proposal_id="rotate-0003",
            agent="ops",
            action="rotate_credentials",
            args={"system": "settlement-db", "reason": "leak"},
            rationale="a key leaked",
        ),
    ]
    for p in proposals:
        emit(topics.PROPOSALS, f"agent:{p.agent}", p)
    world = World(path, bus, ledger, service, recorder, clock)
    recorder.flush()
    world.step(1)
    return world


@pytest.fixture
def world(tmp_path: Path, sealed_keys: Path) -> Any:
    w = build(tmp_path, sealed=sealed_keys)
    yield w
    w.ledger.close()


def cli(*args: str, password: str | None = PASSWORD) -> Any:
    """`coalition approvals …`; a decision reads the approver's password from stdin; the data directory (where
    the approvers' keys are) is the ledger's folder."""
    ledger = Path(args[args.index("--ledger") + 1]) if "--ledger" in args else Path(".coalition/ledger.db")
    env = {"COALITION_DATA_DIR": str(ledger.parent)}
    if args and args[0] in ("approve", "reject") and password is not None:
        return runner.invoke(app, ["approvals", *args, "--password-stdin"], input=password + "\n", env=env)
    return runner.invoke(app, ["approvals", *args], env=env)


class TestListAndShow:
    """What waits, with rationale, evidence, the rule that fired, approvals so far and the consequence."""

    def test_list_json(self, world: World) -> None:
        """Three pending escalations with everything a human needs."""
        result = cli("list", "--ledger", str(world.path), "--json")
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        assert [r["proposal_id"] for r in rows] == ["entry-ca-0001", "rotate-0003", "study-0002"]
        entry = rows[0]
        assert entry["gate"] == "market_entry"
        assert entry["rule_ids"] == ["gate.market_entry"]
        assert (entry["approvals_required"], entry["approvals"]) == (2, [])
        assert entry["rationale"].startswith("CA first")
        assert entry["evidence"] == ["ev-aaaaaaaaaaaaaaaa"]
        assert entry["expires_at"] == "2025-03-13T09:00:00+00:00"
        assert "executor applies it once" in entry["if_approved"]
        assert "budget for the period is raised" in rows[2]["if_approved"]

    def test_list_table(self, world: World) -> None:
        """The table names each escalation, its gate and its approvals so far."""
        result = cli("list", "--ledger", str(world.path))
        assert result.exit_code == 0, result.output
        for text in ("entry-ca-0001", "market_entry", "budget_overrun", "credential_change", "0/2"):
            assert text in result.stdout

    def test_show_by_prefix(self, world: World) -> None:
        """A unique prefix finds the escalation; --json gives the same fields as list."""
        result = cli("show", "entry-ca", "--ledger", str(world.path), "--run", RUN)
        assert result.exit_code == 0, result.output
        assert "who may decide" in result.stdout
        assert "carol (board), dave (board)" in result.stdout
        assert "2 more distinct approval(s) needed" in result.stdout
        shown = json.loads(cli("show", "study", "--ledger", str(world.path), "--json").stdout)
        assert shown["gate"] == "budget_overrun"


class TestWhoMayDecideAndExpiry:
    """`approvals show` names the people who may decide; `approvals list` warns before an escalation expires."""

    def test_names_shrink_as_people_approve(self, world: World) -> None:
        """After carol approves a four-eyes entry, only dave is left to ask: carol counts once."""
        ok = cli("approve", "entry-ca", "--as", "carol", "--reason", "sound case", "--ledger", str(world.path))
        assert ok.exit_code == 0, ok.output
        shown = json.loads(cli("show", "entry-ca", "--ledger", str(world.path), "--json").stdout)
        assert shown["who_may_decide"] == ["dave (board)"]
        text = cli("show", "entry-ca", "--ledger", str(world.path)).stdout
        assert "dave (board) — 1 more distinct approval(s) needed" in text

    def test_no_warning_three_days_out_then_a_warning_within_a_day(self, world: World) -> None:
        """The market entry expires at +72 h: no warning for it at the start (the 8 h credential change and the
        24 h budget request do warn); 2.5 simulated days later it warns on a line of its own, naming the deadline,
        and the other two say they are past due."""
        quiet = [line for line in cli("list", "--ledger", str(world.path)).stdout.splitlines() if "EXPIRES" in line]
        assert len(quiet) == 2
        assert "deadline 2025-03-10 17:00 simulated, 8 h of simulated time left" in quiet[0]
        assert not any("2025-03-13" in line for line in quiet)
        later = START + timedelta(days=2, hours=12)
        world.clock.set(later)
        world.bus.publish(
            topics.OBSERVATIONS,
            Envelope.wrap(
                Observation(kind="market.snapshot", data={}),
                id="late-snapshot",
                source="world",
                run_id=RUN,
                superstep=2,
                sim_time=later,
            ),
        )
        world.recorder.flush()
        loud = cli("list", "--ledger", str(world.path))
        warned = [line for line in loud.stdout.splitlines() if "EXPIRES SOON" in line]
        assert len(warned) == 1, loud.stdout
        assert "2025-03-13 09:00 simulated, 12 h of simulated time left" in warned[0]
        assert sum("EXPIRES NOW" in line for line in loud.stdout.splitlines()) == 2
        shown = cli("show", "entry-ca", "--ledger", str(world.path))
        assert "EXPIRES SOON" in shown.stdout


class TestDecisions:
    """Approve and reject through the CLI; refusals exit 1 with the reason."""

    def test_four_eyes_via_cli_then_governance_authorizes(self, world: World) -> None:
        """carol, carol again (refused), dave; the service's next step resolves and authorizes."""
        path = str(world.path)
        first = cli("approve", "entry-ca-0001", "--as", "carol", "--reason", "legal path confirmed", "--ledger", path)
        assert first.exit_code == 0, first.output
        assert "recorded: carol (board) approved entry-ca-0001" in first.stdout
        assert "1 of 2 approvals" in first.stdout
        again = cli("approve", "entry-ca-0001", "--as", "carol", "--reason", "really", "--ledger", path)
        assert again.exit_code == 1
        assert "counts once" in again.stderr
        second = cli("approve", "entry-ca", "--as", "dave", "--reason", "agreed", "--ledger", path, "--json")
        assert second.exit_code == 0, second.output
        assert json.loads(second.stdout)["status"] == "approved"
        world.step(2)
        resolved = [
            d.envelope.payload
            for d in world.bus.range(topics.VERDICTS)
            if d.envelope and isinstance(d.envelope.payload, EscalationResolved)
        ]
        assert [(r.proposal_id, r.outcome, r.approvers) for r in resolved] == [
            ("entry-ca-0001", "approved", ["carol", "dave"])
        ]
        auths = [
            d.envelope.payload
            for d in world.bus.range(topics.AUTHORIZATIONS)
            if d.envelope and isinstance(d.envelope.payload, ActionAuthorized)
        ]
        assert [(a.proposal_id, a.basis) for a in auths] == [("entry-ca-0001", "approval")]
        listed = json.loads(cli("list", "--ledger", path, "--json").stdout)
        assert "entry-ca-0001" not in [r["proposal_id"] for r in listed]

    @pytest.mark.parametrize(
        ("who", "says"),
        [
            pytest.param("finance", "cannot decide it", id="proposer"),
            pytest.param("agent:finance", "cannot decide it", id="agent-prefix"),
            pytest.param("bob", "bob holds cfo; gate market_entry needs one of board", id="wrong-role"),
            pytest.param("mallory", "not in the policy's approver directory", id="unknown-approver"),
        ],
    )
    def test_refused_approvals_exit_1(self, world: World, who: str, says: str) -> None:
        """Separation of duties and roles are enforced; nothing is written."""
        before = world.ledger.count()
        result = cli("approve", "entry-ca-0001", "--as", who, "--reason", "x", "--ledger", str(world.path))
        assert result.exit_code == 1
        assert result.stderr.startswith("refused: ")
        assert says in result.stderr
        assert world.ledger.count() == before

    def test_hash_mismatch_is_refused(self, world: World) -> None:
        """--hash of another proposal does not bind."""
        result = cli(
            "approve",
            "entry-ca-0001",
            "--as",
            "carol",
            "--reason",
            "x",
            "--hash",
            "ab" * 32,
            "--ledger",
            str(world.path),
        )
        assert result.exit_code == 1
        assert "binds to the exact proposal" in result.stderr

    def test_reject_then_approve_is_refused(self, world: World) -> None:
        """alice rejects the credential change; frank can no longer approve it; governance denies it."""
        path = str(world.path)
        rejected = cli("reject", "rotate-0003", "--as", "alice", "--reason", "rotate after the audit", "--ledger", path)
        assert rejected.exit_code == 0, rejected.output
        assert "escalation rejected" in rejected.stdout
        late = cli("approve", "rotate-0003", "--as", "frank", "--reason", "x", "--ledger", path)
        assert late.exit_code == 1
        assert "already decided: rejected by alice" in late.stderr
        world.step(2)
        resolved = [
            d.envelope.payload
            for d in world.bus.range(topics.VERDICTS)
            if d.envelope and isinstance(d.envelope.payload, EscalationResolved)
        ]
        assert [(r.proposal_id, r.outcome) for r in resolved] == [("rotate-0003", "rejected")]

    def test_approve_then_reject_names_each_side(self, world: World) -> None:
        """carol approves (1 of 2), dave rejects: the resolution says dave rejected and carol had approved —
        never "rejected by carol" — in the ledger, its search and its CSV (on main: "rejected by carol (board),
        dave (board)")."""
        path = str(world.path)
        ok = cli("approve", "entry-ca-0001", "--as", "carol", "--reason", "legal path confirmed", "--ledger", path)
        assert ok.exit_code == 0, ok.output
        no = cli("reject", "entry-ca-0001", "--as", "dave", "--reason", "too costly now", "--ledger", path)
        assert no.exit_code == 0, no.output
        world.step(2)
        (resolved,) = [
            d.envelope.payload
            for d in world.bus.range(topics.VERDICTS)
            if d.envelope and isinstance(d.envelope.payload, EscalationResolved)
        ]
        assert resolved.approvers == ["dave"]
        assert resolved.reason == (
            "rejected by dave (board): too costly now; approved before that by carol (board): legal path confirmed"
        )
        ledger = runner.invoke(app, ["ledger", "list", "--ledger", path, "--kind", "resolution", "--csv"])
        assert ledger.exit_code == 0, ledger.output
        assert "rejected by dave (board): too costly now; approved before that by carol" in ledger.stdout
        assert "rejected by carol" not in ledger.stdout
        found = runner.invoke(app, ["ledger", "list", "--ledger", path, "--search", "rejected dave", "--json"])
        assert [e["subject"] for e in json.loads(found.stdout)] == ["entry-ca-0001"]

    def test_the_runs_policy_file_is_used(self, tmp_path: Path, sealed_keys: Path) -> None:
        """run.started.settings['policy_path'] names the policy: its approver directory decides."""
        data = yaml.safe_load((Path(__file__).parents[2] / "packs/helios/policies/helios.yaml").read_text())
        data["approvers"]["zoe"] = ["board"]
        policy_path = tmp_path / "custom.yaml"
        policy_path.write_text(yaml.safe_dump(data))
        zoe = tmp_path / "zoe"
        ApproverKeys(zoe).create("zoe", PASSWORD)
        w = build(tmp_path, load_policy(policy_path), {"policy_path": str(policy_path)}, sealed=zoe)
        try:
            result = cli("approve", "entry-ca-0001", "--as", "zoe", "--reason", "ok", "--ledger", str(w.path))
            assert result.exit_code == 0, result.output
        finally:
            w.ledger.close()


class TestAmendADraft:
    """finance in the assistive lane: its market entry is a draft (gate draft_review) the CFO amends from the CLI."""

    @pytest.fixture
    def drafts(self, tmp_path: Path, sealed_keys: Path) -> Any:
        lanes = {"finance": {"lane": "assistive", "reviewers": ["cfo"]}}
        policy = Policy.model_validate({**default_policy().document, "lanes": lanes})
        w = build(tmp_path, policy, {"policy_document": policy.document}, sealed=sealed_keys)
        yield w
        w.ledger.close()

    def test_the_cfo_amends_the_draft_and_governance_resolves_it_with_the_adopted_arguments(
        self, drafts: World
    ) -> None:
        """The amended arguments are recorded with the signed decision; nothing is authorized for the draft."""
        path = str(drafts.path)
        shown = json.loads(cli("show", "entry-ca", "--ledger", path, "--json").stdout)
        assert shown["gate"] == "draft_review"
        assert "governance evaluates it like any proposal" in shown["if_approved"]
        amend = '{"investment_usd": 250000}'
        result = cli("approve", "entry-ca", "--as", "bob", "--reason", "smaller first step", "--amend", amend,
                     "--ledger", path)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "recorded: bob (cfo) amended entry-ca-0001" in result.stdout
        drafts.step(2)
        resolved = [
            d.envelope.payload
            for d in drafts.bus.range(topics.VERDICTS)
            if d.envelope is not None and isinstance(d.envelope.payload, EscalationResolved)
        ]
        assert [(r.proposal_id, r.adopted_args) for r in resolved] == [
            ("entry-ca-0001", {"region": "CA", "sequence": 1, "investment_usd": 250000})
        ]
        authorized = [d for d in drafts.bus.range(topics.AUTHORIZATIONS) if d.envelope is not None]
        assert not [d for d in authorized if d.envelope and d.envelope.payload.proposal_id == "entry-ca-0001"]

    @pytest.mark.parametrize(
        ("proposal", "amend", "code", "says"),
        [
            pytest.param("entry-ca", "{not json", 2, "--amend: not JSON", id="not-json"),
            pytest.param("entry-ca", "[1, 2]", 2, "--amend: give a JSON object", id="not-an-object"),
            pytest.param("entry-ca", '{"investment_usd": "lots"}', 1, "refused: cannot amend: ", id="off-schema"),
            pytest.param(
                "study", '{"cost_usd": 1}', 1, "gate budget_overrun is not an assistive draft", id="not-a-draft"
            ),
        ],
    )
    def test_a_bad_amendment_is_one_line_and_records_nothing(
        self, drafts: World, proposal: str, amend: str, code: int, says: str
    ) -> None:
        before = len(list(drafts.ledger.iter_entries(run_id=RUN)))
        who = "bob"
        result = cli("approve", proposal, "--as", who, "--reason", "r", "--amend", amend, "--ledger", str(drafts.path))
        assert result.exit_code == code, result.output
        assert len(result.stderr.strip().splitlines()) == 1
        assert says in result.stderr
        assert len(list(drafts.ledger.iter_entries(run_id=RUN))) == before


class TestBadInput:
    """Bad input: one line on stderr, exit 2."""

    @pytest.mark.parametrize(
        ("args", "says"),
        [
            pytest.param(["show", "nope"], "no escalation 'nope' in run run-cli (pending: ", id="unknown-id"),
            pytest.param(["approve", "entry-ca-0001", "--reason", "x"], "Missing option '--as'", id="missing-as"),
            pytest.param(
                ["approve", "entry-ca-0001", "--as", "carol", "--reason", " "],
                "--reason must say why",
                id="blank-reason",
            ),
            pytest.param(["list", "--run", "other"], "no run 'other'", id="unknown-run"),
            pytest.param(["list", "--bogus"], "No such option", id="unknown-option"),
            pytest.param(["show", "e"], "matches 1", id="ambiguous-prefix-is-fine-when-unique"),
        ],
    )
    def test_one_line_exit_2(self, world: World, args: list[str], says: str) -> None:
        """Each mistake is named on a single line."""
        result = cli(*args, "--ledger", str(world.path))
        if says == "matches 1":  # 'e' prefixes exactly one id: not an error
            assert result.exit_code == 0, result.output
            return
        assert result.exit_code == 2, result.output
        assert len(result.stderr.strip().splitlines()) == 1
        assert says in result.stderr

    def test_no_ledger(self, tmp_path: Path) -> None:
        """A missing ledger file is a one-line error."""
        result = cli("list", "--ledger", str(tmp_path / "missing.db"))
        assert result.exit_code == 2
        assert result.stderr.startswith("error: no ledger at ")


def ledger_cli(*args: str) -> Any:
    """`coalition ledger …` with the same data directory as the decisions (the ledger's folder: keys, witness)."""
    ledger = Path(args[args.index("--ledger") + 1])
    return runner.invoke(app, ["ledger", *args], env={"COALITION_DATA_DIR": str(ledger.parent)})


def resolutions(world: World) -> list[tuple[str, str]]:
    return [
        (d.envelope.payload.proposal_id, d.envelope.payload.outcome)
        for d in world.bus.range(topics.VERDICTS)
        if d.envelope and isinstance(d.envelope.payload, EscalationResolved)
    ]


class TestWhoDecides:
    """A decision proves who took it: the approver's signing key, opened by their password; governance and
    `ledger verify` check every decision's signature against the run's recorded approver directory."""

    def test_no_password_or_a_wrong_one_records_nothing(self, world: World) -> None:
        """--as carol alone is not enough: without carol's password (empty stdin, wrong password) it is refused."""
        path = str(world.path)
        before = world.ledger.count()
        for password in ("", "not carols password"):
            result = cli(
                "approve", "entry-ca-0001", "--as", "carol", "--reason", "x", "--ledger", path, password=password
            )
            assert result.exit_code == 1, result.output
            assert result.stderr.startswith("refused: ")
            assert "password" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
        # no stdin at all (not a terminal, no --password-stdin): refused too, never a silent decision
        bare = cli("approve", "entry-ca-0001", "--as", "carol", "--reason", "x", "--ledger", path, password=None)
        assert bare.exit_code == 1
        assert world.ledger.count() == before
        world.step(2)
        assert resolutions(world) == []

    def test_a_key_of_ones_own_named_carol_is_refused(self, world: World, tmp_path: Path) -> None:
        """mallory seals a key of her own as 'carol' in a data directory she controls: the run's directory
        holds carol's real public key, so the decision is refused and nothing is recorded."""
        mallory_dir = tmp_path / "mallory"
        ApproverKeys(mallory_dir / "keys" / "approvers").create("carol", "mallorys password")
        before = world.ledger.count()
        result = runner.invoke(
            app,
            [
                "approvals",
                "reject",
                "entry-ca-0001",
                "--as",
                "carol",
                "--reason",
                "no",
                "--password-stdin",
                "--ledger",
                str(world.path),
            ],
            input="mallorys password\n",
            env={"COALITION_DATA_DIR": str(mallory_dir)},
        )
        assert result.exit_code == 1, result.output
        assert "the signature is not carol's" in result.stderr
        assert world.ledger.count() == before

    def test_the_python_api_refuses_a_non_approver_key_and_an_unsigned_decision(self, world: World) -> None:
        """Past the CLI, record_decision itself refuses a decision signed by any other key, or by none."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from coalition.governance.approvals import record_decision

        common = {"run_id": RUN, "proposal_id": "entry-ca-0001", "approver": "carol", "decision": "approve"}
        forged = record_decision(world.ledger, **common, reason="x", key=Ed25519PrivateKey.generate())  # type: ignore[arg-type]
        assert (forged.accepted, forged.code) == (False, "bad_signature")
        unsigned = record_decision(world.ledger, **common, reason="x")  # type: ignore[arg-type]
        assert (unsigned.accepted, unsigned.code) == (False, "unsigned")
        scripted = record_decision(
            world.ledger, **common, reason="x", method="scenario-board", key=scripted_key("carol")
        )  # type: ignore[arg-type]
        assert (scripted.accepted, scripted.code) == (False, "bad_signature")  # a test identity in a human's run
        assert "interactive run" in scripted.reason

    def test_decisions_written_past_the_service_decide_nothing_and_verify_names_them(self, world: World) -> None:
        """Two genuine CLI approvals verify; then an approval forged with the ledger API (valid hash chain, carol's
        name, a copy of her signature over a different reason) is ignored by governance and named by verify."""
        path = str(world.path)
        assert (
            cli("approve", "rotate-0003", "--as", "alice", "--reason", "leak confirmed", "--ledger", path).exit_code
            == 0
        )
        ok = ledger_cli("verify", "--ledger", path)
        assert ok.exit_code == 0, ok.output
        assert "1 decision signatures verified" in ok.stdout
        genuine = next(e for e in world.ledger.iter_entries(run_id=RUN) if e.kind == "approval")
        pending = json.loads(cli("list", "--run", RUN, "--ledger", path, "--json").stdout)
        entry_hash = next(i["proposal_hash"] for i in pending if i["proposal_id"] == "entry-ca-0001")
        forged_payload = {
            **genuine.payload,
            "proposal_id": "entry-ca-0001",
            "proposal_hash": entry_hash,  # the right proposal, so only the signature can tell it is forged
            "approver": "carol",
            "role": "board",
            "reason": "go",
        }
        draft = EntryDraft.model_validate(
            {
                **genuine.model_dump(include=set(EntryDraft.model_fields)),
                "subject": "entry-ca-0001",
                "actor": "human:carol",
                "approver": "carol",
                "payload": forged_payload,
                "message_id": "decision-forged",
                "gate": "market_entry",
            }
        )
        forged = world.ledger.append([draft])[0]
        dave = cli("approve", "entry-ca-0001", "--as", "dave", "--reason", "agreed", "--ledger", path)
        assert dave.exit_code == 0, dave.output
        # the inbox agrees with governance: the forged approval is not counted, so the item is still pending
        assert "1 of 2 approvals; another approver is needed" in dave.stdout
        listed = cli("list", "--run", RUN, "--ledger", path, "--json")
        item = next(i for i in json.loads(listed.stdout) if i["proposal_id"] == "entry-ca-0001")
        assert (item["status"], [a["approver"] for a in item["approvals"]]) == ("pending", ["dave"])
        world.step(2)
        # … but governance took only dave's signed approval: the market entry is still waiting for a second one
        assert ("entry-ca-0001", "approved") not in resolutions(world)
        bad = ledger_cli("verify", "--ledger", path)
        assert bad.exit_code == 1
        assert f"BAD DECISION SIGNATURE at seq {forged.seq} (run {RUN})" in bad.stdout
