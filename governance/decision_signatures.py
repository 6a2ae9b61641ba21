"""Signed human decisions: who decided is proved by an Ed25519 signature, not by a name typed on a command line.

The statement an approver signs is (proposal id, proposal hash, approver, decision, reason, simulated time of
the decision, and the run decided in), as canonical JSON after a domain line. The proposal hash binds the decision
to the exact proposal, the run's approver directory binds the name to a key, and the run id binds it to the run:
two runs of one scenario and seed share proposal ids, hashes and times, so without it a decision copied from one
run into the other would verify there. The decision entry carries that run as `signed_run`; it counts only in that
run, or in a re-execution of it that says so in-process (a replay, `replay --verify`, a what-if: their scratch runs
take the recorded decisions as they were signed, and `accept_runs` names the original run — nothing written to a
ledger can widen it). A scripted board's decision is not bound to a run (it is never a human's word, and each run's
board signs its own); neither are human decisions recorded before the binding (statement v1, no `signed_run`):
they still verify, with the weakness above.

Whose key: a human decision (CLI, console) verifies against the approver directory the run recorded when it
started (`run.started` settings `approver_keys`: name → `ed25519:<base64>`, the public halves of the
approvers' keys, coalition.bus.keys.ApproverKeys). A scripted board's decision (method `scenario-board`) is
signed by the approver's *test identity*, a key derived from the name that anyone can compute: it is marked
`scripted` and accepted only in runs that were not interactive — never as a human's word.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from coalition.bus.canonical import canonical_json
from coalition.bus.errors import KeyStoreError
from coalition.bus.keys import parse_public, public_text, scripted_identity, verify_signature
from coalition.bus.messages import ApprovalGranted, ApprovalRejected
from coalition.governance.run_entries import run_entries
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.entry import LedgerEntry

DOMAIN = b"coalition human decision v1\n"  # no run binding: scripted boards, and decisions recorded before it
DOMAIN_BOUND = b"coalition human decision v2\n"  # bound to the run decided in (`run_id`)
REPLAYED_METHOD = "recorded-replay"  # a recorded decision re-applied by script where its signature cannot hold
SCRIPTED_METHODS = frozenset({"scenario-board", REPLAYED_METHOD})
DIRECTORY_SETTING = "approver_keys"


def statement(
    *,
    proposal_id: str,
    proposal_hash: str,
    approver: str,
    decision: str,
    reason: str,
    decided_at: datetime,
    args: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> bytes:
    """The exact bytes an approver signs (with the amended arguments, when the decision amends a draft; with the
    run decided in, when bound to it)."""
    signed: dict[str, Any] = {
        "proposal_id": proposal_id,
        "proposal_hash": proposal_hash,
        "approver": approver,
        "decision": decision,
        "reason": reason,
        "decided_at": decided_at,
    }
    if args is not None:
        signed["args"] = dict(args)
    if run_id is None:
        return DOMAIN + canonical_json(signed)
    return DOMAIN_BOUND + canonical_json({**signed, "run_id": run_id})


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data)).decode("ascii")


def scripted_key(approver: str) -> Ed25519PrivateKey:
    """The declared test identity a scripted board signs with (public knowledge: never a human's proof)."""
    return scripted_identity(approver)


# A name's test identity is derived from the name alone (public knowledge), so its public text is too: derived once
# per name, not for every scripted decision signed and again for every one checked (~60 us each, a key derivation).
@lru_cache(maxsize=1024)
def scripted_public(approver: str) -> str:
    return public_text(scripted_identity(approver).public_key())


@dataclass(frozen=True, slots=True)
class RunIdentities:
    """What a run recorded about who may sign decisions in it, and the runs whose bound decisions count in it
    (the run itself; a re-execution adds the run it re-executes)."""

    approver_keys: dict[str, str]
    interactive: bool
    runs: frozenset[str] = frozenset()

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], *, run_id: str, accept_runs: Iterable[str] = ()
    ) -> RunIdentities:
        raw = settings.get(DIRECTORY_SETTING)
        keys = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        return cls(keys, bool(settings.get("interactive")), frozenset({run_id, *accept_runs}))


