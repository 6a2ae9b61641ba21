"""The ledger entry: who did what, when (simulated and wall), why (rationale), on what evidence, under which
policy — hash-chained so that any edit, insertion, deletion or reordering is detectable."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from coalition.bus.canonical import canonical_json, canonical_problem
from coalition.bus.redaction import redactor

GENESIS_HASH = "0" * 64

EntryKind = Literal[
    "run",  # run started / finished
    "observation",  # what the world showed an agent
    "message",  # agent-to-agent information
    "proposal",  # an agent asked for an action
    "verdict",  # governance allowed / denied / escalated
    "approval",  # a human approved an escalation
    "rejection",  # a human rejected an escalation
    "resolution",  # an escalation ended (approved, rejected, expired)
    "review",  # governance drew an allowed proposal for after-the-fact review (approval tier `sampled`)
    "review_mark",  # a reviewer marked a sampled proposal right or wrong (a judgement on the run, not its history)
    "review_key",  # a reviewer's public key, bound to their name in the run at their first mark (checks their marks)
    "decision_point",  # where the run took human decisions in (resume and replay take them at the same point)
    "authorization",  # governance authorized the executor
    "execution",  # the executor changed the world (or refused to)
    "dead_letter",  # a message the loop gave up on, and why
    "budget",  # reservations, spend settled, budget stops
    "model_call",  # a language model call (request/response hashes, tokens, cost)
    "expectation",  # a scenario expectation checked at the end of a run
    "system",  # anything else the platform must remember
]

ActorKind = Literal["agent", "governance", "executor", "human", "world", "runner", "system"]


class ModelRef(BaseModel):
    """Which model spoke, and hashes of exactly what it was asked and answered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str
    prompt_hash: str
    response_hash: str


class EntryDraft(BaseModel):
    """What a writer hands to `Ledger.append`: everything but the fields the ledger assigns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str = Field(min_length=1)
    sim_time: datetime
    actor: str = Field(min_length=1)  # e.g. "agent:finance", "governance", "executor", "human:alice"
    actor_kind: ActorKind
    kind: EntryKind
    subject: str = ""  # what it is about: a proposal id, an incident id, a region…
    payload: dict[str, Any] = Field(default_factory=dict)
    rationale: str
    evidence: list[str] = Field(default_factory=list)  # content hashes / evidence ids of the inputs used
    policy_version: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    gate: str | None = None
    outcome: str | None = None  # allow / deny / escalate / approved / applied …
    model: ModelRef | None = None
    approver: str | None = None
    message_id: str | None = None  # id of the bus envelope this entry records
    message_type: str | None = None  # its wire type (payload then holds the message's fields)
    correlation_id: str | None = None
    causation_id: str | None = None
    superstep: int | None = None

    @field_validator("rationale")
    @classmethod
    def _rationale_required(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("rationale is required and must not be blank")
        return value

    @field_validator("sim_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("sim_time must be timezone-aware")
        return value


class EnvelopeDraft(EntryDraft):
    """The draft recording one bus message (ledger/mapping.py): its payload is the message's JSON dump already
    (`model_dump(mode="json")`: JSON values only), so sealing it encodes the rest of the draft and takes the payload
    as it is, rather than walking it a second time. Build one only from such a dump."""


class LedgerEntry(EntryDraft):
    """A committed entry: the draft plus sequence, wall time and its place in the hash chain."""

    seq: int = Field(ge=1)
    wall_time: datetime
    prev_hash: str
    hash: str

    def hashed_fields(self) -> dict[str, Any]:
        """Every field except `hash` itself (timestamps, rationale, policy, approver included)."""
        return self.model_dump(mode="json", exclude={"hash"})

    def deterministic_fields(self) -> dict[str, Any]:
        """What a replay must reproduce: everything except ledger position, wall-clock time and the run's name
        (a replay or a second run of the same scenario and seed is another run id with the same content)."""
        return without_run_binding(self.model_dump(mode="json", exclude=set(POSITION_FIELDS)))


# Where an entry is, not what happened: left out of what a replay reproduces and a run's digest digests.
POSITION_FIELDS = frozenset({"hash", "prev_hash", "seq", "wall_time", "run_id"})
# A human decision bound to its run names the run (`signed_run`) and is signed over that name: like the run id, they
# say which run the decision belongs to, not what was decided (ledger verify and governance check them).
_RUN_BOUND = frozenset({"signed_run", "signature"})


def without_run_binding(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` (an entry's, position left out) without a bound human decision's run name and signature, so that
    two runs of one story with the same decisions have one digest. Anything else is returned as it is."""
    payload = fields.get("payload")
    if fields.get("kind") not in ("approval", "rejection") or not isinstance(payload, dict):
        return fields
    if "signed_run" not in payload:
        return fields
    return {**fields, "payload": {k: v for k, v in payload.items() if k not in _RUN_BOUND}}


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """hash = sha256(prev_hash ‖ canonical JSON of every other field)."""
    h = hashlib.sha256(prev_hash.encode("ascii"))
    h.update(canonical_json(fields))
    return h.hexdigest()


def noncanonical_body_problem(rows: Iterable[tuple[int, bytes]]) -> str | None:
    """The derived-data verdict on stored bodies, (seq, bytes) in seq order: the first that is not exactly the
    canonical JSON of its value (what sealing writes), or None. Such bytes can hash and link right and still be read
    two ways: a repeated key is the first value to SQLite's json_extract (the generated columns, the explorer's
    filters) and the last to Python. The chain check proves the bytes; this proves every reader reads one value."""
    for seq, body in rows:
        problem = canonical_problem(body)
        if problem is not None:
            return f"derived data: seq {seq}'s stored JSON is not canonical: {problem}"
    return None


def seal(draft: EntryDraft, *, seq: int, wall_time: datetime, prev_hash: str) -> LedgerEntry:
    """Turn a draft into a chained entry (any configured secret in it redacted first)."""
    body = draft.model_dump(mode="json")
    secrets = redactor()
    if secrets.needed(canonical_json(body)):
        body = secrets.value(body)
    body.update(seq=seq, wall_time=wall_time, prev_hash=prev_hash, hash=GENESIS_HASH)
    provisional = LedgerEntry.model_validate(body)
    return provisional.model_copy(update={"hash": entry_hash(prev_hash, provisional.hashed_fields())})
