"""The assistive lane: the model drafts, a person adopts, amends or drops, governance disposes of what the person
adopted. price-spike with finance assistive, its board amending both surge drafts (one to the surge cap, one above
the price ceiling): one recorded run for the module, replayed IDENTICAL; then governance alone, attacked with
finals that are not what the person adopted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from coalition.bus import topics
from coalition.bus.clock import IdFactory, SimulatedClock
from coalition.bus.envelope import Envelope
from coalition.bus.keys import APPROVERS_DIR, ApproverKeys
from coalition.bus.memory import MemoryBus
from coalition.bus.message import Message
from coalition.bus.messages import (
    ActionAuthorized,
    ActionProposed,
    EscalationResolved,
    LaneChoice,
    Observation,
    ProposalHeld,
    RunStarted,
    VerdictIssued,
)
from coalition.governance import GovernanceService, default_policy, record_decision
from coalition.governance.approvals import load_escalations
from coalition.governance.decision_signatures import RunIdentities, entry_problem, scripted_key
from coalition.governance.policy import Policy, parse_policy
from coalition.ledger.base import LedgerQuery
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.recorder import Recorder
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.board_divergence import divergences
from coalition.scenarios.replay import ReplayResult, replay
from coalition.scenarios.runner import DayProgress, RunnerOptions, RunResult
from coalition.scenarios.spec import Scenario, parse_scenario

pytestmark = pytest.mark.integration

LIBRARY = Path(__file__).parents[2] / "packs" / "helios" / "scenarios"
RUN = "assist"


def assistive_policy() -> Policy:
    lanes = {"finance": {"lane": "assistive", "reviewers": ["cfo"], "actions": {"commit_capital": "transactional"}}}
    return parse_policy({**default_policy().document, "lanes": lanes}, source="helios+assistive")


def amend(price_drafted: float, price: float, reason: str) -> dict[str, Any]:
    return {
        "match": {"gate": "draft_review", "agent": "finance", "action": "set_price", "args": {"price": price_drafted}},
        "decision": "amend",
        "args": {"price": price},
        "approvers": [{"name": "bob", "role": "cfo"}],
        "reason": reason,
    }


def amended_price_spike() -> Scenario:
    """price-spike whose scripted board amends finance's two drafted prices."""
    doc = yaml.safe_load((LIBRARY / "price-spike.yaml").read_text())
    doc["board"]["decisions"] = [
        amend(114.55, 72.5, "Price at the surge cap, not above it."),
        amend(101.5, 300, "A deliberate test: above the price ceiling."),
        *doc["board"]["decisions"],
    ]
    return parse_scenario(yaml.safe_dump(doc))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteLedger, RunResult]]:
    scenario = amended_price_spike()
    ledger = SqliteLedger(tmp_path_factory.mktemp("assist") / "ledger.db")
    result = assemble_run(
        scenario, bus=MemoryBus.for_run(RUN), ledger=ledger, run_id=RUN, policy=assistive_policy()
    ).run()
    yield ledger, result
    ledger.close()


def entries(ledger: SqliteLedger, kind: str) -> list[LedgerEntry]:
    return list(ledger.query(LedgerQuery(run_id=RUN, kind=kind)))


