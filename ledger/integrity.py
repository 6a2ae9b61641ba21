"""`ledger verify`, in full: the chain, the Merkle tree and its stored nodes, every checkpoint's signature and root,
consistency with the witness and with what this client saw last, and the derived data — one line for what failed.

The verdicts, in the order they are looked for: the chain (first bad seq) · the tree's stored nodes · a checkpoint
signed by an unknown key or not verifying · a checkpoint for another ledger · a ledger replaced at its path ·
rewritten from N (a checkpoint's root no longer matches) · forked after N (two checkpoints signed by the ledger key
that disagree) · truncated after N (the ledger's own records reach further) · rolled back to N (a witness or a
client saw more) · the witness store rolled back · derived data (a stored body that is not exactly the canonical
JSON of its value, a repeated key say, which readers read differently; filter columns; full-text index).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from coalition.ledger.checkpoint import SignedCheckpoint, open_checkpoint, peek_size
from coalition.ledger.entry import GENESIS_HASH
from coalition.ledger.notary import ProvableLedger, origin_of
from coalition.ledger.run_chains import ChainsReport
from coalition.ledger.signed_note import NoteError, Verifier
from coalition.ledger.tree import BLOCK, StoredTree, TreeBuilder
from coalition.ledger.witness import Seen, WitnessDir

Row = tuple[Any, ...]


class VerifiableLedger(ProvableLedger, Protocol):
    def iter_raw(self, *, batch: int = 10_000) -> Iterator[Row]: ...

    def schema_problem(self) -> str | None: ...

    def derived_data_problem(self) -> str | None: ...


@runtime_checkable
class RunChained(Protocol):
    """A ledger with one chain per run and a chain of run heads (PostgreSQL): its entries' prev_hash links inside
    their run, and `run_chains` walks those chains and the heads chain."""

    def run_chains(self) -> ChainsReport: ...


@dataclass(frozen=True)
class Source:
    """Where a checkpoint came from, for the one-line verdict."""

    name: str  # "ledger", "witness", or "<client>'s memory"
    trusted: bool  # outside the ledger: a witness or a client's memory


@dataclass
class IntegrityReport:
    ok: bool
    entries: int
    reason: str | None = None
    first_bad_seq: int | None = None
    head_hash: str | None = None
    root: bytes | None = None
    newest: SignedCheckpoint | None = None
    newest_source: str | None = None
    checkpoints_checked: int = 0
    derived_checked: bool = False
    chains: ChainsReport | None = None  # the run chains and the heads chain, on a ledger that has them
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not self.ok:
            where = f" at seq {self.first_bad_seq}" if self.first_bad_seq is not None else ""
            return f"TAMPERED{where}: {self.reason}"
        parts = [f"OK: {self.entries} entries, head {self.head_hash}"]
        if self.chains is not None:
            parts.append(self.chains.line())
        if self.root is not None:
            parts.append(f"tree root {self.root.hex()}")
        if self.newest is not None:
            parts.append(
                f"consistent with the newest checkpoint ({self.newest.size} entries, signed by {self.newest.signer},"
                f" from {self.newest_source}; {self.checkpoints_checked} checkpoints checked)"
            )
        else:
            parts.append("no checkpoint yet")
        if self.derived_checked:
            parts.append("filter columns and full-text index match the entries, each its value's canonical JSON")
        return "; ".join(parts)


def _fail(entries: int, reason: str, seq: int | None = None) -> IntegrityReport:
    return IntegrityReport(ok=False, entries=entries, reason=reason, first_bad_seq=seq)


def _walk(
    rows: Iterator[Row], wanted: set[int], stored: dict[tuple[int, int], bytes], *, linked: bool = True
) -> tuple[IntegrityReport | None, int, str, dict[int, bytes], bytes]:
    """One pass: the chain link by link, the tree leaf by leaf (in runs of up to `_RUN` leaves), the root at every
    wanted size, stored nodes compared. A bad stored node is reported before a chain failure after it.

    `linked` as in `verify_rows`: False when the ledger chains each run (its links are the run chains' walk's)."""
    sha256 = hashlib.sha256
    builder = TreeBuilder()
    roots: dict[int, bytes] = {}
    if 0 in wanted:
        roots[0] = builder.root()
    pending: list[bytes] = []

    def flush() -> IntegrityReport | None:
        builder.extend(pending)
        pending.clear()
        for level, index, node in builder.completed:
            if stored.get((level, index), node) != node:
                lo, hi = index << level, (index + 1) << level
                reason = f"the stored Merkle tree node over seq {lo + 1}..{hi} does not match the entries"
                return _fail(hi, reason, lo + 1)
        builder.completed.clear()
        return None

    def failed(report: IntegrityReport) -> tuple[IntegrityReport, int, str, dict[int, bytes], bytes]:
        return flush() or report, 0, "", {}, b""

    expected = 1
    last_hash = GENESIS_HASH
    last_bytes = last_hash.encode("ascii")
    for seq, body_seq, prev_hash, hash_, body in rows:
        if seq != expected:
            return failed(_fail(expected - 1, f"seq {expected} is missing (the next stored seq is {seq})", expected))
        if not linked:
            last_bytes = (prev_hash or "").encode()
        elif prev_hash != last_hash:
            return failed(_fail(seq - 1, f"prev_hash does not link to the hash of seq {seq - 1}", seq))
        h = sha256(last_bytes)
        h.update(body)
        if h.hexdigest() != hash_:
            return failed(_fail(seq - 1, "hash does not match the entry's content (altered)", seq))
        if body_seq != seq:
            return failed(_fail(seq - 1, f"the entry says it is seq {body_seq} (moved)", seq))
        pending.append(body)
        if seq in wanted or len(pending) >= _RUN:
            problem = flush()
            if problem is not None:
                return problem, 0, "", {}, b""
            if seq in wanted:
                roots[seq] = builder.root()
        last_hash = hash_
        last_bytes = hash_.encode("ascii")
        expected += 1
    problem = flush()
    if problem is not None:
        return problem, 0, "", {}, b""
    return None, expected - 1, last_hash, roots, builder.root()


_RUN = 4096


def _pinned(verifiers: Sequence[Verifier], seen: Seen | None) -> list[Verifier]:
    """The key this client pinned when it first saw the ledger wins over the data directory's."""
    if seen is not None:
        try:
            return [Verifier.parse(seen.verifier_key)]
        except NoteError:
            return list(verifiers)
    return list(verifiers)


