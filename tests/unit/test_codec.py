"""The wire codec: envelopes round-trip byte-for-byte, and anything else is a MessageRejected, never a crash."""

from __future__ import annotations

import contextlib
import enum
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError, computed_field, field_serializer
from pydantic_core import PydanticSerializationError

from coalition.bus import codec
from coalition.bus.codec import MAX_MESSAGE_BYTES, decode, encode
from coalition.bus.envelope import Envelope
from coalition.bus.errors import MessageRejected, UnknownMessageType
from coalition.bus.message import Message, registered_types
from coalition.bus.messages import ActionProposed, ModelTrace, Observation, ShadowVerdict, VerdictIssued
from coalition.bus.testing import SAMPLE_TIME, sample_envelope

pytestmark = pytest.mark.unit


def wire(**changes: object) -> dict[str, object]:
    """The JSON object of a valid envelope, with some fields changed."""
    obj: dict[str, object] = orjson.loads(encode(sample_envelope(1)))
    obj.update(changes)
    return obj


class TestRoundTrip:
    """encode then decode gives back an equal envelope, and encoding is deterministic."""

    def test_a_fresh_process_decodes_a_message_type_it_never_built(self) -> None:
        """Message models build their validators on first use (pydantic defer_build): in a consumer process whose
        first use of a type is decoding it, decode builds it (it used to dead-letter every entry as undecodable)."""
        code = "import sys; from coalition.bus.codec import decode; print(decode(sys.stdin.buffer.read()).id)"
        done = subprocess.run(
            [sys.executable, "-c", code], input=encode(sample_envelope(1)), capture_output=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr.decode()[-600:]
        assert done.stdout.decode().strip() == "env-1"

    def test_round_trip_equal(self) -> None:
        """decode(encode(e)) == e for an observation."""
        envelope = sample_envelope(1, data={"prices": {"north": 42.5}, "regions": ["north", "south"]})
        assert decode(encode(envelope)) == envelope

    def test_round_trip_nested_payload(self) -> None:
        """A proposal with args and evidence survives the wire with its type."""
        envelope = sample_envelope(1).model_copy(
            update={
                "type": "action.proposed",
                "payload": ActionProposed(
                    proposal_id="p-1",
                    agent="finance",
                    action="set_price",
                    args={"region": "north", "price": "41.20"},
                    rationale="supply shock",
                    evidence=["abc"],
                ),
            }
        )
        decoded = decode(encode(envelope))
        assert isinstance(decoded.payload, ActionProposed)
        assert decoded == envelope

    def test_encoding_is_deterministic_and_sorted(self) -> None:
        """Same envelope, same bytes; keys are sorted; str input decodes like bytes."""
        data = encode(sample_envelope(3))
        assert data == encode(sample_envelope(3))
        assert list(orjson.loads(data)) == sorted(orjson.loads(data))
        assert decode(data.decode()) == sample_envelope(3)


class TestRejection:
    """Every kind of bad input is reported as MessageRejected with a one-line reason."""

    def test_unknown_type(self) -> None:
        """A type nobody registered is an UnknownMessageType naming the type."""
        with pytest.raises(UnknownMessageType, match=r"no\.such\.type") as info:
            decode(orjson.dumps(wire(type="no.such.type")))
        assert info.value.type_name == "no.such.type"

    def test_bad_json(self) -> None:
        """Bytes that are not JSON."""
        with pytest.raises(MessageRejected, match="not JSON"):
            decode(b"{not json")

    def test_json_that_is_not_an_object(self) -> None:
        """A JSON array is not an envelope."""
        with pytest.raises(MessageRejected, match="expected a JSON object, got list"):
            decode(b"[1, 2]")

    def test_wrong_payload(self) -> None:
        """A payload that breaks its model's rules names the field, under payload."""
        with pytest.raises(MessageRejected, match=r"^invalid envelope at payload\.kind: String should have at least"):
            decode(orjson.dumps(wire(payload={"kind": ""})))

    def test_wrong_nested_payload_field(self) -> None:
        """The location goes down into nested payload fields, one line."""
        obj = wire(type="action.proposed", payload={**PROPOSAL, "evidence": ["a", 5]})
        with pytest.raises(MessageRejected, match=r"^invalid envelope at payload\.evidence\.1: ") as info:
            decode(orjson.dumps(obj))
        assert "\n" not in info.value.reason

    def test_payload_of_another_type(self) -> None:
        """A payload that fits another type but not the one named is rejected, naming what is missing."""
        with pytest.raises(MessageRejected, match=r"at payload\.proposal_id: Field required"):
            decode(orjson.dumps(wire(type="action.proposed")))

    def test_extra_envelope_field(self) -> None:
        """Unknown envelope fields are refused, as the Envelope model forbids them."""
        with pytest.raises(MessageRejected, match=r"at extra: Extra inputs are not permitted"):
            decode(orjson.dumps(wire(extra=1)))

    def test_missing_payload(self) -> None:
        """An envelope without a payload names it."""
        obj = wire()
        del obj["payload"]
        with pytest.raises(MessageRejected, match=r"at payload: Field required"):
            decode(orjson.dumps(obj))

    def test_non_string_type(self) -> None:
        """A type that is not a string is an unknown type, as before."""
        with pytest.raises(UnknownMessageType, match="'5'"):
            decode(orjson.dumps(wire(type=5)))

    def test_missing_envelope_field(self) -> None:
        """A missing envelope field is named."""
        obj = wire()
        del obj["run_id"]
        with pytest.raises(MessageRejected, match="run_id"):
            decode(orjson.dumps(obj))

    def test_naive_sim_time(self) -> None:
        """sim_time must carry a timezone."""
        with pytest.raises(MessageRejected, match="timezone"):
            decode(orjson.dumps(wire(sim_time="2025-01-01T00:00:00")))

    def test_size_limit(self) -> None:
        """A message above MAX_MESSAGE_BYTES is refused before parsing."""
        big = orjson.dumps(wire(payload={"kind": "news", "text": "x" * MAX_MESSAGE_BYTES}))
        with pytest.raises(MessageRejected, match="exceeds"):
            decode(big)

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300))
    def test_arbitrary_bytes_never_escape_as_other_errors(self, data: bytes) -> None:
        """Fuzz: any bytes either decode or raise MessageRejected."""
        with contextlib.suppress(MessageRejected):
            decode(data)

    @settings(max_examples=300, deadline=None)
    @given(
        st.dictionaries(
            st.sampled_from(["id", "type", "source", "run_id", "superstep", "sim_time", "payload", "x"]),
            st.one_of(
                st.none(), st.integers(-(2**53), 2**53), st.text(max_size=10), st.lists(st.integers(0, 9), max_size=2)
            ),
        )
    )
    def test_arbitrary_objects_never_escape_as_other_errors(self, obj: dict[str, object]) -> None:
        """Fuzz: any JSON object either decodes or raises MessageRejected."""
        with contextlib.suppress(MessageRejected):
            decode(orjson.dumps(obj))