class TestDraftDecisionFinal:
    def test_each_draft_is_escalated_for_review_and_nothing_drafted_is_authorized(
        self, recorded: tuple[SqliteLedger, RunResult]
    ) -> None:
        ledger, _ = recorded
        drafts = [e for e in entries(ledger, "proposal") if e.payload.get("choice", {}).get("chosen_by") == "model"]
        assert [d.payload["args"]["price"] for d in drafts] == [114.55, 101.5]
        reviews = {e.subject: e for e in entries(ledger, "verdict") if e.payload.get("gate") == "draft_review"}
        assert set(reviews) == {d.subject for d in drafts}
        assert all(r.outcome == "escalate" and r.payload["approver_roles"] == ["cfo"] for r in reviews.values())
        assert "would be denied: price 114.55 exceeds surge cap" in reviews[drafts[0].subject].payload["reasons"][0]
        authorized = {e.subject for e in entries(ledger, "authorization")}
        assert not authorized & set(reviews)

    def test_the_amended_arguments_are_signed_and_a_changed_amendment_no_longer_verifies(
        self, recorded: tuple[SqliteLedger, RunResult]
    ) -> None:
        ledger, _ = recorded
        approvals = [e for e in entries(ledger, "approval") if "args" in e.payload]
        assert [a.payload["args"] for a in approvals] == [
            {"price": 72.5, "region": "TX"},
            {"price": 300, "region": "TX"},
        ]
        started = ledger.query(LedgerQuery(run_id=RUN, kind="run", limit=1))[0]
        identities = RunIdentities.from_settings(started.payload["settings"], run_id=RUN)
        first = approvals[0]
        assert entry_problem(first.payload, first.kind, first.sim_time, identities) is None
        forged = {**first.payload, "args": {"price": 250, "region": "TX"}}
        assert entry_problem(forged, first.kind, first.sim_time, identities) is not None

    def test_governance_evaluates_what_the_person_adopted_and_still_denies_it_over_a_limit(
        self, recorded: tuple[SqliteLedger, RunResult]
    ) -> None:
        ledger, _ = recorded
        finals = [e for e in entries(ledger, "proposal") if e.payload.get("choice", {}).get("chosen_by") == "human"]
        assert [(f.payload["args"]["price"], f.payload["choice"]["amended"]) for f in finals] == [
            (72.5, True),
            (300, True),
        ]
        verdicts = {e.subject: e.outcome for e in entries(ledger, "verdict")}
        assert [verdicts[f.subject] for f in finals] == ["allow", "deny"]
        executed = [e.payload for e in entries(ledger, "execution") if e.payload["action"] == "set_price"]
        assert [e["proposal_id"] for e in executed] == [finals[0].subject]
        resolved = [e.payload for e in entries(ledger, "resolution") if e.payload.get("adopted_args")]
        assert [r["reason"].split(":")[0] for r in resolved] == ["draft amended by bob (cfo)"] * 2

    def test_the_run_replays_identical(self, recorded: tuple[SqliteLedger, RunResult]) -> None:
        ledger, _ = recorded
        result: ReplayResult = replay(ledger, RUN)
        assert result.identical, result.divergence

    def test_drafts_people_decided_are_compared_with_the_boards_amendment(
        self, recorded: tuple[SqliteLedger, RunResult]
    ) -> None:
        """As if people (not the board) had decided the drafts, as in an interactive run: the board's answer there
        is an amendment, which approves (coalition run's summary and coalition report compare them; a KeyError)."""
        ledger, _ = recorded
        drafts = {e.subject for e in entries(ledger, "verdict") if e.payload.get("gate") == "draft_review"}
        by_people = [
            e
            for e in ledger.iter_entries(run_id=RUN)
            if not (e.kind == "approval" and e.subject in drafts and e.payload.get("method") == "scenario-board")
        ]
        assert not [d for d in divergences(by_people, amended_price_spike()) if d.proposal_id in drafts]


START = datetime(2025, 3, 10, 9, tzinfo=UTC)
T = TypeVar("T", bound=Message)