def check_ledger(
    ledger: VerifiableLedger,
    *,
    verifiers: Sequence[Verifier],
    witness: WitnessDir | None = None,
    seen: Seen | None = None,
    seen_name: str = "cli",
    derived: bool = True,
) -> IntegrityReport:
    """Everything `ledger verify` checks, first failure wins; see the module's docstring for the verdicts."""
    problem = ledger.schema_problem()
    if problem is not None:
        return _fail(0, problem, 1)
    origin = origin_of(ledger)
    memory = Source(f"{seen_name}'s memory", trusted=True)
    known = _pinned(verifiers, seen)

    own = Source("the ledger", trusted=False)
    candidates: list[tuple[Source, str, str]] = [(own, "", note) for note in ledger.stored_checkpoints()]
    if witness is not None:
        candidates += [(Source(f"the {witness.describe()}", True), name, n) for name, n in witness.notes(origin)]
    if seen is not None and seen.origin == origin:
        candidates.append((memory, "", seen.note))
    wanted = {size for _, _, note in candidates if (size := peek_size(note)) is not None}

    stored = {(level, index): node for level, index, node in ledger.tree_node_rows()}
    per_run = isinstance(ledger, RunChained)
    raw = ledger.iter_raw()
    try:
        failed, size, head, roots, root = _walk(raw, wanted, stored, linked=not per_run)
    finally:
        close = getattr(raw, "close", None)
        if close is not None:
            close()
    if failed is not None:
        return failed
    chains = ledger.run_chains() if isinstance(ledger, RunChained) else None
    if chains is not None and not chains.ok:
        bad = chains.first_bad_seq
        return _fail(size if bad is None else bad - 1, chains.problem or "", bad)
    report = IntegrityReport(ok=True, entries=size, head_hash=head, root=root, chains=chains)
    beyond = [key for key in stored if (key[1] + 1) << key[0] > size]
    if beyond:
        level, index = max(beyond, key=lambda key: (key[1] + 1) << key[0])
        reach = (index + 1) << level
        return _fail(size, f"truncated after seq {size}: the ledger's Merkle tree records {reach} entries", size + 1)
    if seen is not None and seen.origin != origin:
        return _fail(
            size,
            f"replaced: {seen_name} last saw the ledger at this path as {seen.origin} with {seen.size} entries;"
            " it is now"
            f" {origin} (rewritten from seq 1, or a different ledger; if on purpose: coalition ledger forget)",
            1,
        )
    # Every checkpoint must be signed by a known key and be about this ledger.
    valid: list[tuple[Source, SignedCheckpoint]] = []
    for source, name, note in candidates:
        label = f"the checkpoint {name} in {source.name}" if name else f"a checkpoint in {source.name}"
        try:
            cp = open_checkpoint(note, known)
        except NoteError as exc:
            size_claimed = peek_size(note)
            what = f"the checkpoint of size {size_claimed} in {source.name}" if size_claimed is not None else label
            return _fail(size, f"{what}: {exc}")
        if cp.checkpoint.origin != origin:
            return _fail(size, f"{label} is for another ledger ({cp.checkpoint.origin}, this one is {origin})")
        valid.append((source, cp))
    report.checkpoints_checked = len(valid)

    matching = [(s, cp) for s, cp in valid if cp.size <= size and roots.get(cp.size) == cp.root]
    mismatching = [(s, cp) for s, cp in valid if cp.size <= size and roots.get(cp.size) != cp.root]
    beyond_cps = [(s, cp) for s, cp in valid if cp.size > size]
    if mismatching:
        source, first_bad = min(mismatching, key=lambda item: item[1].size)
        agreed = max((cp.size for _, cp in matching if cp.size < first_bad.size), default=0)
        rival = max(
            (item for item in matching if item[1].size >= first_bad.size), key=lambda i: i[1].size, default=None
        )
        if rival is not None:
            return _fail(
                size,
                f"forked after seq {agreed}: the checkpoint of {first_bad.size} entries in {source.name} and the"
                f" one of {rival[1].size} in {rival[0].name} are both signed by {first_bad.signer} but disagree",
                agreed + 1,
            )
        return _fail(
            size,
            f"rewritten from seq {agreed + 1} at the latest: the tree of its first {first_bad.size} entries no longer"
            f" matches the checkpoint in {source.name}",
            agreed + 1,
        )
    if beyond_cps:
        source, far = max(beyond_cps, key=lambda item: item[1].size)
        recorded = [cp for s, cp in beyond_cps if not s.trusted]
        if recorded:
            reach = max(cp.size for cp in recorded)
            return _fail(
                size, f"truncated after seq {size}: the ledger's own checkpoint covers {reach} entries", size + 1
            )
        return _fail(
            size, f"rolled back to seq {size}: {source.name} holds a checkpoint of {far.size} entries", size + 1
        )
    if witness is not None and seen is not None and seen.origin == origin:
        witnessed = max((cp.size for s, cp in valid if s.name == f"the {witness.describe()}"), default=0)
        if seen.size > witnessed:
            return _fail(
                size,
                f"the witness store was rolled back: its newest checkpoint covers {witnessed} entries but"
                f" {seen_name} has seen one of {seen.size} ({witness.describe()})",
            )
    if derived:
        problem = ledger.derived_data_problem()
        if problem is not None:
            return _fail(size, problem)
        report.derived_checked = True
    if matching:
        order = {"the ledger": 0}
        source, newest = max(matching, key=lambda item: (item[1].size, order.get(item[0].name, 1)))
        report.newest, report.newest_source = newest, source.name
    if size % BLOCK and size > 0 and not matching:
        report.notes.append("no checkpoint covers this ledger yet")
    return report


