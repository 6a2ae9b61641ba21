"""Injected time and ids: deterministic, namespaced, and never moving backwards."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coalition.bus.clock import IdFactory, SimulatedClock, WallClock, uuid5_text

pytestmark = pytest.mark.unit

START = datetime(2025, 3, 1, tzinfo=UTC)


class TestSimulatedClock:
    """The scenario clock moves only forward, and only when told."""

    def test_needs_a_timezone(self) -> None:
        """A naive start is refused."""
        with pytest.raises(ValueError, match="timezone"):
            SimulatedClock(datetime(2025, 3, 1))

    def test_normalises_to_utc(self) -> None:
        """A start in another zone is held as UTC."""
        clock = SimulatedClock(datetime(2025, 3, 1, 2, tzinfo=timezone(timedelta(hours=2))))
        assert clock.now() == START
        assert clock.now().tzinfo == UTC

    def test_stands_still_until_advanced(self) -> None:
        """now() is the same until advance/set."""
        clock = SimulatedClock(START)
        assert clock.now() == clock.now() == START
        assert clock.advance(timedelta(days=1)) == START + timedelta(days=1)
        assert clock.set(START + timedelta(days=3)) == clock.now()

    def test_never_moves_backwards(self) -> None:
        """advance by a negative delta or set to the past is refused."""
        clock = SimulatedClock(START)
        with pytest.raises(ValueError, match="backwards"):
            clock.advance(timedelta(seconds=-1))
        with pytest.raises(ValueError, match="backwards"):
            clock.set(START - timedelta(days=1))

    def test_wall_clock_is_aware(self) -> None:
        """The wall clock answers in UTC."""
        assert WallClock().now().tzinfo == UTC


class TestIdFactory:
    """Ids depend only on the seed, the namespace and the position, never on scheduling."""

    def test_same_seed_same_ids(self) -> None:
        """Two factories with one seed mint the same sequence."""
        a, b = IdFactory("seed-1"), IdFactory("seed-1")
        assert [a.new() for _ in range(5)] == [b.new() for _ in range(5)]

    def test_different_seeds_differ(self) -> None:
        """Another seed gives other ids."""
        assert IdFactory("seed-1").new() != IdFactory("seed-2").new()

    def test_ids_are_unique_uuids(self) -> None:
        """Ids are distinct, valid version-5 UUID strings."""
        ids = [IdFactory("s").new() for _ in range(1)] + [IdFactory("s").child("x").new()]
        factory = IdFactory("s")
        ids += [factory.new() for _ in range(100)]
        assert len(set(ids)) == len(ids) - 1  # the first id equals the first of `factory`
        assert all(uuid.UUID(i).version == 5 for i in ids)

    def test_namespaces_are_independent(self) -> None:
        """Minting in one child does not shift the ids of another (order of producers does not matter)."""
        one = IdFactory("s")
        finance, ops = one.child("agent:finance"), one.child("agent:ops")
        first = [finance.new(), ops.new(), finance.new()]
        two = IdFactory("s")
        ops2, finance2 = two.child("agent:ops"), two.child("agent:finance")
        second = [ops2.new(), ops2.new(), finance2.new(), finance2.new()]
        assert first[0] == second[2]
        assert first[2] == second[3]
        assert first[1] == second[0]
        assert finance.namespace == "agent:finance"
        assert one.child("a").child("b").namespace == "a/b"

    def test_children_differ_from_parent_and_each_other(self) -> None:
        """The same position in different namespaces gives different ids."""
        root = IdFactory("s")
        assert len({root.new(), root.child("a").new(), root.child("b").new()}) == 3

    def test_derive_is_stable_and_counter_free(self) -> None:
        """derive depends on its parts only, not on how many ids were minted before."""
        factory = IdFactory("s", "governance")
        before = factory.derive("verdict", "p-1")
        factory.new()
        assert factory.derive("verdict", "p-1") == before
        assert factory.derive("verdict", "p-2") != before
        assert IdFactory("s", "executor").derive("verdict", "p-1") != before


@settings(max_examples=500)
@given(st.binary(min_size=16, max_size=32))
def test_uuid5_text_is_the_uuid_modules(digest: bytes) -> None:
    """An id's text is uuid.UUID's for the digest's first 16 bytes with version 5, bit for bit (ids are in the
    ledger: another rendering would change every run's bytes)."""
    assert uuid5_text(digest) == str(uuid.UUID(bytes=digest[:16], version=5))


def test_uuid5_text_sets_version_and_variant() -> None:
    """Bytes all ones or all zeros still give a version-5, RFC 4122 id."""
    for digest in (b"\xff" * 16, b"\x00" * 16):
        parsed = uuid.UUID(uuid5_text(digest))
        assert parsed.version == 5
        assert parsed.variant == uuid.RFC_4122