PROPOSAL: dict[str, Any] = {
    "proposal_id": "p-1",
    "agent": "finance",
    "action": "set_price",
    "args": {"region": "north", "price": "41.20"},
    "rationale": "supply shock",
    "evidence": ["abc"],
}


def reference_encode(envelope: Envelope) -> bytes:
    """The codec's definition of the wire: pydantic's JSON-mode dump as canonical JSON (what encode must equal),
    an absent signature left out."""
    exclude = {"signature"} if envelope.signature is None else None
    wire = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z
    return orjson.dumps(envelope.model_dump(mode="json", exclude=exclude), option=wire)


def reference_decode(data: bytes) -> Envelope:
    """The general path: the Envelope model validating the parsed object (what decode must agree with)."""
    return Envelope.model_validate(orjson.loads(data))


def unchecked(payload: Message, **changes: Any) -> Envelope:
    """An envelope around any payload, unregistered classes included (encode does not consult the registry)."""
    fields = sample_envelope(1).model_dump() | changes
    fields["payload"] = payload
    fields["type"] = payload.TYPE or "test.unregistered"
    return Envelope.model_construct(**fields)


class Colour(enum.Enum):
    RED = "red"


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
offsets = st.one_of(
    st.none(),
    st.just(UTC),
    st.builds(lambda s: timezone(timedelta(seconds=s)), st.integers(-86399, 86399)),
)
odd_values = st.one_of(
    st.datetimes(timezones=offsets),
    st.dates(),
    st.times(),
    st.decimals(allow_nan=False, places=4),
    st.uuids(),
    st.just(Colour.RED),
    st.tuples(st.integers(0, 9), st.text(max_size=3)),
    st.builds(ModelTrace, model_id=st.text(max_size=4), prompt_hash=st.just("p"), response_hash=st.just("r")),
    st.binary(max_size=4).map(lambda b: b.hex().encode()),
)
data_values = st.recursive(
    st.one_of(json_scalars, odd_values),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=12,
)


