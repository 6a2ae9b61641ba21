"""Approval tiers where they meet the rest: chaos-week under the shipped packs/helios/policies/helios-tiers.yaml
(issue_credit sampled at 0.5, marketing's notices sampled at 1, freeze_account always-human through the ops
lead's gate), recorded once per module — whole, and cut after day 3 then resumed — and attacked from the side:
review marks then resume, replay and replay --verify; always-human × resume; forged marks; the report."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalition.bus.keys import public_text
from coalition.bus.memory import MemoryBus
from coalition.governance import load_policy
from coalition.governance.approvals import load_escalations, policy_for_run, record_decision
from coalition.governance.policy import Policy
from coalition.governance.reviews import (
    bound_keys,
    record_review,
    review_queue,
    review_statement,
    verify_reviews,
)
from coalition.governance.tiers import sample_draw
from coalition.ledger.base import LedgerQuery
from coalition.ledger.digest import run_digest
from coalition.ledger.entry import EntryDraft
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.replay import replay
from coalition.scenarios.replay_verify import verify_run
from coalition.scenarios.reports import run_report
from coalition.scenarios.runner import DayProgress, RunnerOptions
from coalition.scenarios.spec import load_scenario

pytestmark = pytest.mark.integration

SHIPPED = Path(__file__).parents[2] / "packs" / "helios" / "policies" / "helios-tiers.yaml"
SEED = 5001  # chaos-week's


class _Cut(Exception):
    """Raised from the day callback: the run stops as a killed process would."""


@dataclass
class Recorded:
    ledger: SqliteLedger
    policy: Policy
    keys: dict[str, Ed25519PrivateKey]

    @property
    def trusted(self) -> dict[str, str]:
        return {name: public_text(key.public_key()) for name, key in self.keys.items()}

    def mark(self, run_id: str, proposal_id: str, reviewer: str = "frank", mark: str = "right", reason: str = ""):  # type: ignore[no-untyped-def]
        return record_review(
            self.ledger,
            run_id=run_id,
            proposal_id=proposal_id,
            reviewer=reviewer,
            mark=mark,  # type: ignore[arg-type]
            reason=reason,
            policy=self.policy,
            key=self.keys.get(reviewer),
            trusted=self.trusted,
        )

    def entries(self, run_id: str, kind: str) -> list[object]:
        return list(self.ledger.query(LedgerQuery(run_id=run_id, kind=kind)))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """'whole': chaos-week under the tiers policy; 'cut': the same run killed after day 3 (the always-human
    freezes approved and executed), reviewed while down, then resumed on a fresh bus."""
    path = tmp_path_factory.mktemp("tiers") / "ledger.db"
    scenario = load_scenario("chaos-week")
    policy = load_policy(SHIPPED)
    keys = {name: Ed25519PrivateKey.generate() for name in ("frank", "alice")}
    with SqliteLedger(path) as ledger:
        assemble_run(scenario, bus=MemoryBus(namespace="whole"), ledger=ledger, run_id="whole", policy=policy).run()

        def cut_after_day_3(progress: DayProgress) -> None:
            if progress.day == 3:
                raise _Cut

        with pytest.raises(_Cut):
            assemble_run(
                scenario,
                bus=MemoryBus(namespace="cut-1"),
                ledger=ledger,
                run_id="cut",
                policy=policy,
                options=RunnerOptions(on_day=cut_after_day_3),
            ).run()
        rec = Recorded(ledger, policy, keys)
        waiting = review_queue(ledger, "cut", trusted=rec.trusted)
        assert waiting, "the cut run sampled nothing before day 4"
        assert rec.mark("cut", waiting[0].proposal_id, "frank", "wrong", "75 USD for 60 kWh is above the tier").accepted
        assemble_run(scenario, bus=MemoryBus(namespace="cut-2"), ledger=ledger, run_id="cut", policy=policy).run()
        yield rec


class TestSampled:
    """A seeded, recorded sample of the allowed actions goes to review; the actions still execute."""

    def test_the_sample_is_the_allowed_proposals_whose_draw_is_below_the_rate(self, recorded: Recorded) -> None:
        ledger = recorded.ledger
        verdicts = ledger.query(LedgerQuery(run_id="whole", kind="verdict", outcome="allow"))
        expected = {
            v.subject
            for v in verdicts
            if (v.payload["action"] == "issue_credit" and sample_draw(SEED, v.subject) < 0.5)
            or (v.payload["agent"], v.payload["action"]) == ("marketing", "notify_customers")
        }
        sampled = {e.subject for e in ledger.query(LedgerQuery(run_id="whole", kind="review"))}
        assert sampled == expected
        assert 0 < len(sampled) < len(verdicts)
        credits = [v for v in verdicts if v.payload["action"] == "issue_credit"]
        assert 0 < sum(1 for v in credits if v.subject in sampled) < len(credits)  # a sample, not all of them

    def test_a_sampled_action_still_executes_once(self, recorded: Recorded) -> None:
        ledger = recorded.ledger
        for item in review_queue(ledger, "whole"):
            executions = ledger.query(LedgerQuery(run_id="whole", subject=item.proposal_id, kind="execution"))
            assert [e.outcome for e in executions] == ["applied"]
            assert item.verdict == "allow"

    def test_ops_notices_are_not_sampled_but_marketings_are(self, recorded: Recorded) -> None:
        items = review_queue(recorded.ledger, "whole")
        assert ("marketing", "notify_customers") in {(i.agent, i.action) for i in items}
        assert ("ops", "notify_customers") not in {(i.agent, i.action) for i in items}

    def test_the_sample_entry_says_why(self, recorded: Recorded) -> None:
        entry = recorded.ledger.query(LedgerQuery(run_id="whole", kind="review", limit=1))[0]
        assert entry.rationale.startswith("sampled for review")
        assert entry.actor == "governance"
        assert float(entry.payload["draw"]) < float(entry.payload["rate"])


class TestAlwaysHuman:
    """Every freeze_account escalates to the ops lead's gate; approved, it executes exactly once, resume included."""

    def test_every_freeze_escalated_through_the_tier(self, recorded: Recorded) -> None:
        for run_id in ("whole", "cut"):
            proposals = [
                e
                for e in recorded.ledger.query(LedgerQuery(run_id=run_id, kind="proposal"))
                if e.payload["action"] == "freeze_account"
            ]
            assert len(proposals) == 2
            for p in proposals:
                verdict = recorded.ledger.query(LedgerQuery(run_id=run_id, subject=p.subject, kind="verdict"))[0]
                assert (verdict.outcome, verdict.gate) == ("escalate", "incident_severity")
                assert "tier.always_human" in verdict.rule_ids
                resolution = recorded.ledger.query(LedgerQuery(run_id=run_id, subject=p.subject, kind="resolution"))
                assert [r.outcome for r in resolution] == ["approved"]
                executions = recorded.ledger.query(LedgerQuery(run_id=run_id, subject=p.subject, kind="execution"))
                assert [e.outcome for e in executions] == ["applied"], run_id

    def test_the_resumed_run_equals_the_whole_one(self, recorded: Recorded) -> None:
        """Killed after the approved freezes executed, reviewed while down, resumed: the same run as uninterrupted
        (the review mark is outside the run's history), one execution per authorization."""
        ledger = recorded.ledger
        assert run_digest(ledger, "cut") == run_digest(ledger, "whole")
        keys = [e.payload["idempotency_key"] for e in ledger.query(LedgerQuery(run_id="cut", kind="execution"))]
        assert len(keys) == len(set(keys))
        assert len(recorded.entries("cut", "review_mark")) == 1
        assert ledger.verify().ok


