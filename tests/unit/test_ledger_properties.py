"""Properties of the chain: any valid drafts, in any batching, verify; the digest ignores batching and wall time."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalition.bus.canonical import canonical_json
from coalition.ledger import EntryDraft, LedgerEntry, ModelRef, SqliteLedger, entry_hash, run_digest, seal
from coalition.ledger.entry import EnvelopeDraft
from coalition.ledger.prepared import chain, prepare_all
from coalition.ledger.sqlite import seal_with_body

pytestmark = pytest.mark.unit

KINDS = ["observation", "message", "proposal", "verdict", "approval", "execution", "system"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12)


@st.composite
def drafts(draw: st.DrawFn) -> EntryDraft:
    actor = draw(st.sampled_from(["agent:finance", "agent:ops", "governance", "executor", "world", "human:alice"]))
    return EntryDraft(
        run_id=draw(st.sampled_from(["run-1", "run-2"])),
        sim_time=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(st.integers(0, 10**7))),
        actor=actor,
        actor_kind="agent" if actor.startswith("agent:") else "system",
        kind=draw(st.sampled_from(KINDS)),
        subject=draw(st.text(max_size=16)),
        payload=draw(st.dictionaries(st.text(max_size=8), json_values, max_size=5)),
        rationale=draw(st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")),
        evidence=draw(st.lists(ids, max_size=3)),
        rule_ids=draw(st.lists(ids, max_size=3)),
        gate=draw(st.none() | st.sampled_from(["market_entry", "incident_severity"])),
        outcome=draw(st.none() | st.sampled_from(["allow", "deny", "escalate"])),
        model=draw(st.none() | st.builds(ModelRef, model_id=ids, prompt_hash=ids, response_hash=ids)),
        message_id=draw(st.none() | ids),
        correlation_id=draw(st.none() | ids),
        causation_id=draw(st.none() | ids),
        superstep=draw(st.none() | st.integers(0, 100)),
    )


def split(items: list[Any], cuts: list[int]) -> list[list[Any]]:
    """Cut a list into consecutive batches at the given positions (any batching of the same sequence)."""
    points = sorted({c % (len(items) + 1) for c in cuts} | {0, len(items)})
    return [items[a:b] for a, b in itertools.pairwise(points) if b > a]


class SteppingClock:
    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        self._now += timedelta(milliseconds=1234)
        return self._now


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestChainProperties:
    """Whatever is appended, however it is batched, the chain verifies and reads back exactly."""

    @PROPERTY
    @given(st.lists(drafts(), min_size=1, max_size=25), st.lists(st.integers(0, 30), max_size=6))
    def test_any_batching_verifies_and_round_trips(self, items: list[EntryDraft], cuts: list[int]) -> None:
        """Seq is 1..n, verify is OK, and every stored entry recomputes to its own hash."""
        with SqliteLedger(":memory:") as ledger:
            for batch in split(items, cuts):
                ledger.append(batch)
            result = ledger.verify()
            assert result.ok, result.reason
            assert result.entries == len(items)
            stored = list(ledger.iter_entries(batch=7))
            assert [e.seq for e in stored] == list(range(1, len(items) + 1))
            for entry, original in zip(stored, items, strict=True):
                assert entry_hash(entry.prev_hash, entry.hashed_fields()) == entry.hash
                assert entry.model_dump(mode="json", include=set(EntryDraft.model_fields)) == original.model_dump(
                    mode="json"
                )

    @PROPERTY
    @given(st.lists(drafts(), min_size=1, max_size=20), st.lists(st.integers(0, 30), max_size=6))
    def test_digest_ignores_batching_and_wall_time(self, items: list[EntryDraft], cuts: list[int]) -> None:
        """One batch under one clock and many batches under another give the same digest for each run."""
        with (
            SqliteLedger(":memory:", wall_clock=SteppingClock(datetime(2030, 1, 1, tzinfo=UTC))) as one,
            SqliteLedger(":memory:", wall_clock=SteppingClock(datetime(2040, 6, 1, tzinfo=UTC))) as many,
        ):
            one.append(items)
            for batch in split(items, cuts):
                many.append(batch)
            for run_id in ("run-1", "run-2"):
                assert run_digest(one, run_id) == run_digest(many, run_id)

    @PROPERTY
    @given(drafts(), st.integers(1, 10**9), st.datetimes(timezones=st.just(UTC)))
    def test_fast_seal_is_seal(self, draft: EntryDraft, seq: int, wall_time: datetime) -> None:
        """The append path's sealing gives the entry and hash of entry.seal, and hashes exactly its bytes."""
        expected = seal(draft, seq=seq, wall_time=wall_time, prev_hash="ab" * 32)
        entry, body = seal_with_body(draft, seq=seq, wall_time=wall_time, prev_hash="ab" * 32)
        assert entry == expected
        assert isinstance(entry, LedgerEntry)
        assert body == canonical_json(expected.hashed_fields())