class GovernanceLoop:
    """The governance service alone with an assistive policy; the agent is played by the test."""

    def __init__(self, ledger: SqliteLedger, policy: Policy | None = None) -> None:
        self.policy = policy or assistive_policy()
        self.bus = MemoryBus(namespace="g")
        self.ledger = ledger
        self.clock = SimulatedClock(START)
        self.ids = IdFactory("seed-assist").child("world")
        self.recorder = Recorder(self.bus, ledger)
        self.service = GovernanceService(
            self.bus, ledger, self.policy, ids=IdFactory("seed-assist"), clock=self.clock, run_id="g"
        )
        self.superstep = 0
        policy = self.policy
        started = RunStarted(
            scenario="t", scenario_hash="h", seed=1, policy_version=policy.version, start=START, days=3
        )
        self.emit("runner", started, topics.CONTROL)
        self.recorder.flush()

    def emit(self, source: str, message: Message, topic: str) -> None:
        envelope = Envelope.wrap(
            message, id=self.ids.new(), source=source, run_id="g", superstep=self.superstep, sim_time=self.clock.now()
        )
        self.bus.publish(topic, envelope)

    def propose(self, pid: str, price: float, *, supersedes: str | None = None) -> None:
        choice = LaneChoice(lane="assistive", chosen_by="human" if supersedes else "model", engine_action="set_price")
        proposal = ActionProposed(
            proposal_id=pid,
            agent="finance",
            action="set_price",
            args={"region": "TX", "price": price},
            rationale="finance drafts a price",
            supersedes=supersedes,
            choice=choice,
        )
        self.emit("agent:finance", proposal, topics.PROPOSALS)

    def step(self) -> None:
        self.superstep += 1
        self.service.accept_decisions()
        self.service.step(self.superstep)
        self.recorder.flush()

    def verdict(self, pid: str) -> VerdictIssued:
        found = [
            d.envelope.payload
            for d in self.bus.range(topics.VERDICTS)
            if d.envelope is not None
            and isinstance(d.envelope.payload, VerdictIssued)
            and d.envelope.payload.proposal_id == pid
        ]
        return found[-1]

    def payloads(self, kind: type[T]) -> list[T]:
        return [
            d.envelope.payload
            for topic in (topics.VERDICTS, topics.AUTHORIZATIONS)
            for d in self.bus.range(topic)
            if d.envelope is not None and isinstance(d.envelope.payload, kind)
        ]

    def resolved(self, pid: str) -> EscalationResolved:
        return next(
            d.envelope.payload
            for d in self.bus.range(topics.VERDICTS)
            if d.envelope is not None
            and isinstance(d.envelope.payload, EscalationResolved)
            and d.envelope.payload.proposal_id == pid
        )

    def decide(self, pid: str, decision: Any, **amend: Any) -> str:
        result = record_decision(
            self.ledger,
            run_id="g",
            proposal_id=pid,
            approver="bob",
            decision=decision,
            reason="reviewed",
            method="scenario-board",
            key=scripted_key("bob"),
            policy=self.policy,
            amend=amend or None,
        )
        return result.reason if not result.accepted else "recorded"


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[GovernanceLoop]:
    ledger = SqliteLedger(tmp_path / "g.db")
    yield GovernanceLoop(ledger)
    ledger.close()