class TestReviewMarks:
    """Marks: once per item, only on sampled items, only by an approver with their key."""

    def test_marking_right_then_wrong_is_refused(self, recorded: Recorded) -> None:
        item = review_queue(recorded.ledger, "whole", trusted=recorded.trusted)[1]
        first = recorded.mark("whole", item.proposal_id, "frank", "right")
        assert first.accepted
        assert first.entry is not None
        assert first.entry.kind == "review_mark"
        again = recorded.mark("whole", item.proposal_id, "alice", "wrong", "too generous")
        assert (again.accepted, again.code) == (False, "already_reviewed")
        assert "already marked right by frank" in again.reason

    def test_unknown_and_not_sampled_ids_are_refused(self, recorded: Recorded) -> None:
        assert recorded.mark("whole", "no-such-proposal").code == "unknown_proposal"
        sampled = {i.proposal_id for i in review_queue(recorded.ledger, "whole")}
        allowed = recorded.ledger.query(LedgerQuery(run_id="whole", kind="verdict", outcome="allow"))
        other = next(v.subject for v in allowed if v.subject not in sampled)
        result = recorded.mark("whole", other)
        assert (result.accepted, result.code) == (False, "not_sampled")

    def test_who_may_mark(self, recorded: Recorded) -> None:
        item = review_queue(recorded.ledger, "whole")[-1]
        pid = item.proposal_id
        assert recorded.mark("whole", pid, "mallory").code == "not_a_reviewer"
        assert recorded.mark("whole", pid, "bob").code == "unsigned"  # an approver without a key
        assert recorded.mark("whole", pid, "frank", "wrong", "").code == "missing_reason"
        stolen = record_review(
            recorded.ledger,
            run_id="whole",
            proposal_id=pid,
            reviewer="frank",
            mark="right",
            reason="",
            policy=recorded.policy,
            key=recorded.keys["alice"],  # alice's key in frank's name
            trusted=recorded.trusted,
        )
        assert stolen.code == "bad_signature"
        assert review_queue(recorded.ledger, "whole")[-1].mark is None  # nothing recorded

    def test_a_forged_mark_fails_verification_and_counts_for_nothing(self, recorded: Recorded) -> None:
        ledger = recorded.ledger
        item = next(i for i in review_queue(ledger, "whole", trusted=recorded.trusted) if i.mark is None)
        forger = Ed25519PrivateKey.generate()
        when = ledger.query(LedgerQuery(run_id="whole", newest_first=True, limit=1))[0].sim_time
        data = review_statement(
            run_id="whole",
            proposal_id=item.proposal_id,
            proposal_hash=item.proposal_hash,
            reviewer="frank",
            mark="right",
            reason="fine",
            marked_at=when,
        )
        payload = {
            "proposal_id": item.proposal_id,
            "proposal_hash": item.proposal_hash,
            "reviewer": "frank",
            "mark": "right",
            "reason": "fine",
            "method": "cli",
            "signature": base64.b64encode(forger.sign(data)).decode(),
            "signer_key": public_text(forger.public_key()),
        }
        forged = ledger.append(
            [
                EntryDraft(
                    run_id="whole",
                    sim_time=when,
                    actor="human:frank",
                    actor_kind="human",
                    kind="review_mark",
                    subject=item.proposal_id,
                    payload=payload,
                    rationale="fine",
                    outcome="right",
                    approver="frank",
                    message_type="review.marked",
                )
            ]
        )[0]
        assert ledger.verify().ok  # the chain holds: only the signature gives it away
        found = verify_reviews(ledger, trusted=recorded.trusted)
        checked, problems = found.checked, found.problems
        assert forged.seq in {p.seq for p in problems}
        assert checked >= 2
        again = next(
            i for i in review_queue(ledger, "whole", trusted=recorded.trusted) if i.proposal_id == item.proposal_id
        )
        assert again.mark is None  # the queue still waits for a real review
        problems_by_seq = {p.seq: p.reason for p in problems}
        assert "not frank's" in problems_by_seq[forged.seq]

    def test_a_key_a_ledger_writer_binds_does_not_turn_a_forged_mark_into_a_review(
        self, recorded: Recorded, tmp_path: Path
    ) -> None:
        """Whoever can append to the ledger can append a review_key entry binding a reviewer's name to their own
        key before the reviewer's first mark, then a mark signed with it. Where the reviewer's key is installed,
        the binding disagrees with it: the mark is not the reviewer's (verify says so, the queue does not count it).
        On a copy of the ledger: the module's runs keep their marks and bindings."""
        with sqlite3.connect(recorded.ledger.path) as source, sqlite3.connect(tmp_path / "copy.db") as copy:
            source.backup(copy)
        ledger = SqliteLedger(tmp_path / "copy.db", create=False)
        run = "cut"
        name = next(n for n in recorded.keys if n not in bound_keys(ledger, run))
        item = next(i for i in review_queue(ledger, run, trusted=recorded.trusted) if i.mark is None)
        forger = Ed25519PrivateKey.generate()
        forged_key = public_text(forger.public_key())
        when = ledger.query(LedgerQuery(run_id=run, newest_first=True, limit=1))[0].sim_time
        data = review_statement(
            run_id=run,
            proposal_id=item.proposal_id,
            proposal_hash=item.proposal_hash,
            reviewer=name,
            mark="right",
            reason="fine",
            marked_at=when,
        )
        common = {"run_id": run, "sim_time": when, "actor": f"human:{name}", "actor_kind": "human", "approver": name}
        binding = EntryDraft(
            **common,
            kind="review_key",
            subject=name,
            payload={"reviewer": name, "key": forged_key},
            rationale="bound",
            outcome="bound",
            message_type="review.key",
        )
        mark = EntryDraft(
            **common,
            kind="review_mark",
            subject=item.proposal_id,
            payload={
                "proposal_id": item.proposal_id,
                "proposal_hash": item.proposal_hash,
                "reviewer": name,
                "mark": "right",
                "reason": "fine",
                "method": "cli",
                "signature": base64.b64encode(forger.sign(data)).decode(),
                "signer_key": forged_key,
            },
            rationale="fine",
            outcome="right",
            message_type="review.marked",
        )
        forged = ledger.append([binding, mark])[1]
        checked = verify_reviews(ledger, trusted=recorded.trusted, run_id=run)
        assert forged.seq in {p.seq for p in checked.problems}
        again = next(
            i for i in review_queue(ledger, run, trusted=recorded.trusted) if i.proposal_id == item.proposal_id
        )
        assert again.mark is None
        ledger.close()

    def test_a_mark_copied_from_another_run_is_not_a_review(self, recorded: Recorded) -> None:
        """'whole' and 'cut' are one scenario and seed, so their proposals share ids and hashes: frank's signed mark
        on the cut run, appended verbatim to the whole run's ledger, must not pass for a review of the whole run."""
        ledger = recorded.ledger
        original = ledger.query(LedgerQuery(run_id="cut", kind="review_mark", limit=1))[0]
        assert next(
            i for i in review_queue(ledger, "whole", trusted=recorded.trusted) if i.proposal_id == original.subject
        )
        copied = ledger.append(
            [
                EntryDraft(
                    run_id="whole",
                    sim_time=original.sim_time,
                    actor=original.actor,
                    actor_kind="human",
                    kind="review_mark",
                    subject=original.subject,
                    payload=dict(original.payload),
                    rationale=original.rationale,
                    outcome=original.outcome,
                    approver="frank",
                    message_type="review.marked",
                )
            ]
        )[0]
        problems = verify_reviews(ledger, trusted=recorded.trusted, run_id="whole").problems
        assert copied.seq in {p.seq for p in problems}
        item = next(
            i for i in review_queue(ledger, "whole", trusted=recorded.trusted) if i.proposal_id == original.subject
        )
        assert item.mark is None or item.mark.seq != copied.seq


