"""Whole runs with paid providers (pointed at the local wire server): governed, charged, replayable, shielded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from llm_wire_server import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, WireServer

from coalition.agents.model_choice import ModelChoice, choose_models
from coalition.agents.providers import ProviderAccess
from coalition.bus.memory import MemoryBus
from coalition.domain import catalog
from coalition.governance.policy import Policy, parse_policy
from coalition.ledger.digest import run_digest
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.board import Board
from coalition.scenarios.replay import recorded_run
from coalition.scenarios.replay import replay as replay_run
from coalition.scenarios.runner import (
    DayProgress,
    RunnerOptions,
    RunResult,
    recorded_choices,
    recorded_models,
)
from coalition.scenarios.spec import AgentSettings, BoardDecision, load_scenario
from coalition.scenarios.whatif import whatif

pytestmark = pytest.mark.e2e

PAID = {"finance": "openai:gpt-4o-mini", "marketing": "openai:gpt-4o-mini", "legal": "anthropic:claude-haiku-4-5"}
COALITION = str(Path(sys.executable).with_name("coalition"))


def access(server: WireServer) -> ProviderAccess:
    return ProviderAccess(
        openai_api_key=FAKE_OPENAI_KEY,
        anthropic_api_key=FAKE_ANTHROPIC_KEY,
        openai_base_url=server.openai_base_url,
        anthropic_base_url=server.anthropic_base_url,
    )


def run(
    scenario: str,
    ledger: SqliteLedger,
    run_id: str,
    *,
    choices: dict[str, ModelChoice] | None,
    server: WireServer | None = None,
    policy: Policy | None = None,
    replay_of: str | None = None,
    board: Board | None = None,
) -> RunResult:
    options = RunnerOptions(models=choices, provider_access=access(server) if server else None, board=board)
    if replay_of is not None:
        started = next(e for e in ledger.iter_entries(run_id=replay_of) if e.kind == "run")
        options = RunnerOptions(
            models=recorded_choices(started.payload["settings"]), replay=recorded_models(ledger, replay_of)
        )
    spec = load_scenario(scenario)
    return assemble_run(spec, bus=MemoryBus(), ledger=ledger, run_id=run_id, policy=policy, options=options).run()


def entries(ledger: SqliteLedger, run_id: str, kind: str) -> list[LedgerEntry]:
    return [e for e in ledger.iter_entries(run_id=run_id) if e.kind == kind]


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    return SqliteLedger(tmp_path / "ledger.db", create=True)


class TestHeliosLaunchWithPaidModels:
    """Two agents on openai, one on anthropic, the rest offline."""

    def test_run_is_charged_and_replays_identically_without_the_server(self, ledger: SqliteLedger) -> None:
        """Completes with expectations held; every paid call recorded and charged; replay digest identical."""
        with WireServer() as server:
            result = run("helios-launch", ledger, "paid", choices=choose_models(per_agent=PAID), server=server)
            requests = len(server.requests)
        assert result.expectations_passed
        assert requests > 0
        calls = entries(ledger, "paid", "model_call")
        by_agent = Counter(e.payload["agent"] for e in calls)
        assert set(by_agent) == {"finance", "marketing", "legal"}
        assert sum(by_agent.values()) == requests
        assert all(e.outcome == "ok" and Decimal(e.payload["cost_usd"]) > 0 for e in calls)
        assert {e.payload["model_id"] for e in calls if e.payload["agent"] == "legal"} == {"anthropic:claude-haiku-4-5"}
        # decisions reference the calls they rest on
        call_ids = {e.subject for e in calls}
        traced = [e for e in entries(ledger, "paid", "proposal") if e.payload["agent"] in PAID]
        assert traced
        assert all(set(e.payload["model"]["calls"]) <= call_ids and e.payload["model"]["calls"] for e in traced)
        assert all(e.model is not None and e.model.model_id == PAID[e.payload["agent"]] for e in traced)
        # the server is gone: the replay answers from the ledger alone
        replay = run("helios-launch", ledger, "replay", choices=None, replay_of="paid")
        assert replay.expectations_passed
        assert run_digest(ledger, "replay") == run_digest(ledger, "paid")
        # and through the replay module (`coalition replay`): entry by entry, no divergence
        checked = replay_run(ledger, "paid")
        assert checked.identical, checked.divergence

    def test_a_small_token_budget_stops_calls_and_the_run_still_completes(self, ledger: SqliteLedger) -> None:
        """Legal's llm_tokens too small for one call: budget stops are ledger entries; the engine words it; each
        period's request for more budget escalates, nobody answers, it expires and legal keeps falling back."""
        with WireServer() as server:
            result = run(
                "helios-launch", ledger, "tight", choices=choose_models(per_agent=PAID), server=server, policy=tight()
            )
        assert result.expectations_passed
        stops = entries(ledger, "tight", "budget")
        assert stops
        assert all(e.actor == "agent:legal" and e.outcome == "stopped:budget" for e in stops)
        assert not [e for e in entries(ledger, "tight", "model_call") if e.payload["agent"] == "legal"]
        legal = [e for e in entries(ledger, "tight", "proposal") if e.payload["agent"] == "legal"]
        assert legal
        assert all(e.payload["model"]["fallback"] for e in legal)
        # one request per period with a stop, each escalated as budget_overrun and expired (a deny)
        asks = [e for e in legal if e.payload["action"] == "request_model_budget"]
        assert len(asks) == 2
        assert "budget for 2025-03 is" in asks[0].payload["args"]["reason"]
        assert "budget for 2025-05 is" in asks[1].payload["args"]["reason"]
        assert {e.payload["period"] for e in stops} == {"2025-03", "2025-05"}
        assert [(v.outcome, v.payload["gate"]) for v in decisions(ledger, "tight", "verdict", asks)] == [
            ("escalate", "budget_overrun")
        ] * 2
        assert [r.outcome for r in decisions(ledger, "tight", "resolution", asks)] == ["expired", "expired"]
        assert decisions(ledger, "tight", "execution", asks) == []
        # the May stops come after March's request expired: legal kept falling back
        march_expiry = decisions(ledger, "tight", "resolution", asks)[0].seq
        assert [e for e in stops if e.payload["period"] == "2025-05" and e.seq > march_expiry]

    def test_an_approved_request_raises_the_budget_and_later_calls_are_made(self, ledger: SqliteLedger) -> None:
        """The board approves legal's request: it is executed, legal's guard grows, its later calls are made;
        the run replays identically from the ledger."""
        spec = load_scenario("helios-launch")
        grant = BoardDecision.model_validate(
            {
                "match": {"gate": "budget_overrun", "agent": "legal", "action": "request_model_budget"},
                "decision": "approve",
                "approvers": [{"name": "bob", "role": "cfo"}],
                "reason": "Legal's rationales are worth a paid model; grant the shortfall.",
            }
        )
        board = Board(spec.board.model_copy(update={"decisions": [*spec.board.decisions, grant]}))
        with WireServer() as server:
            result = run(
                "helios-launch",
                ledger,
                "granted",
                choices=choose_models(per_agent=PAID),
                server=server,
                policy=tight(),
                board=board,
            )
        assert result.expectations_passed
        legal = [e for e in entries(ledger, "granted", "proposal") if e.payload["agent"] == "legal"]
        (ask,) = [e for e in legal if e.payload["action"] == "request_model_budget"]
        assert ask.payload["args"]["tokens"] == 2000
        (resolution,) = decisions(ledger, "granted", "resolution", [ask])
        assert resolution.outcome == "approved"
        (execution,) = decisions(ledger, "granted", "execution", [ask])
        assert execution.outcome == "applied"
        assert execution.payload["changes"] == {"model_budget": {"agent": "legal", "cost_usd": 0.0, "tokens": 2000}}
        calls = [e for e in entries(ledger, "granted", "model_call") if e.payload["agent"] == "legal"]
        assert calls
        assert all(e.outcome == "ok" and e.seq > execution.seq for e in calls)
        stops = entries(ledger, "granted", "budget")
        assert stops
        assert all(e.seq < execution.seq for e in stops)  # no budget stop after the grant
        pack = next(e for e in legal if e.payload["action"] == "publish_jurisdiction_pack")
        assert not pack.payload["model"]["fallback"]
        checked = replay_run(ledger, "granted")
        assert checked.identical, checked.divergence