class TestEncodeMatchesPydantic:
    """encode skips pydantic's serializer but must give exactly the bytes the pydantic path gives."""

    @settings(max_examples=400, deadline=None)
    @given(st.dictionaries(st.text(max_size=6), data_values, max_size=5), offsets, st.integers(0, 10**6))
    def test_any_payload_data(self, data: dict[str, Any], tz: Any, micros: int) -> None:
        """Observation data of every kind of value (datetimes with odd offsets, Decimals, models…) alike."""
        sim_time = datetime(2025, 3, 1, tzinfo=tz or UTC) + timedelta(microseconds=micros)
        envelope = sample_envelope(1, data=data).model_copy(update={"sim_time": sim_time})
        assert encode(envelope) == reference_encode(envelope)

    def test_the_remembered_sim_time_is_never_lent_to_an_equal_instant(self) -> None:
        """encode remembers the last sim_time's text by identity: the same instant at another offset (equal as a
        datetime, written differently) and a copy of it each get their own text, in any order."""
        utc = datetime(2025, 3, 1, 12, tzinfo=UTC)
        plus_two = utc.astimezone(timezone(timedelta(hours=2)))
        assert utc == plus_two
        for sim_time in (utc, plus_two, plus_two, utc, utc.replace(microsecond=1), utc):
            envelope = sample_envelope(1).model_copy(update={"sim_time": sim_time})
            assert encode(envelope) == reference_encode(envelope)

    def test_every_registered_type_takes_the_fast_path(self) -> None:
        """A guard against a silent slowdown: the envelope and every message type serialise by fields."""
        assert codec._ENVELOPE_PLAIN
        assert [name for name, cls in registered_types().items() if not codec._plain(cls)] == []

    def test_nested_model_and_datetimes(self) -> None:
        """A proposal with a model trace and a verdict with an expiry encode as pydantic does."""
        proposal = ActionProposed(**PROPOSAL, model=ModelTrace(model_id="m", prompt_hash="p", response_hash="r"))
        verdict = VerdictIssued(
            proposal_id="p-1",
            proposal_hash="h",
            agent="finance",
            action="set_price",
            outcome="escalate",
            reasons=["gate"],
            expires_at=datetime(2025, 3, 2, 12, 30, 0, 5, tzinfo=timezone(timedelta(hours=-5))),
            policy_version="1",
        )
        for payload in (proposal, verdict):
            envelope = unchecked(payload)
            assert encode(envelope) == reference_encode(envelope)

    def test_a_field_left_out_while_none(self) -> None:
        """VerdictIssued.shadow (exclude_if=is_none): absent from the wire while unset, so verdicts recorded before
        the field existed keep their bytes; present, it encodes as pydantic does."""
        verdict = VerdictIssued(
            proposal_id="p-1", proposal_hash="h", agent="finance", action="set_price", outcome="allow",
            reasons=["ok"], policy_version="1",
        )  # fmt: skip
        shadow = ShadowVerdict(outcome="deny", reasons=["no"], rule_ids=["limit.x"], policy_version="2")
        for payload in (verdict, verdict.model_copy(update={"shadow": shadow})):
            envelope = unchecked(payload)
            assert encode(envelope) == reference_encode(envelope)
        assert b"shadow" not in encode(unchecked(verdict))
        assert decode(encode(unchecked(verdict.model_copy(update={"shadow": shadow})))).payload.shadow == shadow

    def test_subclass_of_a_nested_model_keeps_pydantic_semantics(self) -> None:
        """A ModelTrace subclass in a field typed ModelTrace is dumped as a ModelTrace (extra field dropped)."""

        class RicherTrace(ModelTrace):
            secret: str = "not on the wire"

        proposal = ActionProposed(**PROPOSAL, model=RicherTrace(model_id="m", prompt_hash="p", response_hash="r"))
        data = encode(unchecked(proposal))
        assert data == reference_encode(unchecked(proposal))
        assert b"secret" not in data

    def test_payload_with_a_field_serializer_falls_back(self) -> None:
        """A field serializer is honoured (the class is not plain: pydantic dumps it)."""

        class Shouted(Message):
            TYPE = "test.shouted"
            word: str

            @field_serializer("word")
            def _upper(self, word: str) -> str:
                return word.upper()

        data = encode(unchecked(Shouted(word="hi")))
        assert data == reference_encode(unchecked(Shouted(word="hi")))
        assert orjson.loads(data)["payload"] == {"word": "HI"}

    def test_payload_with_a_computed_field_falls_back(self) -> None:
        """A computed field is on the wire, as pydantic puts it there."""

        class Measured(Message):
            TYPE = "test.measured"
            word: str

            @computed_field  # type: ignore[prop-decorator]
            @property
            def length(self) -> int:
                return len(self.word)

        data = encode(unchecked(Measured(word="hi")))
        assert data == reference_encode(unchecked(Measured(word="hi")))
        assert orjson.loads(data)["payload"] == {"length": 2, "word": "hi"}

    def test_non_string_keys_fall_back(self) -> None:
        """Keys orjson refuses are converted by pydantic, as before."""
        envelope = sample_envelope(1, data={"by_day": {1: "a", 2: "b"}})
        assert encode(envelope) == reference_encode(envelope)

    def test_unserialisable_value_fails_as_before(self) -> None:
        """A value neither path can serialise raises pydantic's error, as the pydantic path alone did."""
        envelope = sample_envelope(1, data={"x": object()})
        with pytest.raises(PydanticSerializationError, match="Unable to serialize unknown type"):
            reference_encode(envelope)
        with pytest.raises(PydanticSerializationError, match="Unable to serialize unknown type"):
            encode(envelope)

    def test_times_and_dates(self) -> None:
        """Values orjson would format differently (time microseconds, sub-minute offsets) match pydantic."""
        odd = timezone(timedelta(hours=14, minutes=41, seconds=56))
        data = {"t": time(10, 34, 41, 15963), "d": date(644, 1, 21), "dt": datetime(2000, 1, 1, tzinfo=odd)}
        envelope = sample_envelope(1, data=data).model_copy(update={"sim_time": datetime(2000, 1, 1, tzinfo=odd)})
        assert encode(envelope) == reference_encode(envelope)