class TestReplayAfterReview:
    """A reviewed run replays and re-derives IDENTICAL: the marks are judgements on it, not part of it."""

    def test_replay_and_verify_are_identical(self, recorded: Recorded) -> None:
        assert recorded.entries("whole", "review_mark")  # marked by the tests above or below
        result = replay(recorded.ledger, "whole")
        assert result.identical, result.divergence
        assert verify_run(recorded.ledger, "whole").identical

    @pytest.fixture(autouse=True)
    def _one_mark(self, recorded: Recorded) -> None:
        waiting = [i for i in review_queue(recorded.ledger, "whole", trusted=recorded.trusted) if i.mark is None]
        if waiting and not recorded.entries("whole", "review_mark"):
            assert recorded.mark("whole", waiting[0].proposal_id, "alice", "wrong", "over the tier").accepted


class TestReport:
    """The report shows, per agent, sampled, reviewed, wrong and the sampled error rate."""

    def test_the_report_counts_marks_per_agent(self, recorded: Recorded) -> None:
        report = run_report(recorded.ledger, "cut", reviewers=recorded.trusted)
        assert report.reviews is not None
        rows = {r.agent: r for r in report.reviews.rows}
        items = review_queue(recorded.ledger, "cut")
        assert rows["ops"].sampled == sum(1 for i in items if i.agent == "ops")
        assert (rows["ops"].reviewed, rows["ops"].wrong, rows["ops"].error_rate) == (1, 1, 1.0)
        assert rows["marketing"].reviewed == 0
        assert rows["marketing"].error_rate is None
        assert [w.reason for w in report.reviews.wrong] == ["75 USD for 60 kWh is above the tier"]
        doc = report.to_json()
        assert {r["agent"]: r["error_rate"] for r in doc["reviews"]["rows"]}["ops"] == 1.0

    def test_marks_verify_from_the_ledger_alone(self, recorded: Recorded) -> None:
        """The cut run recorded no approver directory: frank's first mark recorded his key, so a report with no
        installation keys at all still counts the mark — and a reviewer's key is bound once per run."""
        report = run_report(recorded.ledger, "cut")
        assert report.reviews is not None
        assert sum(r.reviewed for r in report.reviews.rows) == 1
        bound = recorded.ledger.query(LedgerQuery(run_id="cut", kind="review_key"))
        assert [(e.payload["reviewer"], e.payload["key"]) for e in bound] == [("frank", recorded.trusted["frank"])]
        found = verify_reviews(recorded.ledger, trusted={}, run_id="cut")
        assert (found.checked, found.problems, found.unchecked) == (1, [], [])

    def test_a_key_the_run_bound_outranks_this_installations(self, recorded: Recorded) -> None:
        """Another installation's frank (another key) cannot mark a run that bound frank's key: refused, nothing
        recorded; and the run's marks stay frank's when checked against that installation's keys."""
        item = next(i for i in review_queue(recorded.ledger, "cut") if i.mark is None)
        other = Ed25519PrivateKey.generate()
        refused = record_review(
            recorded.ledger,
            run_id="cut",
            proposal_id=item.proposal_id,
            reviewer="frank",
            mark="right",
            reason="",
            policy=recorded.policy,
            key=other,
            trusted={"frank": public_text(other.public_key())},
        )
        assert (refused.accepted, refused.code) == (False, "bad_signature")
        assert "the key run cut recorded for frank" in refused.reason
        assert len(recorded.entries("cut", "review_key")) == 1
        # Where another key is installed for frank, the run's binding is not taken on its word: anyone who appends
        # to the ledger could have written it (see the forged binding above). Without a key for frank it stands.
        elsewhere = verify_reviews(recorded.ledger, trusted={"frank": public_text(other.public_key())}, run_id="cut")
        assert elsewhere.checked == 1
        assert [p.approver for p in elsewhere.problems] == ["frank"]
        assert "but the key installed here for frank is" in elsewhere.problems[0].reason
        assert verify_reviews(recorded.ledger, trusted={}, run_id="cut").problems == []

    def test_policy_for_run_reads_the_tiers_back(self, recorded: Recorded) -> None:
        assert policy_for_run(recorded.ledger, "cut").tiers == recorded.policy.tiers


