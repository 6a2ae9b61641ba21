"""The wire codec: envelopes round-trip byte-for-byte, and anything else is a MessageRejected, never a crash."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coalition.bus.codec import MAX_MESSAGE_BYTES, decode, encode
from coalition.bus.errors import MessageRejected, UnknownMessageType
from coalition.bus.messages import ActionProposed
from coalition.bus.testing import sample_envelope

pytestmark = pytest.mark.unit


def wire(**changes: object) -> dict[str, object]:
    """The JSON object of a valid envelope, with some fields changed."""
    obj: dict[str, object] = orjson.loads(encode(sample_envelope(1)))
    obj.update(changes)
    return obj


class TestRoundTrip:
    """encode then decode gives back an equal envelope, and encoding is deterministic."""

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
        """A payload that breaks its model's rules names the field."""
        with pytest.raises(MessageRejected, match="kind"):
            decode(orjson.dumps(wire(payload={"kind": ""})))

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
