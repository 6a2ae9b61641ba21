"""`delivered` builds the same frozen Delivery as its constructor (the read loops' fast path)."""

from __future__ import annotations

import dataclasses

import pytest

from coalition.bus.base import Delivery, delivered
from coalition.bus.testing import sample_envelope

pytestmark = pytest.mark.unit


class TestDelivered:
    """Equal to and as frozen as `Delivery(...)`; a new field must be taught to `delivered`."""

    def test_the_same_object_as_the_constructor_builds(self) -> None:
        envelope = sample_envelope(1)
        fast = delivered("observations", "1-0", 2, envelope, b"{}")
        slow = Delivery("observations", "1-0", 2, envelope, b"{}")
        assert fast == slow
        assert type(fast) is Delivery
        assert fast.ok
        assert fast.error is None
        assert dataclasses.astuple(fast) == ("observations", "1-0", 2, envelope, b"{}", None)

    def test_it_is_frozen(self) -> None:
        fast = delivered("observations", "1-0", 1, sample_envelope(1), b"{}")
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.topic = "other"  # type: ignore[misc]

    def test_it_knows_every_field(self) -> None:
        """`delivered` sets the slots in this order: a field added to Delivery must be added there too."""
        assert Delivery.__slots__ == ("topic", "broker_id", "deliveries", "envelope", "raw", "error")
