"""Attacks on a recorded run that `replay --verify` must name, whatever its comparison skips: an entry altered, one
taken out, one added, two swapped, a human decision altered, a value changed only in its JSON type. Each forged
ledger holds the golden run (tests/golden) edited and re-chained with recomputed hashes, as an attacker with write
access would leave it (its chain verifies); verify reports the first divergent entry by its seq."""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from ledger_attacks import attacker

from coalition.bus.canonical import canonical_json
from coalition.ledger.base import LedgerQuery
from coalition.ledger.digest import history_bodies
from coalition.ledger.entry import GENESIS_HASH
from coalition.ledger.errors import MalformedEntry
from coalition.ledger.history import run_history
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.replay_verify import VerifyResult, verify_run

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).parents[1] / "golden" / "price-spike-lean.db"
RUN = "golden"

Bodies = list[dict[str, Any]]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Bodies:
    """The golden run's stored bodies in sequence order (every field but `hash`)."""
    copy = tmp_path_factory.mktemp("golden") / "ledger.db"
    shutil.copy(GOLDEN, copy)
    with SqliteLedger(copy) as ledger:
        return ledger.run_bodies(RUN)


def forged_ledger(
    recorded: Bodies,
    tmp_path: Path,
    edit: Callable[[Bodies], None],
    encode: Callable[[dict[str, Any]], bytes] = canonical_json,
) -> Path:
    """A ledger holding the recorded bodies as `edit` leaves them, renumbered, encoded by `encode` (canonical JSON, as a
    ledger writes them) and re-chained."""
    bodies = [orjson.loads(orjson.dumps(body)) for body in recorded]
    edit(bodies)
    path = tmp_path / "forged.db"
    SqliteLedger(path).close()  # the schema
    conn = attacker(path)
    prev = GENESIS_HASH
    for seq, fields in enumerate(bodies, start=1):
        fields.update(seq=seq, prev_hash=prev)
        body = encode(fields)
        prev = hashlib.sha256(prev.encode() + body).hexdigest()
        conn.execute("INSERT INTO entries (seq, hash, body) VALUES (?, ?, ?)", (seq, prev, body.decode()))
    conn.close()
    return path


def forged(
    recorded: Bodies,
    tmp_path: Path,
    edit: Callable[[Bodies], None],
    encode: Callable[[dict[str, Any]], bytes] = canonical_json,
) -> VerifyResult:
    """Replay --verify a ledger holding the recorded bodies as `edit` leaves them, renumbered, encoded by `encode` and
    re-chained."""
    with SqliteLedger(forged_ledger(recorded, tmp_path, edit, encode)) as ledger:
        assert ledger.verify().ok  # a chain check alone accepts every forgery here
        return verify_run(ledger, RUN)


def first(bodies: Bodies, kind: str, **fields: Any) -> int:
    """The index of the first body of `kind` with these field values."""
    return next(i for i, b in enumerate(bodies) if b["kind"] == kind and all(b.get(k) == v for k, v in fields.items()))


def test_the_untouched_run_re_chained_is_identical(recorded: Bodies, tmp_path: Path) -> None:
    assert forged(recorded, tmp_path, lambda bodies: None).identical


def test_an_altered_derived_entry(recorded: Bodies, tmp_path: Path) -> None:
    at = first(recorded, "verdict", outcome="deny")

    def allow(bodies: Bodies) -> None:
        bodies[at]["outcome"] = "allow"
        bodies[at]["payload"]["outcome"] = "allow"

    result = forged(recorded, tmp_path, allow)
    assert (result.identical, result.seq, result.differed[0]) == (False, at + 1, "outcome")


def test_a_missing_entry(recorded: Bodies, tmp_path: Path) -> None:
    at = first(recorded, "execution")
    result = forged(recorded, tmp_path, lambda bodies: bodies.pop(at))
    assert (result.identical, result.seq) == (False, at + 1)  # the entry now in its place is not what follows


def test_a_missing_last_entry(recorded: Bodies, tmp_path: Path) -> None:
    result = forged(recorded, tmp_path, lambda bodies: bodies.pop())
    assert (result.identical, result.seq, result.differed) == (False, None, ("(missing)",))
    line = f"DIVERGENT after the last of the run's {len(recorded) - 1} entries (run): re-derived but not recorded"
    assert result.line() == line


def test_an_extra_entry(recorded: Bodies, tmp_path: Path) -> None:
    at = first(recorded, "observation")

    def repeat(bodies: Bodies) -> None:
        bodies.insert(at + 1, {**bodies[at], "message_id": "an-extra-observation"})

    result = forged(recorded, tmp_path, repeat)
    assert (result.identical, result.seq) == (False, at + 2)


def test_two_entries_swapped(recorded: Bodies, tmp_path: Path) -> None:
    at = first(recorded, "authorization")

    def swap(bodies: Bodies) -> None:
        bodies[at - 1], bodies[at] = bodies[at], bodies[at - 1]

    result = forged(recorded, tmp_path, swap)
    assert (result.identical, result.seq) == (False, at)