def mutations() -> st.SearchStrategy[tuple[str, object]]:
    """(field, value) changes to an envelope or its payload, mostly invalid ones."""
    values = st.one_of(
        json_scalars,
        st.lists(st.integers(0, 3), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(-5, 5), max_size=2),
    )
    envelope_fields = st.sampled_from(
        ["id", "type", "source", "run_id", "superstep", "sim_time", "correlation_id", "causation_id", "payload", "x"]
    )
    payload_fields = st.sampled_from(
        ["payload.kind", "payload.subject", "payload.to", "payload.data", "payload.text", "payload.y"]
    )
    times = st.sampled_from(
        ["2025-01-01T00:00:00", "2025-01-01T00:00:00+05:30", "2025-01-01", "nonsense", "1700000000"]
    )
    return st.one_of(
        st.tuples(st.one_of(envelope_fields, payload_fields), values),
        st.tuples(st.just("sim_time"), times),
        st.tuples(st.just("type"), st.sampled_from(sorted(registered_types()))),
        st.tuples(st.just("id"), st.text(min_size=120, max_size=140)),
    )


class TestDecodeMatchesPydantic:
    """decode validates against a specialised schema but must accept and build exactly what the model does."""

    @settings(max_examples=500, deadline=None)
    @given(st.lists(mutations(), max_size=3))
    def test_same_verdict_as_the_envelope_model(self, changes: list[tuple[str, object]]) -> None:
        """Fuzz: decode succeeds iff Envelope.model_validate does, with an identical envelope."""
        obj: dict[str, Any] = orjson.loads(encode(sample_envelope(1)))
        for field, value in changes:
            if field.startswith("payload.") and isinstance(obj.get("payload"), dict):
                obj["payload"][field.removeprefix("payload.")] = value
            else:
                obj[field] = value
        data = orjson.dumps(obj)
        try:
            expected: Envelope | None = reference_decode(data)
        except (ValidationError, UnknownMessageType):
            expected = None
        try:
            got: Envelope | None = decode(data)
        except MessageRejected:
            got = None
        assert (got is None) == (expected is None), (obj, got, expected)
        if got is not None and expected is not None:
            assert type(got) is Envelope
            assert type(got.payload) is type(expected.payload)
            assert repr(got) == repr(expected)
            assert got.model_fields_set == expected.model_fields_set
            assert got.payload.model_fields_set == expected.payload.model_fields_set

    @pytest.mark.parametrize(
        "envelope", [sample_envelope(1), unchecked(ActionProposed(**PROPOSAL))], ids=["observation", "proposal"]
    )
    def test_identical_to_the_model_path(self, envelope: Envelope) -> None:
        """Field order, fields set, repr and frozenness are those of a validated Envelope."""
        data = encode(envelope)
        got, expected = decode(data), reference_decode(data)
        assert list(got.__dict__) == list(expected.__dict__) == list(Envelope.model_fields)
        assert repr(got) == repr(expected)
        assert got.model_fields_set == expected.model_fields_set
        with pytest.raises(ValidationError, match="frozen"):
            got.id = "other"  # type: ignore[misc]

    def test_missing_causation_id_gets_its_default(self) -> None:
        """An optional field left out gets its default and is not in the fields set, as with the model."""
        obj = wire()
        del obj["causation_id"]
        got = decode(orjson.dumps(obj))
        assert got.causation_id is None
        assert got.model_fields_set == reference_decode(orjson.dumps(obj)).model_fields_set

    def test_every_registered_type_takes_the_fast_path(self) -> None:
        """A guard against a silent slowdown: the Envelope's shape is the one the specialisation knows."""
        assert codec._ENVELOPE_SCHEMA is not None
        for name in registered_types():
            assert codec._wire_validator(name) is not None, name

    def test_round_trip_of_every_datetime_offset_keeps_the_instant(self) -> None:
        """sim_time with any aware offset decodes to the same instant."""
        for hours in (-12, 0, 5, 14):
            envelope = sample_envelope(1).model_copy(
                update={"sim_time": SAMPLE_TIME.astimezone(timezone(timedelta(hours=hours)))}
            )
            assert decode(encode(envelope)) == envelope
            assert encode(decode(encode(envelope))) == encode(envelope)

    def test_payload_is_the_registered_class(self) -> None:
        """An observation payload decodes as Observation, not as a look-alike."""
        assert type(decode(encode(sample_envelope(1))).payload) is Observation