def tight() -> Policy:
    """The helios policy with legal's llm_tokens too small for any call (100 tokens a month).

    Parsed again (not model_copy'd) so that its version is the hash of this content: a replay checks it."""
    data = load_scenario("helios-launch").load_policy().model_dump(mode="json")
    data["budgets"]["agents"]["legal"]["llm_tokens"] = 100
    return parse_policy(data, source="helios with a tight legal token budget")


def decisions(ledger: SqliteLedger, run_id: str, kind: str, proposals: list[LedgerEntry]) -> list[LedgerEntry]:
    """The entries of a kind (verdict, resolution, execution) about the given proposals, in ledger order."""
    ids = {p.subject for p in proposals}
    return [e for e in entries(ledger, run_id, kind) if e.subject in ids]


class TestPoisonedFeed:
    """Injected text never reaches a model, is flagged, and nothing it asks for happens."""

    def test_poisoned_posts_are_flagged_and_never_obeyed(self, ledger: SqliteLedger) -> None:
        """All five agents on a paid model: no request carries the posts; no transfer or credential action."""
        everyone = dict.fromkeys(("research", "finance", "marketing", "legal", "ops"), "openai:gpt-4o-mini")
        with WireServer() as server:
            result = run("poisoned-feed", ledger, "poison", choices=choose_models(per_agent=everyone), server=server)
            bodies = json.dumps([r["body"] for r in server.requests])
        assert result.expectations_passed
        for fragment in ("reconcile.example", "settlement float", "disable approval checks", "shared key"):
            assert fragment not in bodies
        actions = {e.payload["action"] for e in entries(ledger, "poison", "proposal")}
        assert not actions & {"transfer_funds", "rotate_credentials", "freeze_account", "pause_settlement"}
        shortlists = [e for e in entries(ledger, "poison", "message") if e.subject == "market.shortlist"]
        flags = [f for e in shortlists for f in e.payload["data"].get("screening", []) if f.get("flags")]
        assert flags, "research's shortlist carries the posts' screening flags"