def guard_problem(
    ledger: ProvableLedger,
    *,
    verifiers: Sequence[Verifier],
    witness: WitnessDir | None,
    seen: Seen | None,
    seen_name: str,
) -> tuple[str | None, SignedCheckpoint | None]:
    """The quick check a client makes whenever it opens a ledger: is it provably consistent with the newest checkpoint
    this client saw and the witness's newest? (problem or None, the newest consistent checkpoint to remember)."""
    origin = origin_of(ledger)
    if seen is not None and seen.origin != origin:
        return (
            f"{seen_name} last saw the ledger at this path as {seen.origin} with {seen.size} entries,"
            f" it is now {origin}"
            " (replaced or rewritten; if on purpose: coalition ledger forget)",
            None,
        )
    known = _pinned(verifiers, seen)
    candidates: list[tuple[str, str]] = []
    if seen is not None:
        candidates.append((f"{seen_name}'s memory", seen.note))
    if witness is not None:
        first = next(witness.newest(origin), None)
        if first is not None:
            candidates.append((f"the {witness.describe()}", first[1]))
    size, _ = ledger.head()
    tree = StoredTree(ledger, size)
    newest: SignedCheckpoint | None = None
    for source, note in candidates:
        try:
            cp = open_checkpoint(note, known)
        except NoteError as exc:
            return f"a checkpoint in {source}: {exc}", None
        if cp.size > size:
            return f"rolled back to seq {size}: {source} holds a checkpoint of {cp.size} entries", None
        if tree.root(cp.size) != cp.root:
            return (
                f"the ledger does not extend the checkpoint of {cp.size} entries in {source} (rewritten or forked)",
                None,
            )
        if newest is None or cp.size > newest.size:
            newest = cp
    return None, newest
