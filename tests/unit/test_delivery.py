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

    def test_every_field_is_frozen_and_it_hashes_as_the_constructor_s(self) -> None:
        """Built as `_Unsealed` and handed over as a Delivery: nothing of the open class is left on it."""
        envelope = sample_envelope(1)
        fast = delivered("observations", "1-0", 2, envelope, b"{}")
        bare = delivered("observations", "1-0", 2, None, b"{}")  # type: ignore[arg-type]  # hashable: no payload
        assert hash(bare) == hash(Delivery("observations", "1-0", 2, None, b"{}"))
        for name in Delivery.__slots__:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(fast, name, None)
        assert not hasattr(fast, "__dict__")
