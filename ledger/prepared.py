"""Sealing in two steps: the draft's share before a writer takes its turn, the chain's share in it.

Three fields of an entry depend on where it lands — `prev_hash`, `seq` and `wall_time` — and are known only inside
the write transaction, under the lock every other writer of the ledger waits for. `prepare_all` does what needs no
head first: the checks validation could have skipped (a draft made with model_construct) and the drafts' fields as
JSON, in one call for the batch (a third of sealing's time), or for a batch of messages' drafts by copying their
values, JSON already but two. `chain` then adds the position fields, makes the
canonical bytes, redacts them if they hold a secret, hashes them and builds the entry: the bytes and hash of
`entry.seal` (tests/unit/test_ledger_properties.py holds the equality).

The redaction check and the canonical bytes stay in `chain`: they cover the whole body, and making the draft's bytes
first and splicing the position fields in afterwards cost more time in all (a second pass over the bytes to cut
them) than the write turn saves (measured: +2.2 µs an entry against -6 µs in the turn; the sealing is ~3% of a
sweep's write turn, whose SQLite statements and commit are the rest).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from coalition.bus.canonical import canonical_json
from coalition.bus.redaction import redactor
from coalition.ledger.entry import EntryDraft, EnvelopeDraft, LedgerEntry, ModelRef

_DATETIME = TypeAdapter(datetime)
_DUMP_ALL = TypeAdapter(list[EntryDraft]).dump_python  # each draft's model_dump(mode="json"), in one call

# A prepared draft: the draft and its fields as JSON (a fresh dict `chain` completes with the position fields).
PreparedDraft = tuple[EntryDraft, dict[str, Any]]


def prepare_all(drafts: Sequence[EntryDraft]) -> list[PreparedDraft]:
    """Check what validation could have skipped (a draft made with model_construct), then dump the drafts' fields."""
    for draft in drafts:
        if not isinstance(draft, EntryDraft):
            raise TypeError(f"expected an EntryDraft, got {type(draft).__name__}")
        if not isinstance(draft.rationale, str) or not draft.rationale.strip():
            raise ValueError("ledger entry: rationale is required and must not be blank")
        if not isinstance(draft.sim_time, datetime) or draft.sim_time.tzinfo is None:
            raise ValueError("ledger entry: sim_time must be a timezone-aware datetime")
    listed = drafts if isinstance(drafts, list) else list(drafts)
    messages = [draft for draft in listed if type(draft) is EnvelopeDraft]
    if listed and len(messages) == len(listed):
        return [(draft, _message_fields(draft)) for draft in messages]
    return list(zip(listed, _DUMP_ALL(listed, mode="json"), strict=True))


def _message_fields(draft: EnvelopeDraft) -> dict[str, Any]:
    """A message's draft's fields as JSON, as `model_dump(mode="json")` gives them: every field of a draft holds its
    JSON value as it is but `sim_time` and `model` (tests/unit/test_ledger_properties.py holds it), and a message's
    payload is its JSON dump already (taken as it is: walked through pydantic's inference again it only costs), so
    the draft's values are copied, lists as new lists, and only those two encoded."""
    fields = dict(draft.__dict__)
    fields["sim_time"] = _DATETIME.dump_python(draft.sim_time, mode="json")
    fields["evidence"] = list(draft.evidence)
    fields["rule_ids"] = list(draft.rule_ids)
    if isinstance(draft.model, ModelRef):
        fields["model"] = draft.model.model_dump(mode="json")
    return fields


def prepare_items(items: Sequence[tuple[str, Sequence[EntryDraft]]]) -> list[tuple[str, list[PreparedDraft]]]:
    """Each message's drafts prepared (`append_batch_once`'s items), in one `prepare_all` over all of them: one dump
    for the batch rather than one a message (the recorder appends every message of a superstep at once)."""
    listed = [drafts if isinstance(drafts, list) else list(drafts) for _, drafts in items]
    prepared = prepare_all([draft for drafts in listed for draft in drafts])
    out: list[tuple[str, list[PreparedDraft]]] = []
    start = 0
    for (message_id, _), drafts in zip(items, listed, strict=True):
        out.append((message_id, prepared[start : start + len(drafts)]))
        start += len(drafts)
    return out


def wall_time_json(wall_time: datetime) -> str:
    """A wall time as an entry's body writes it."""
    if wall_time.tzinfo is None:
        raise ValueError("wall_time must be timezone-aware")
    text = _DATETIME.dump_python(wall_time, mode="json")
    assert isinstance(text, str)
    return text


def chain(
    prepared: PreparedDraft, *, seq: int, wall_time: datetime, prev_hash: str, wall_json: str | None = None
) -> tuple[LedgerEntry, bytes]:
    """The entry at `seq` after `prev_hash` and the canonical bytes its hash covers (what the ledger stores): any
    configured secret in them is redacted first.

    `wall_json` is `wall_time` as `wall_time_json` writes it, when the caller has it already (a batch shares one)."""
    draft, fields = prepared
    fields["seq"] = seq
    fields["wall_time"] = wall_time_json(wall_time) if wall_json is None else wall_json
    fields["prev_hash"] = prev_hash
    body = canonical_json(fields)
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    secrets = redactor()
    if secrets.needed(body):  # a secret never reaches the record: the entry is sealed with it redacted
        fields = secrets.value(fields)
        body = canonical_json(fields)
        digest.update(body)
        return LedgerEntry.model_validate({**fields, "hash": digest.hexdigest()}), body
    digest.update(body)
    # the dumped fields become the entry's: their JSON values are the draft's but for those that JSON writes as text
    fields["sim_time"] = draft.sim_time
    fields["model"] = draft.model
    fields["wall_time"] = wall_time
    fields["hash"] = digest.hexdigest()
    return _construct_entry(fields), body


# Every entry's fields-set, shared: it names every field, so nothing can be added to it (model_copy and copy take
# their own copy first), and one set an entry was a fifth of an append's objects for the garbage collector to track.
_ENTRY_FIELDS = set(LedgerEntry.model_fields)


def _construct_entry(values: dict[str, Any]) -> LedgerEntry:
    """A LedgerEntry of already-validated values without validating again: what `model_construct` does, minus its
    per-field alias handling (a third of an append's Python time); tests compare the result with `entry.seal`.
    `values` becomes the entry's own: the caller hands it over."""
    entry = LedgerEntry.__new__(LedgerEntry)
    object.__setattr__(entry, "__dict__", values)
    object.__setattr__(entry, "__pydantic_fields_set__", _ENTRY_FIELDS)
    object.__setattr__(entry, "__pydantic_extra__", None)
    object.__setattr__(entry, "__pydantic_private__", None)
    return entry