class TestOnlyWhatThePersonAdoptedIsEvaluated:
    def test_a_final_with_other_arguments_or_a_second_final_is_denied(self, loop: GovernanceLoop) -> None:
        loop.propose("d1", 64.0)
        loop.step()
        assert loop.verdict("d1").gate == "draft_review"
        assert loop.decide("d1", "approve", price=62.0) == "recorded"
        loop.step()
        assert loop.resolved("d1").adopted_args == {"region": "TX", "price": 62.0}
        loop.propose("f-wrong", 64.0, supersedes="d1")  # the model's price, not the person's
        loop.step()
        wrong = loop.verdict("f-wrong")
        assert wrong.outcome == "deny"
        assert "not the ones the person adopted" in wrong.reasons[0]
        loop.propose("f-late", 62.0, supersedes="d1")  # the adoption was used up by the first final
        loop.step()
        late = loop.verdict("f-late")
        assert late.outcome == "deny"
        assert "already finalised by f-wrong" in late.reasons[0]

    def test_another_agent_naming_the_draft_neither_finalises_it_nor_uses_the_adoption_up(
        self, loop: GovernanceLoop
    ) -> None:
        """A proposal from another agent (here marketing, in no model lane) that names finance's adopted draft as
        the one it supersedes, with the adopted arguments: denied, and finance's own final is still evaluated."""
        loop.propose("d3", 64.0)
        loop.step()
        assert loop.decide("d3", "approve", price=62.0) == "recorded"
        loop.step()
        forged = ActionProposed(
            proposal_id="m-forged",
            agent="marketing",
            action="set_price",
            args={"region": "TX", "price": 62.0},
            rationale="marketing names finance's draft",
            supersedes="d3",
        )
        loop.emit("agent:marketing", forged, topics.PROPOSALS)
        loop.step()
        assert loop.verdict("m-forged").outcome == "deny"
        loop.propose("f3", 62.0, supersedes="d3")
        loop.step()
        final = loop.verdict("f3")  # evaluated like any proposal (no market snapshot here: the surge rule's deny)
        assert "lane.assistive" not in final.rule_ids, final.reasons
        assert not any("already finalised" in r for r in final.reasons)

    def test_a_final_of_a_dropped_draft_is_denied_and_an_amendment_must_fit_the_schema(
        self, loop: GovernanceLoop
    ) -> None:
        loop.propose("d2", 64.0)
        loop.step()
        assert loop.decide("d2", "reject", price=60.0).startswith("cannot amend: only an approval amends")
        assert loop.decide("d2", "approve", price="cheap").startswith("cannot amend: ")
        assert loop.decide("d2", "reject") == "recorded"
        loop.step()
        loop.propose("f2", 64.0, supersedes="d2")
        loop.step()
        final = loop.verdict("f2")
        assert final.outcome == "deny"
        assert "was rejected, not adopted" in final.reasons[0]

    def test_only_a_draft_can_be_amended(self, loop: GovernanceLoop) -> None:
        proposal = ActionProposed(
            proposal_id="cap",
            agent="finance",
            action="commit_capital",
            args={"amount_usd": 750000, "purpose": "storage"},
            rationale="finance commits capital",
        )
        loop.emit("agent:finance", proposal, topics.PROPOSALS)
        loop.step()
        assert loop.verdict("cap").gate == "capital_commitment"
        refused = loop.decide("cap", "approve", amount_usd=1)
        assert refused.startswith("cannot amend: gate capital_commitment is not an assistive draft")