# (public key text, signature bytes, signed bytes) of the signatures verified good so far, inside
# signatures_checked_once(); None elsewhere (every signature is verified)
_verified: ContextVar[set[tuple[str, bytes, bytes]] | None] = ContextVar("verified_signatures", default=None)


@contextmanager
def signatures_checked_once() -> Iterator[None]:
    """Inside, a signature verified good is not verified again for the same key over the same bytes (Ed25519
    verification is a function of the three: the same answer). One that differs in any of them, and one that failed,
    is verified as before. For one pass that checks the same recorded decisions more than once (replay --verify:
    re-recording each, then taking it in)."""
    token = _verified.set(set())
    try:
        yield
    finally:
        _verified.reset(token)


def signature_problem(
    *,
    identities: RunIdentities,
    approver: str,
    method: str,
    signature: str | None,
    signer_key: str | None,
    data: bytes,
) -> str | None:
    """Why this decision's signature does not prove its approver (None: it does)."""
    if not signature:
        return f"the decision of {approver} is not signed"
    scripted = method in SCRIPTED_METHODS
    if scripted:
        if identities.interactive:
            return f"a scripted decision (signed by {approver}'s test identity) in an interactive run"
        expected_text = scripted_public(approver)
    else:
        found = identities.approver_keys.get(approver)
        if found is None:
            return f"the run's approver directory holds no key for {approver}"
        expected_text = found
    if signer_key is not None and signer_key != expected_text:
        return f"the decision was signed by key {signer_key[:20]}…, not {approver}'s"
    try:
        expected: Ed25519PublicKey = parse_public(expected_text)
        raw = base64.b64decode(signature, validate=True)
    except (KeyStoreError, ValueError, binascii.Error):
        return f"the decision of {approver} carries a malformed signature or key"
    verified = _verified.get()
    proof = (expected_text, raw, data)
    if verified is not None and proof in verified:
        return None
    if not verify_signature(expected, raw, data):
        return f"the signature is not {approver}'s over this proposal hash, decision, reason and time"
    if verified is not None:
        verified.add(proof)
    return None


def entry_problem(payload: Mapping[str, Any], kind: str, sim_time: datetime, identities: RunIdentities) -> str | None:
    """Why a recorded approval / rejection entry is not a decision its approver signed (None: it is)."""
    approver = str(payload.get("approver", ""))
    bound = payload.get("signed_run")
    if bound is not None and (not isinstance(bound, str) or bound not in identities.runs):
        here = ", ".join(sorted(identities.runs)) or "no run"
        return f"the decision of {approver} was signed for run {bound}, not for {here}"
    data = statement(
        proposal_id=str(payload.get("proposal_id", "")),
        proposal_hash=str(payload.get("proposal_hash", "")),
        approver=approver,
        decision="approve" if kind == "approval" else "reject",
        reason=str(payload.get("reason", "")),
        decided_at=sim_time,
        args=amended if isinstance(amended := payload.get("args"), dict) else None,
        run_id=bound,
    )
    signature = payload.get("signature")
    signer = payload.get("signer_key")
    scripted = bool(payload.get("scripted"))
    method = str(payload.get("method", ""))
    if scripted != (method in SCRIPTED_METHODS):
        return f"the decision of {approver} is marked scripted={scripted} but its method is {method!r}"
    return signature_problem(
        identities=identities,
        approver=approver,
        method=method,
        signature=str(signature) if isinstance(signature, str) else None,
        signer_key=str(signer) if isinstance(signer, str) else None,
        data=data,
    )


# What a decision entry says was decided, twice: its kind (the decision its signature is checked for) and its message
# type (what governance and the inbox fold). Anything but one of these pairs is no decision anyone signed.
DECISION_TYPES: Mapping[str, str] = {"approval": ApprovalGranted.TYPE, "rejection": ApprovalRejected.TYPE}


