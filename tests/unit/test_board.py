"""The scripted board: which decision answers which pending escalation."""

from __future__ import annotations

from typing import Any

import pytest

from coalition.scenarios import Board, PendingEscalation, load_scenario
from coalition.scenarios.spec import BoardSpec

pytestmark = pytest.mark.unit


def board(*decisions: dict[str, Any]) -> Board:
    defaults = {"approvers": [{"name": "carol", "role": "board"}], "reason": "scripted"}
    return Board(BoardSpec.model_validate({"decisions": [{**defaults, **d} for d in decisions]}))


def entry(region: str, investment: float = 150000) -> PendingEscalation:
    args = {"region": region, "sequence": 1, "investment_usd": investment}
    return PendingEscalation(
        proposal_id=f"p-{region}", agent="finance", action="enter_market", gate="market_entry", args=args
    )


def decision_of(b: Board, escalation: PendingEscalation, day: int = 3) -> str | None:
    decision = b.decide(escalation, day)
    return None if decision is None else decision.decision


class TestMatching:
    """Every field a decision names must match; args are a subset of the proposal's args."""

    def test_args_subset_selects_the_region(self) -> None:
        """CA is approved, CO rejected, by their args."""
        b = board(
            {"match": {"gate": "market_entry", "args": {"region": "CA"}}, "decision": "approve"},
            {"match": {"gate": "market_entry", "args": {"region": "CO"}}, "decision": "reject"},
        )
        assert decision_of(b, entry("CA")) == "approve"
        assert decision_of(b, entry("CO")) == "reject"

    def test_no_match_leaves_it_to_expire(self) -> None:
        """An escalation nobody scripted gets no answer."""
        b = board({"match": {"gate": "market_entry", "args": {"region": "CA"}}, "decision": "approve"})
        assert b.decide(entry("AZ"), day=3) is None

    def test_other_fields_must_agree(self) -> None:
        """A different gate, agent or action does not match."""
        for match in ({"gate": "capital_commitment"}, {"agent": "ops"}, {"action": "commit_capital"}):
            assert board({"match": match, "decision": "approve"}).decide(entry("CA"), day=3) is None

    def test_first_match_wins(self) -> None:
        """Decisions are in priority order."""
        b = board(
            {"match": {"gate": "market_entry"}, "decision": "reject"},
            {"match": {"gate": "market_entry", "args": {"region": "CA"}}, "decision": "approve"},
        )
        assert decision_of(b, entry("CA")) == "reject"

    def test_numbers_match_by_value(self) -> None:
        """150000 in the file matches 150000.0 in the proposal."""
        b = board({"match": {"args": {"investment_usd": 150000}}, "decision": "approve"})
        assert b.decide(entry("CA", 150000.0), day=3) is not None
        assert b.decide(entry("CA", 150000.5), day=3) is None

    def test_on_day_waits(self) -> None:
        """A decision with on_day applies from that day on."""
        b = board({"match": {"gate": "market_entry"}, "decision": "approve", "on_day": 5})
        assert b.decide(entry("CA"), day=4) is None
        assert b.decide(entry("CA"), day=5) is not None


class TestHeliosLaunchBoard:
    """The shipped scenario's board answers its escalations as the issue describes."""

    def test_answers(self) -> None:
        """CA approved by two board members, CO rejected, the settlement change unanswered."""
        b = Board(load_scenario("helios-launch").board)
        ca = b.decide(entry("CA"), day=5)
        assert ca is not None
        assert (ca.decision, [a.name for a in ca.approvers]) == ("approve", ["carol", "dave"])
        co = b.decide(entry("CO"), day=5)
        assert co is not None
        assert co.decision == "reject"
        t3 = PendingEscalation(
            proposal_id="p-s",
            agent="finance",
            action="set_settlement_policy",
            gate="settlement_policy_change",
            args={"window": "T+3", "reserve_ratio": 0.15},
        )
        assert b.decide(t3, day=56) is None
