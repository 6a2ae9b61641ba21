"""A scenario's expectations are written for its scripted board. When people decide its escalations (an
interactive run, the console) and decide otherwise, some expectations no longer hold — not because governance
failed, but because the story changed. This module finds the escalations humans decided otherwise and, by
re-running the scenario with its scripted board (offline, in memory), which failed expectations hold there:
those are reported as "written for the scripted board", not as failures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from coalition.bus.memory import MemoryBus
from coalition.governance.decision_signatures import decision_entry_problem, identities_in
from coalition.governance.policy import Policy
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.board import Board, PendingEscalation
from coalition.scenarios.consistency import offline_options
from coalition.scenarios.spec import Expectation, Scenario

BOARD_METHOD = "scenario-board"
_HUMAN_KINDS = frozenset({"approval", "rejection", "resolution"})
_HUMAN_OUTCOMES = frozenset({"approved", "rejected", "expired"})
_SCRIPTED_OUTCOME = {"approve": "approved", "amend": "approved", "reject": "rejected"}  # an amendment approves


@dataclass(frozen=True, slots=True)
class Divergence:
    """An escalation people decided otherwise than the scenario's scripted board would have."""

    proposal_id: str
    agent: str
    action: str
    gate: str
    scripted: str  # approved / rejected / expired: what the board answers (whenever it does)
    decided: str  # approved / rejected / expired: what happened in this run
    deciders: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "proposal_id": self.proposal_id,
            "agent": self.agent,
            "action": self.action,
            "gate": self.gate,
            "scripted": self.scripted,
            "decided": self.decided,
            "deciders": list(self.deciders),
        }


def divergences(entries: Sequence[LedgerEntry], scenario: Scenario) -> list[Divergence]:
    """The run's resolved escalations whose outcome differs from the scripted board's answer, decided by people
    (or left to expire by them) rather than by the board."""
    board = Board(scenario.board)
    proposals: dict[str, Mapping[str, Any]] = {}
    escalated: dict[str, LedgerEntry] = {}
    deciders: dict[str, list[tuple[str, str]]] = {}
    resolved: dict[str, str] = {}
    identities = identities_in(entries)
    for e in sorted(entries, key=lambda x: x.seq):
        if e.kind == "proposal":
            proposals[e.subject] = e.payload
        elif e.kind == "verdict" and e.outcome == "escalate":
            escalated[e.subject] = e
        elif e.kind in ("approval", "rejection") and decision_entry_problem(e, identities) is None:
            # only a decision its approver signed decided anything: an unsigned one in carol's name is no decider,
            # and one marked as the board's answer must not hide what people decided
            deciders.setdefault(e.subject, []).append((e.approver or "", str(e.payload.get("method", ""))))
        elif e.kind == "resolution" and e.outcome:
            resolved[e.subject] = e.outcome
    found = []
    for pid, verdict in escalated.items():
        if pid not in resolved:
            continue
        who = deciders.get(pid, [])
        if any(method == BOARD_METHOD for _, method in who):
            continue  # the board itself answered: whatever happened is what the scenario was written for
        proposal = proposals.get(pid, {})
        view = PendingEscalation(
            proposal_id=pid,
            agent=str(verdict.payload.get("agent") or proposal.get("agent")),
            action=str(verdict.payload.get("action") or proposal.get("action")),
            gate=str(verdict.gate or ""),
            args=dict(proposal.get("args") or {}),
        )
        answer = board.decide(view, scenario.days)
        scripted = _SCRIPTED_OUTCOME[answer.decision] if answer is not None else "expired"
        if scripted != resolved[pid]:
            found.append(
                Divergence(pid, view.agent, view.action, view.gate, scripted, resolved[pid], tuple(a for a, _ in who))
            )
    return found


def names_human_decisions(expectation: Expectation) -> bool:
    """Whether an expectation counts or orders human decisions (approvals, rejections, resolutions) — such an
    expectation is written for the scripted board's answers, and says so."""
    matches = []
    if expectation.count is not None:
        matches.append(expectation.count.match)
    if expectation.order is not None:
        matches.extend((expectation.order.first, expectation.order.then))
    return any(
        m.kind in _HUMAN_KINDS or (m.outcome or "") in _HUMAN_OUTCOMES or (m.actor or "").startswith("human:")
        for m in matches
    )


def passing_with_board(scenario: Scenario, policy: Policy, seed: int) -> set[str]:
    """Ids of the expectations that hold when the scenario runs with its scripted board (offline narration, an
    in-memory bus and ledger: nothing is written anywhere)."""
    with SqliteLedger.scratch() as ledger, closing(MemoryBus(namespace="scripted-board")) as bus:
        result = assemble_run(
            scenario,
            bus=bus,
            ledger=ledger,
            run_id="scripted-board",
            seed=seed,
            policy=policy,
            options=offline_options(),
        ).run()
    return {r.id for r in result.expectations if r.passed}


@dataclass(frozen=True)
class BoardCheck:
    """Which failed expectations are explained by human decisions that differ from the scripted board."""

    divergences: list[Divergence]
    board_only: list[str]  # failed here, hold with the scripted board: humans decided otherwise
    failed: list[str]  # failed here and with the scripted board too (or no human decided otherwise): real

    @property
    def summary(self) -> str | None:
        if not self.board_only:
            return None
        return (
            f"expectations written for the scripted board: {len(self.board_only)} differ because humans decided "
            f"otherwise ({len(self.divergences)} escalation(s) decided differently)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "divergences": [d.to_json() for d in self.divergences],
            "written_for_scripted_board": self.board_only,
            "failed": self.failed,
            "summary": self.summary,
        }


def board_check(
    failed: Sequence[str], entries: Sequence[LedgerEntry], scenario: Scenario, policy: Policy, seed: int
) -> BoardCheck:
    """Split the failed expectation ids into those humans explain and real failures; re-runs the scenario only
    when something failed and people decided an escalation otherwise."""
    found = divergences(entries, scenario)
    if not failed or not found:
        return BoardCheck(found, [], list(failed))
    holding = passing_with_board(scenario, policy, seed)
    return BoardCheck(found, [f for f in failed if f in holding], [f for f in failed if f not in holding])