class TestWhatADraftHolds:
    """A proposal held by an open draft (a shared dependency key) waits for the final proposal's verdict, not the
    adoption: adopting a draft authorizes nothing, so it cannot release what depends on it."""

    @pytest.fixture(params=["auto", "always-human"])
    def held(self, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[GovernanceLoop]:
        document = dict(assistive_policy().document)
        document["holds"] = {**document["holds"], "dependency_keys": ["incident_id", "region"]}
        if request.param == "always-human":  # the final of an adopted price escalates at the pricing gate
            tier = {"tier": "always-human", "gate": "pricing_policy_change"}
            document["tiers"] = {"actions": {"set_price": tier}}
        ledger = SqliteLedger(tmp_path / "h.db")
        loop = GovernanceLoop(ledger, parse_policy(document, source="helios+assistive+region holds"))
        snapshot = Observation(kind="market.snapshot", data={"prices": {"TX": {"price": 60, "base_price": 60}}})
        loop.emit("world", snapshot, topics.OBSERVATIONS)
        loop.propose("d", 64.0)
        loop.step()
        campaign = ActionProposed(
            proposal_id="camp",
            agent="marketing",
            action="launch_campaign",
            args={
                "campaign_id": "c1",
                "region": "TX",
                "channel": "email",
                "copy": "Power for less",
                "claims": [],
                "budget_usd": 1000,
                "discount_pct": 5,
            },
            rationale="a Texas campaign",
        )
        loop.emit("agent:marketing", campaign, topics.PROPOSALS)
        loop.step()
        assert [p.proposal_id for p in loop.payloads(ProposalHeld)] == ["camp"]
        yield loop
        ledger.close()

    def test_adopting_the_draft_does_not_release_it_and_a_denied_final_cancels_it(self, held: GovernanceLoop) -> None:
        assert held.decide("d", "approve", price=300.0) == "recorded"  # above the 250 ceiling
        held.step()
        assert not [v for v in held.payloads(VerdictIssued) if v.proposal_id == "camp"]  # still held
        held.propose("f", 300.0, supersedes="d")
        held.step()
        assert held.verdict("f").outcome == "deny"
        cancelled = held.verdict("camp")
        assert cancelled.outcome == "deny"
        assert "gate.holds_dependents" in cancelled.rule_ids
        assert not [a for a in held.payloads(ActionAuthorized) if a.proposal_id == "camp"]

    def test_an_allowed_final_releases_it_and_an_escalated_one_holds_it_in_turn(self, held: GovernanceLoop) -> None:
        assert held.decide("d", "approve", price=62.0) == "recorded"
        held.step()
        held.propose("f", 62.0, supersedes="d")
        held.step()
        if held.policy.tiers.empty:
            assert held.verdict("f").outcome == "allow"
            assert held.verdict("camp").outcome == "allow"
            return
        assert held.verdict("f").gate == "pricing_policy_change"
        holds = [(h.proposal_id, h.held_by) for h in held.payloads(ProposalHeld)]
        assert holds == [("camp", "d"), ("camp", "f")]  # now waiting for the final's own escalation
        assert not [v for v in held.payloads(VerdictIssued) if v.proposal_id == "camp"]


class _Down(Exception):
    """Raised from the day callback: the run stops as a crashed interactive run would, still open."""


class TestADraftAmendedWhileTheRunIsDown:
    def test_the_resumed_run_takes_the_amendment_and_proposes_the_adopted_price_once(self, tmp_path: Path) -> None:
        """An interactive run stops with finance's first draft pending; the CFO amends it (signed with her key)
        while the run is down; the resumed run re-executes, takes the decision, proposes the adopted price once,
        and the whole run replays IDENTICAL."""
        keys = ApproverKeys(tmp_path / "keys" / APPROVERS_DIR)
        directory = {"bob": keys.create("bob", "correct horse battery")}
        lanes = {"finance": {"lane": "assistive", "reviewers": ["cfo"], "review_hours": 96}}
        policy = parse_policy({**default_policy().document, "lanes": lanes}, source="assistive, 96 h reviews")
        scenario = parse_scenario((LIBRARY / "price-spike.yaml").read_text())
        ledger = SqliteLedger(tmp_path / "ledger.db")

        def stop_after_day_two(progress: DayProgress) -> None:
            if progress.day == 2:
                raise _Down

        def attempt(on_day: Any) -> RunResult:
            options = RunnerOptions(
                interactive=True,
                approval_wait_seconds=0,
                poll_seconds=0.01,
                settings={"approver_keys": directory},
                on_day=on_day,
            )
            bus = MemoryBus.for_run("down")
            return assemble_run(scenario, bus=bus, ledger=ledger, run_id="down", policy=policy, options=options).run()

        try:
            with pytest.raises(_Down):
                attempt(stop_after_day_two)
            pending = [e for e in load_escalations(ledger, run_id="down", policy=policy) if e.is_open]
            assert [(e.gate, e.proposal.args["price"]) for e in pending] == [("draft_review", 114.55)]
            decided = record_decision(
                ledger,
                run_id="down",
                proposal_id=pending[0].proposal_id,
                approver="bob",
                decision="approve",
                reason="at the surge cap",
                key=keys.unlock("bob", "correct horse battery"),
                policy=policy,
                amend={"price": 72.5},
            )
            assert decided.accepted, decided.reason
            result = attempt(None)
            assert result.status == "completed"
            finals = [
                e for e in ledger.query(LedgerQuery(run_id="down", kind="proposal"))
                if e.payload.get("choice", {}).get("draft") == pending[0].proposal_id
            ]  # fmt: skip
            assert [f.payload["args"]["price"] for f in finals] == [72.5]
            verdicts = {e.subject: e.outcome for e in ledger.query(LedgerQuery(run_id="down", kind="verdict"))}
            assert verdicts[finals[0].subject] == "allow"
            replayed = replay(ledger, "down")
            assert replayed.identical, replayed.divergence
        finally:
            ledger.close()