def is_decision(entry: LedgerEntry) -> bool:
    """Whether the entry claims to be a human decision, by its kind or by its message type (what a fold reads)."""
    return entry.kind in DECISION_TYPES or entry.message_type in DECISION_TYPES.values()


def decision_entry_problem(entry: LedgerEntry, identities: RunIdentities) -> str | None:
    """Why a recorded decision entry is not a decision its approver signed (None: it is): `entry_problem`, and its
    kind and message type must name the same decision. A copy of a signed approval re-filed as approval.rejected (or
    a rejection as approval.granted) verifies as what its kind says, but governance folds what its type says: the
    opposite of what was signed."""
    expected = DECISION_TYPES.get(entry.kind)
    if expected is None or entry.message_type != expected:
        return (
            f"the decision of {entry.payload.get('approver', '')} is filed as kind {entry.kind!r} with message type "
            f"{entry.message_type!r}: a signed decision's kind and type name the same decision"
        )
    return entry_problem(entry.payload, entry.kind, entry.sim_time, identities)


@dataclass(frozen=True, slots=True)
class DecisionProblem:
    """A recorded decision whose signature does not prove its approver."""

    seq: int
    run_id: str
    approver: str
    reason: str


def verify_decisions(ledger: Ledger, run_id: str | None = None) -> tuple[int, list[DecisionProblem]]:
    """Check every approval / rejection (of one run, or of all) against its run's recorded identities;
    returns (decisions checked, problems in ledger order)."""
    identities: dict[str, RunIdentities] = {}
    checked = 0
    problems: list[DecisionProblem] = []
    entries = [
        entry for kind in ("approval", "rejection") for entry in ledger.query(LedgerQuery(run_id=run_id, kind=kind))
    ]
    entries.sort(key=lambda e: e.seq)
    for entry in entries:
        if entry.run_id not in identities:  # a decision counts in the run it was signed for, and in no other
            identities[entry.run_id] = recorded_identities(ledger, entry.run_id)
        checked += 1
        why = decision_entry_problem(entry, identities[entry.run_id])
        if why is not None:
            problems.append(DecisionProblem(entry.seq, entry.run_id, str(entry.payload.get("approver", "")), why))
    return checked, problems


def decision_check(ledger: Ledger) -> Callable[[LedgerEntry], str | None]:
    """`decision_entry_problem` against each entry's own run's recorded identities (read once per run): the check
    the CLI and the console pass to the ledger's explanation, which may not import governance."""
    identities: dict[str, RunIdentities] = {}

    def problem(entry: LedgerEntry) -> str | None:
        if entry.run_id not in identities:
            identities[entry.run_id] = recorded_identities(ledger, entry.run_id)
        return decision_entry_problem(entry, identities[entry.run_id])

    return problem


def identities_in(entries: Sequence[LedgerEntry]) -> RunIdentities:
    """Who may sign decisions in a run, as the run.started among its entries (read already) recorded it: for views
    built from a run's entries (the summary `coalition run` prints, the scripted-board check)."""
    return _started_identities(entries, entries[0].run_id if entries else "")


def recorded_identities(ledger: Ledger, run_id: str, *, accept_runs: Iterable[str] = ()) -> RunIdentities:
    """Who may sign decisions in a run, as its run.started entry recorded it (`accept_runs`: see the module)."""
    return _started_identities(run_entries(ledger, run_id, limit=5), run_id, accept_runs)


def _started_identities(entries: Iterable[LedgerEntry], run_id: str, accept_runs: Iterable[str] = ()) -> RunIdentities:
    """The identities the first run.started of `entries` recorded (none recorded: nobody may sign)."""
    for entry in entries:
        if entry.message_type == "run.started":
            settings = entry.payload.get("settings")
            return RunIdentities.from_settings(
                settings if isinstance(settings, dict) else {}, run_id=run_id, accept_runs=accept_runs
            )
    return RunIdentities({}, interactive=False, runs=frozenset({run_id, *accept_runs}))