ROLES = {"incident_severity": "frank", "compliance_change": "erin", "settlement_policy_change": "bob"}  # who approves


@pytest.fixture(scope="module")
def human_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteLedger]:
    """chaos-week under the tiers policy, interactive, where people approve every escalation as it waits: 'ref'
    uninterrupted; 'killed' dies right after the ops lead approved the freezes, and is resumed."""
    scenario = load_scenario("chaos-week")
    policy = load_policy(SHIPPED)
    keys = {name: Ed25519PrivateKey.generate() for name in policy.approvers}
    directory = {name: public_text(key.public_key()) for name, key in keys.items()}
    path = tmp_path_factory.mktemp("human") / "ledger.db"
    with SqliteLedger(path) as ledger:

        def humans(run_id: str, *, cut: bool) -> Callable[[DayProgress], None]:
            def decide(progress: DayProgress) -> None:
                if not progress.waiting_for_human:
                    return
                freezes = 0
                for e in load_escalations(ledger, run_id=run_id, policy=policy):
                    if not e.is_open:
                        continue
                    names = ROLES.get(e.gate, "") or "bob alice"  # pricing: four eyes
                    for name in names.split():
                        done = record_decision(
                            ledger,
                            run_id=run_id,
                            proposal_id=e.proposal_id,
                            approver=name,
                            decision="approve",
                            reason="checked",
                            policy=policy,
                            key=keys[name],
                        )
                        assert done.accepted, done.reason
                    freezes += e.proposal.action == "freeze_account"
                if cut and freezes:
                    raise _Cut  # decided, never taken in by this attempt

            return decide

        def options(run_id: str, *, cut: bool) -> RunnerOptions:
            return RunnerOptions(
                interactive=True,
                approval_wait_seconds=5,
                poll_seconds=0.01,
                settings={"approver_keys": directory},
                on_day=humans(run_id, cut=cut),
            )

        def run(run_id: str, bus: str, *, cut: bool) -> None:
            assemble_run(
                scenario,
                bus=MemoryBus(namespace=bus),
                ledger=ledger,
                run_id=run_id,
                policy=policy,
                options=options(run_id, cut=cut),
            ).run()

        run("ref", "ref", cut=False)
        with pytest.raises(_Cut):
            run("killed", "killed-1", cut=True)
        run("killed", "killed-2", cut=False)
        yield ledger


class TestAlwaysHumanDecidedWhileDown:
    """An interactive run: the ops lead approves an always-human freeze, the process dies before the run takes the
    decision in, and the resumed run takes it at the same point: same history as a run never interrupted, the
    freeze applied exactly once."""

    def test_the_freezes_were_decided_by_the_ops_lead_and_applied_once(self, human_runs: SqliteLedger) -> None:
        freezes = [
            e
            for e in human_runs.query(LedgerQuery(run_id="killed", kind="proposal"))
            if e.payload["action"] == "freeze_account"
        ]
        assert len(freezes) == 2
        for p in freezes:
            approvals = human_runs.query(LedgerQuery(run_id="killed", subject=p.subject, kind="approval"))
            assert [(a.approver, a.payload["method"], a.payload["scripted"]) for a in approvals] == [
                ("frank", "cli", False)
            ]
            executions = human_runs.query(LedgerQuery(run_id="killed", subject=p.subject, kind="execution"))
            assert [e.outcome for e in executions] == ["applied"]

    def test_the_resumed_run_has_the_uninterrupted_history(self, human_runs: SqliteLedger) -> None:
        assert run_digest(human_runs, "killed") == run_digest(human_runs, "ref")
        assert replay(human_runs, "killed").identical