def test_an_altered_human_decision(recorded: Bodies, tmp_path: Path) -> None:
    at = first(recorded, "rejection")

    def another_reason(bodies: Bodies) -> None:
        bodies[at]["payload"]["reason"] = "approved after all"
        bodies[at]["rationale"] = "approved after all"

    result = forged(recorded, tmp_path, another_reason)
    assert not result.identical
    assert result.seq is not None
    assert recorded[result.seq - 1]["kind"] in ("rejection", "decision_point", "resolution")


def test_a_value_changed_only_in_its_json_type(recorded: Bodies, tmp_path: Path) -> None:
    at = first(recorded, "decision_point")

    def as_float(bodies: Bodies) -> None:
        bodies[at]["payload"]["day"] = float(bodies[at]["payload"]["day"])  # equal in Python, not as JSON

    result = forged(recorded, tmp_path, as_float)
    assert (result.identical, result.seq, result.differed) == (False, at + 1, ("payload",))


def _reversed_keys(value: Any) -> Any:
    """A JSON value with every object's keys in reverse order: the same values, not canonical JSON."""
    if isinstance(value, dict):
        return {k: _reversed_keys(v) for k, v in reversed(list(value.items()))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


def _out_of_order(fields: dict[str, Any]) -> bytes:
    """Every body but the first with its keys reversed (the first in canonical order: verify takes the bodies as
    coming sorted, and meets the others)."""
    return canonical_json(fields) if fields["seq"] == 1 else orjson.dumps(_reversed_keys(fields))


def test_bodies_stored_out_of_canonical_order_are_judged_by_their_values(recorded: Bodies, tmp_path: Path) -> None:
    """A ledger an editor rewrote with its objects' keys reversed holds the same values: IDENTICAL. Verify's
    comparison encodes a stored body in the order its keys come only to find equal bytes faster; bodies not in
    canonical order are encoded canonically, not reported as divergent."""
    assert forged(recorded, tmp_path, lambda bodies: None, _out_of_order).identical


def test_a_value_changed_in_a_body_stored_out_of_canonical_order(recorded: Bodies, tmp_path: Path) -> None:
    at = first(recorded, "decision_point")

    def as_float(bodies: Bodies) -> None:
        bodies[at]["payload"]["day"] = float(bodies[at]["payload"]["day"])  # equal in Python, not as JSON

    result = forged(recorded, tmp_path, as_float, _out_of_order)
    assert (result.identical, result.seq, result.differed) == (False, at + 1, ("payload",))


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(fields: dict[str, Any]) -> None:
        if value is None:
            fields.pop(field, None)
        else:
            fields[field] = value

    return change


@pytest.mark.parametrize(
    "change",
    [
        _set("payload", [1]),
        _set("message_type", "no.such.type"),
        _set("superstep", "seven"),
        _set("message_id", 5),
        _set("actor", None),
        _set("sim_time", "yesterday"),
    ],
    ids=["payload-not-an-object", "unknown-type", "superstep-not-a-number", "id-not-text", "no-actor", "bad-time"],
)
def test_an_agent_output_that_cannot_be_decoded_is_refused_at_its_entry(
    recorded: Bodies, tmp_path: Path, change: Callable[[dict[str, Any]], None]
) -> None:
    """Its consumers could not decode it: DIVERGENT at its entry in one line, never an exception out of verify."""
    at = next(i for i, b in enumerate(recorded) if b["actor_kind"] == "agent" and b["kind"] == "message")
    result = forged(recorded, tmp_path, lambda bodies: change(bodies[at]))
    assert (result.identical, result.seq) == (False, at + 1)
    assert result.refused is not None
    assert result.refused.startswith("it cannot be decoded (")
    assert "\n" not in result.line()


def test_an_altered_decision_signature(recorded: Bodies, tmp_path: Path) -> None:
    """A recorded decision whose signature no longer verifies (one bit flipped, still well-formed) is not re-recorded:
    DIVERGENT at that decision, though verify checks each decision's signature only once (signatures_checked_once)."""
    at = first(recorded, "rejection")  # the golden run's one human decision

    def flip(bodies: Bodies) -> None:
        raw = bytearray(base64.b64decode(bodies[at]["payload"]["signature"]))
        raw[-1] ^= 1
        bodies[at]["payload"]["signature"] = base64.b64encode(bytes(raw)).decode()

    result = forged(recorded, tmp_path, flip)
    assert (result.identical, result.seq) == (False, at + 1)


def test_an_extra_key_in_the_recorded_run_started_is_one_line(recorded: Bodies, tmp_path: Path) -> None:
    """run.started is what the re-derivation starts from: one that no longer validates (a key it never had) refuses
    the replay in one line naming it (the CLI's exit 2), as every other reader of it does."""
    at = first(recorded, "run", message_type="run.started")

    def extra(bodies: Bodies) -> None:
        bodies[at]["payload"]["injected"] = True

    with pytest.raises(MalformedEntry) as refused:  # what every reader of run.started says (governance/approvals.py)
        forged(recorded, tmp_path, extra)
    assert str(refused.value) == (
        f"ledger entry {at + 1} is malformed (run {RUN!r}: its recorded run.started does not validate: injected: Extra"
        " inputs are not permitted); the file was altered: run coalition ledger verify"
    )


def test_a_forged_copy_of_a_decision_before_the_genuine_one(recorded: Bodies, tmp_path: Path) -> None:
    """A human decision recorded twice under one message id (a forged copy inserted before the genuine one): the run
    takes a decision in once, so the second copy is DIVERGENT at its entry, not folded into the first."""
    at = first(recorded, "rejection")  # the golden run's one human decision

    def forged_first_copy(bodies: Bodies) -> None:
        copy = orjson.loads(orjson.dumps(bodies[at]))
        copy["payload"]["reason"] = "forged first copy"
        copy["rationale"] = "forged first copy"
        bodies.insert(at, copy)

    result = forged(recorded, tmp_path, forged_first_copy)
    assert (result.identical, result.seq) == (False, at + 2)  # the genuine decision, now the second copy
    assert result.refused == f"its message id {recorded[at]['message_id']!r} is recorded already (at seq {at + 1})"
    assert "\n" not in result.line()
    with SqliteLedger(tmp_path / "forged.db") as ledger:  # the history (digest, replay) keeps both copies
        kept = [b["payload"].get("reason") for b in history_bodies(ledger, RUN) if b["kind"] == "rejection"]
        assert sorted(kept) == sorted(["forged first copy", recorded[at]["payload"]["reason"]])
        assert len(list(run_history(ledger, RUN))) == len(recorded) + 1


def test_an_entry_repeating_a_key_is_named_by_the_derived_data_check_and_read_by_replay_without_a_crash(
    recorded: Bodies, tmp_path: Path
) -> None:
    """A verdict whose bytes say `outcome` twice, "allow" (what SQLite's columns read) before the recorded "deny"
    (what every Python reader reads): the chain check passes it (the bytes hash and link right), the derived-data
    check names the entry (its readers disagree); replay --verify and the history readers read the last value, as
    recorded, and do not crash on it."""
    at = first(recorded, "verdict", outcome="deny")

    def twice(fields: dict[str, Any]) -> bytes:
        body = canonical_json(fields)
        return (
            body.replace(b'"outcome":"deny"', b'"outcome":"allow","outcome":"deny"', 1)
            if fields["seq"] == at + 1
            else body
        )

    with SqliteLedger(forged_ledger(recorded, tmp_path, lambda bodies: None, twice)) as ledger:
        assert ledger.verify().ok
        assert ledger.derived_data_problem() == (
            f"derived data: seq {at + 1}'s stored JSON is not canonical: the key 'outcome' appears twice in one"
            " object (readers disagree on its value)"
        )
        assert ledger.count(LedgerQuery(run_id=RUN, outcome="allow", kind="verdict")) == 2  # the column's reading
        assert [e.outcome for e in run_history(ledger, RUN) if e.seq == at + 1] == ["deny"]
        assert verify_run(ledger, RUN).identical


@pytest.mark.parametrize("kind", ["verdict", "rejection"])
def test_a_body_edited_under_its_old_hash(recorded: Bodies, tmp_path: Path, kind: str) -> None:
    """A body edited in place with its row's hash left as it was (the chain check names it; verify compares what the
    body says, never the hash): a denied verdict now allowing, or the human decision verify takes from the bodies it
    read once (its reason) — DIVERGENT, at the entry or where the decision is taken."""
    at = first(recorded, kind, outcome="deny") if kind == "verdict" else first(recorded, kind)
    copy = tmp_path / "edited.db"
    shutil.copy(GOLDEN, copy)
    body = orjson.loads(orjson.dumps(recorded[at]))
    if kind == "verdict":
        body["outcome"] = "allow"
        body["payload"]["outcome"] = "allow"
    else:
        body["payload"]["reason"] = body["rationale"] = "approved after all"
    conn = attacker(copy)
    conn.execute("UPDATE entries SET body = ? WHERE seq = ?", (canonical_json(body).decode(), body["seq"]))
    conn.close()
    with SqliteLedger(copy) as ledger:
        assert not ledger.verify().ok
        result = verify_run(ledger, RUN)
    assert not result.identical
    assert result.seq is not None
    if kind == "verdict":
        assert (result.seq, result.differed[0]) == (body["seq"], "outcome")
    else:
        assert recorded[result.seq - recorded[0]["seq"]]["kind"] in ("rejection", "decision_point", "resolution")