class TestDigest:
    """The digest covers content: a different rationale gives a different digest."""

    def test_digest_changes_with_content(self) -> None:
        """Two runs differing by one rationale character have different digests; an unknown run hashes nothing."""
        base = {
            "run_id": "run-1",
            "sim_time": datetime(2025, 1, 1, tzinfo=UTC),
            "actor": "governance",
            "actor_kind": "governance",
            "kind": "verdict",
        }
        with SqliteLedger(":memory:") as a, SqliteLedger(":memory:") as b:
            a.append([EntryDraft(**base, rationale="deny: over budget")])
            b.append([EntryDraft(**base, rationale="deny: over budgeT")])
            assert run_digest(a, "run-1") != run_digest(b, "run-1")
            assert run_digest(a, "nope") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class TestPreparedDrafts:
    """Drafts prepared as a batch before the write turn chain to the entries and bytes of entry.seal."""

    @PROPERTY
    @given(st.lists(drafts(), min_size=1, max_size=8), st.datetimes(timezones=st.just(UTC)))
    def test_prepared_batch_chains_as_seal(self, items: list[EntryDraft], wall_time: datetime) -> None:
        """One dump for the batch, each chained after the previous: the same entry and bytes as seal, one by one."""
        prev = "ab" * 32
        for seq, prepared in enumerate(prepare_all(items), start=1):
            expected = seal(prepared[0], seq=seq, wall_time=wall_time, prev_hash=prev)
            entry, body = chain(prepared, seq=seq, wall_time=wall_time, prev_hash=prev)
            assert entry == expected
            assert body == canonical_json(expected.hashed_fields())
            prev = entry.hash

    @PROPERTY
    @given(st.lists(drafts(), min_size=1, max_size=8), st.datetimes(timezones=st.just(UTC)))
    def test_message_drafts_chain_as_any_draft_without_encoding_their_payload_again(
        self, items: list[EntryDraft], wall_time: datetime
    ) -> None:
        """Messages' drafts (each payload a message's JSON dump) chain to the entries and bytes of the same fields in
        plain drafts, and each entry holds its draft's payload as the draft has it (not a second encoding)."""
        messages = [EnvelopeDraft(**dict(draft)) for draft in items]
        prev = "ab" * 32
        for seq, (prepared, plain) in enumerate(zip(prepare_all(messages), prepare_all(items), strict=True), start=1):
            entry, body = chain(prepared, seq=seq, wall_time=wall_time, prev_hash=prev)
            assert (entry, body) == chain(plain, seq=seq, wall_time=wall_time, prev_hash=prev)
            assert entry.payload is prepared[0].payload
            prev = entry.hash

    def test_every_entry_has_every_field_set_whatever_is_copied(self) -> None:
        """Chained entries share one fields-set naming every field: a copy of one, updated and its set changed,
        leaves the others' as it was."""
        base = {"run_id": "r", "sim_time": datetime(2025, 1, 1, tzinfo=UTC), "actor": "governance"}
        with SqliteLedger(":memory:") as ledger:
            first, second = ledger.append(
                [EntryDraft(**base, actor_kind="governance", kind="verdict", rationale=f"entry {n}") for n in range(2)]
            )
        copied = first.model_copy(update={"subject": "changed"})
        copied.model_fields_set.discard("subject")
        assert first.model_fields_set == second.model_fields_set == set(LedgerEntry.model_fields)
        assert first.model_dump(exclude_unset=True) == first.model_dump()

    def test_the_dumped_fields_are_the_entrys_but_sim_time_and_model(self) -> None:
        """chain hands a draft's dumped fields to its entry, putting back only sim_time and model: every other
        field of a draft holds JSON values as they are (text, integers, None, lists of text; the payload is taken
        as dumped). A field of another type needs its value put back in chain too, and encoded in prepare's copy of
        a message's draft (prepared._message_fields)."""

        def json_as_is(annotation: Any) -> bool:
            if get_origin(annotation) is Literal:
                return all(isinstance(arg, str) for arg in get_args(annotation))
            if get_origin(annotation) in (Union, UnionType):
                return all(json_as_is(arg) for arg in get_args(annotation))
            if get_origin(annotation) is list:
                return all(json_as_is(arg) for arg in get_args(annotation))
            return annotation in (str, int, type(None))

        typed = {name for name, field in EntryDraft.model_fields.items() if not json_as_is(field.annotation)}
        assert typed == {"sim_time", "model", "payload"}

    def test_not_a_draft(self) -> None:
        """Anything but an EntryDraft in a batch is refused before anything is dumped."""
        with pytest.raises(TypeError, match="expected an EntryDraft, got dict"):
            prepare_all([{"rationale": "x"}])  # type: ignore[list-item]
