"""signatures_checked_once: inside it a signature verified good is not verified again for the same key over the same
bytes; a signature, key or statement that differs in anything is verified (and refused) as outside it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from coalition.governance.decision_signatures import (
    RunIdentities,
    scripted_key,
    sign,
    signature_problem,
    signatures_checked_once,
    statement,
)

SCRIPTED = RunIdentities({}, interactive=False, runs=frozenset({"run"}))
WHEN = datetime(2025, 3, 3, 9, tzinfo=UTC)


def said(reason: str) -> bytes:
    return statement(
        proposal_id="p-1", proposal_hash="h-1", approver="carol", decision="approve", reason=reason, decided_at=WHEN
    )


def problem(signature: str, data: bytes, approver: str = "carol") -> str | None:
    return signature_problem(
        identities=SCRIPTED, approver=approver, method="scenario-board", signature=signature, signer_key=None, data=data
    )


def altered(signature: str) -> str:
    """The same signature with one bit of its last byte flipped (still well-formed base64 of 64 bytes)."""
    raw = bytearray(base64.b64decode(signature))
    raw[-1] ^= 1
    return base64.b64encode(bytes(raw)).decode()


@pytest.fixture
def good() -> tuple[str, bytes]:
    data = said("fits the launch plan")
    return sign(scripted_key("carol"), data), data


def test_whatever_differs_from_a_verified_signature_is_still_refused(good: tuple[str, bytes]) -> None:
    signature, data = good
    with signatures_checked_once():
        assert problem(signature, data) is None
        assert problem(altered(signature), data) is not None  # another signature over the same bytes
        assert problem(signature, said("approved after all")) is not None  # the same signature over other bytes
        assert problem(signature, data, approver="dave") is not None  # the same signature for another key
        assert problem(altered(signature), data) is not None  # a refused one is refused again, not remembered
        assert problem(signature, data) is None
