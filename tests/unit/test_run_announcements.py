"""A run announced to agent workers is acted on only as its coordinator signed it: by the runner key the worker
trusts, for the run id it is stored under, unaltered (coalition.scenarios.worker_orders.read_announcement)."""

from __future__ import annotations

import orjson
import pytest

from coalition.bus.codec import decode, encode
from coalition.bus.control_messages import RunAnnounced
from coalition.bus.keys import RUNNER, Keyring
from coalition.bus.signing import sign_wire
from coalition.scenarios.errors import RunnerError
from coalition.scenarios.worker_orders import Announcement, read_announcement, signed_announcement

KEYS = Keyring.ephemeral([RUNNER, "agent:finance"])
TRUSTED = KEYS.directory()


def announcement(run_id: str = "run-1") -> Announcement:
    return Announcement(
        run_id=run_id, namespace=f"run-{run_id}", scenario={"name": "s"}, scenario_hash="h", policy={"name": "p"},
        seed=7, agents=["finance"], models={}, keys={"agent:finance": "ed25519:x"},
    )  # fmt: skip


class TestReadAnnouncement:
    """Each way to forge an announcement is refused with its reason; the coordinator's own is read back."""

    def test_the_signed_announcement_reads_back(self) -> None:
        signed = signed_announcement(announcement(), KEYS.private(RUNNER))
        assert read_announcement("run-1", signed, TRUSTED) == announcement()

    def test_an_unsigned_document_is_refused(self) -> None:
        plain = orjson.dumps(announcement().model_dump(mode="json"))  # what coordinators stored before
        with pytest.raises(RunnerError, match="is not a signed announcement"):
            read_announcement("run-1", plain, TRUSTED)

    def test_a_signature_by_another_key_is_refused(self) -> None:
        """A worker host holds agent keys: one of them signing as the runner does not verify."""
        forged = signed_announcement(announcement(), KEYS.private("agent:finance"))
        with pytest.raises(RunnerError, match=r"does not verify against runner's key \(forged or altered\)"):
            read_announcement("run-1", forged, TRUSTED)

    def test_a_key_that_may_not_announce_is_refused(self) -> None:
        """Signed by an agent's own key in its own name: a valid signature from a producer that may not announce."""
        signed = decode(signed_announcement(announcement(), KEYS.private(RUNNER)))
        as_agent = KEYS.private("agent:finance")
        ((_, raw),) = sign_wire([signed.model_copy(update={"source": "agent:finance", "signature": None})], as_agent)
        with pytest.raises(RunnerError, match="may be published by runner only, not by agent:finance"):
            read_announcement("run-1", raw, TRUSTED)

    def test_an_altered_announcement_is_refused(self) -> None:
        """The models or policy changed after signing (the signature kept)."""
        signed = decode(signed_announcement(announcement(), KEYS.private(RUNNER)))
        document = {**signed.payload.model_dump()["document"], "models": {"finance": {"model": "openai:gpt-x"}}}
        altered = signed.model_copy(update={"payload": RunAnnounced(document=document)})
        with pytest.raises(RunnerError, match=r"does not verify against runner's key \(forged or altered\)"):
            read_announcement("run-1", encode(altered), TRUSTED)

    def test_an_announcement_moved_under_another_run_is_refused(self) -> None:
        signed = signed_announcement(announcement("run-1"), KEYS.private(RUNNER))
        with pytest.raises(RunnerError, match=r"belongs to run run-1, not run-2 \(replayed\)"):
            read_announcement("run-2", signed, TRUSTED)