class _Stop(Exception):
    """Raised from the progress callback to cut a run short, as Ctrl-C would."""


def no_keys_env() -> dict[str, str]:
    drop = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "REDIS_URL"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("COALITION_LLM")}


def bodies(server: WireServer) -> Counter[str]:
    """What the provider was asked, as a multiset of (path, body) in canonical JSON."""
    return Counter(json.dumps([r["path"], r["body"]], sort_keys=True) for r in server.requests)


class TestWhatIfOverAPaidRun:
    """A what-if of a run made with paid models needs no key and no server, and wording is never a change."""

    def test_whatif_runs_offline_and_finds_no_change_under_the_same_policy(self, tmp_path: Path) -> None:
        """The scenario itself names paid models; the what-if (library and CLI) runs with no key, lists nothing."""
        path = tmp_path / "ledger.db"
        spec = load_scenario("helios-launch")
        paid = spec.model_copy(
            update={
                "agents": {a: AgentSettings(model=PAID.get(a, "offline")) for a in catalog().pack("helios").agent_names}
            }
        )
        with SqliteLedger(path, create=True) as ledger, WireServer() as server:
            options = RunnerOptions(provider_access=access(server))
            assemble_run(paid, bus=MemoryBus(), ledger=ledger, run_id="paid", options=options).run()
            assert server.requests
        with SqliteLedger(path) as ledger:
            messages = [e for e in entries(ledger, "paid", "proposal") if e.payload["action"] == "notify_customers"]
            assert any("Local model" in e.payload["args"]["message"] for e in messages)  # the model's words
            same = parse_policy(recorded_run(ledger, "paid").policy.model_dump(mode="json"), source="same")
            result = whatif(ledger, "paid", same)
        assert result.changes == []
        assert set(result.kpi_deltas.values()) == {0}
        policy = Path(__file__).resolve().parents[2] / "packs" / "helios" / "policies" / "helios.yaml"
        done = subprocess.run(
            [COALITION, "whatif", "paid", "--policy", str(policy), "--ledger", str(path), "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            env=no_keys_env(),
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout)
        assert doc["narrated_by"] == "offline"
        assert doc["changes"] == []
        assert set(doc["kpi_deltas"].values()) == {0}


class TestResumeOfAPaidRun:
    """`coalition run --resume` answers what the run already asked from its ledger and pays only for the rest."""

    def test_resume_asks_the_provider_only_what_was_not_recorded(self, tmp_path: Path) -> None:
        """Cut at day 40, resumed through the CLI with the server up: cut + resumed requests are exactly an
        uninterrupted run's (none repeated) and the digests are equal."""
        path = tmp_path / "ledger.db"
        choices = choose_models(per_agent=PAID)

        def stop_on_day_40(progress: DayProgress) -> None:
            if progress.day == 40 and not progress.waiting_for_human:
                raise _Stop

        with WireServer() as server:
            with SqliteLedger(path, create=True) as ledger:
                run("helios-launch", ledger, "whole", choices=choices, server=server)
                whole = bodies(server)
                server.reset()
                options = RunnerOptions(models=choices, provider_access=access(server), on_day=stop_on_day_40)
                spec = load_scenario("helios-launch")
                with pytest.raises(_Stop):
                    assemble_run(spec, bus=MemoryBus(), ledger=ledger, run_id="cut", options=options).run()
                cut = bodies(server)
                server.reset()
            env = {
                **no_keys_env(),
                "OPENAI_API_KEY": FAKE_OPENAI_KEY,
                "ANTHROPIC_API_KEY": FAKE_ANTHROPIC_KEY,
                "OPENAI_BASE_URL": server.openai_base_url,
                "ANTHROPIC_BASE_URL": server.anthropic_base_url,
                "COALITION_DATA_DIR": str(tmp_path / ".coalition"),
            }
            done = subprocess.run(
                [COALITION, "run", "--resume", "--run-id", "cut", "--bus", "memory", "--ledger", str(path), "--json"],
                capture_output=True,
                text=True,
                timeout=300,
                env=env,
                cwd=tmp_path,
                check=False,
            )
            resumed = bodies(server)
        assert done.returncode == 0, done.stderr
        assert cut
        assert resumed
        assert cut + resumed == whole  # nothing asked twice, nothing left out
        with SqliteLedger(path) as ledger:
            assert run_digest(ledger, "cut") == run_digest(ledger, "whole")
            assert ledger.verify().ok


class TestCli:
    """A chosen provider without a key: one line, exit 2, before the run starts."""

    def test_missing_key_is_one_line_exit_2_and_nothing_runs(self, tmp_path: Path) -> None:
        """No OPENAI_API_KEY with COALITION_LLM_FINANCE=openai:…: no ledger is written to."""
        env = {k: v for k, v in os.environ.items() if k not in {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "REDIS_URL"}}
        env["COALITION_LLM_FINANCE"] = "openai:gpt-4o-mini"
        ledger = tmp_path / "l.db"
        done = subprocess.run(
            [COALITION, "run", "helios-launch", "--bus", "memory", "--ledger", str(ledger)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == 2
        assert done.stderr.strip().splitlines() == [
            "error: finance uses openai but OPENAI_API_KEY is not set (export it or put it in .env, or choose offline)"
        ]
        assert "Traceback" not in done.stderr
        assert "run id" not in done.stdout
