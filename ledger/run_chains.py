"""One hash chain per run and the chain of run heads (the PostgreSQL ledger's): how a head row is hashed, and the
walk that checks every run's chain and the heads chain against each other.

On PostgreSQL an entry's `prev_hash` is the hash of the previous entry *of the same run* (GENESIS_HASH for a run's
first) and the row keeps its position in the run, `chain_seq` (1-based). `chain_seq` is not in the hashed bytes: it
is derivable (the number of links back to GENESIS) and the walk derives it and compares. The ledger-wide `seq` stays
in the hashed bytes, gapless, and the Merkle tree and checkpoints stay over every entry in seq order.

Each append transaction adds one head row per run it touched: (its own gapless seq, run_id, the run's chain_seq and
head hash after the append, the ledger seq of that head entry, prev_hash = the previous head row's hash, hash). A head
row's hash is sha256(prev_hash ‖ canonical JSON of the other fields) — the entries' rule. An auditor reads every
run's head in one ordered, hash-linked list; the walk checks that each head row names the entry it says, and that
each run's last head row names the run's last entry (a run whose tail was cut is found).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from coalition.bus.canonical import canonical_json
from coalition.ledger.entry import GENESIS_HASH


def head_row_hash(prev_hash: str, *, seq: int, run_id: str, chain_seq: int, head_hash: str, entry_seq: int) -> str:
    """sha256(prev_hash ‖ canonical JSON of the head row's other fields)."""
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(
        canonical_json(
            {"chain_seq": chain_seq, "entry_seq": entry_seq, "head_hash": head_hash, "run_id": run_id, "seq": seq}
        )
    )
    return digest.hexdigest()


@dataclass
class ChainsReport:
    """Every run's chain and the heads chain: how many, and the first problem (with the ledger seq it is at)."""

    runs: int = 0
    heads: int = 0
    problem: str | None = None
    first_bad_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        runs = f"{self.runs} run chain{'' if self.runs == 1 else 's'}"
        heads = f"{self.heads} head{'' if self.heads == 1 else 's'}"
        return f"{runs}, {heads}: " + ("ok" if self.ok else f"{self.problem}")


@dataclass
class _RunState:
    chain_seq: int
    hash: str
    seq: int  # the ledger seq of the run's last entry


@dataclass
class RunChainWalk:
    """Fed every entry in ledger seq order, then every head row in heads order; stops at the first problem."""

    report: ChainsReport = field(default_factory=ChainsReport)
    _runs: dict[str, _RunState] = field(default_factory=dict)
    _last_head: dict[str, int] = field(default_factory=dict)  # run -> chain_seq of its last head row
    _head_hash: str = GENESIS_HASH

    def _fail(self, reason: str, seq: int | None) -> bool:
        self.report.problem, self.report.first_bad_seq = reason, seq
        return False

    def entry(self, seq: int, run_id: str, chain_seq: int, prev_hash: str, hash_: str) -> bool:
        """One entry (its hash already checked against its bytes); False once a problem is found."""
        state = self._runs.get(run_id)
        expected_prev, expected_n = (GENESIS_HASH, 1) if state is None else (state.hash, state.chain_seq + 1)
        if prev_hash != expected_prev:
            where = "GENESIS" if state is None else f"the hash of seq {state.seq}, the run's entry {state.chain_seq}"
            return self._fail(
                f"run {run_id}'s chain is broken: the prev_hash of seq {seq} is not {where}"
                " (an entry of the run missing, moved in from elsewhere or forked)",
                seq,
            )
        if chain_seq != expected_n:
            return self._fail(f"run {run_id}: seq {seq} says it is the run's entry {chain_seq}, not {expected_n}", seq)
        if state is None:
            self._runs[run_id] = _RunState(chain_seq, hash_, seq)
            self.report.runs += 1
        else:
            state.chain_seq, state.hash, state.seq = chain_seq, hash_, seq
        return True

    def head(
        self,
        row: tuple[int, str, int, str, int, str, str],
        named: tuple[str, int, str] | None,
        expected_seq: int,
    ) -> bool:
        """One head row (seq, run_id, chain_seq, head_hash, entry_seq, prev_hash, hash) and the (run_id, chain_seq,
        hash) of the entry at its entry_seq, None if there is none."""
        seq, run_id, chain_seq, head_hash, entry_seq, prev_hash, hash_ = row
        if seq != expected_seq:
            return self._fail(f"the heads chain: head {expected_seq} is missing (the next is {seq})", entry_seq)
        if prev_hash != self._head_hash:
            return self._fail(f"the heads chain: head {seq} does not link to head {seq - 1}", entry_seq)
        recomputed = head_row_hash(
            prev_hash, seq=seq, run_id=run_id, chain_seq=chain_seq, head_hash=head_hash, entry_seq=entry_seq
        )
        if recomputed != hash_:
            return self._fail(f"the heads chain: head {seq}'s hash does not match its fields (altered)", entry_seq)
        if named is None:
            return self._fail(
                f"the heads chain: head {seq} names seq {entry_seq} of run {run_id}, which is not in the ledger"
                " (entries removed)",
                entry_seq,
            )
        if named != (run_id, chain_seq, head_hash):
            return self._fail(
                f"the heads chain: head {seq} says seq {entry_seq} is run {run_id}'s entry {chain_seq}"
                f" with hash {head_hash[:12]}…, the ledger's is not (altered or replaced)",
                entry_seq,
            )
        if chain_seq <= self._last_head.get(run_id, 0):
            return self._fail(f"the heads chain: head {seq} moves run {run_id}'s head back", entry_seq)
        self._last_head[run_id] = chain_seq
        self._head_hash = hash_
        self.report.heads = seq
        return True

    def finish(self) -> ChainsReport:
        """Each run's last head row names the run's last entry; the report."""
        if self.report.ok:
            for run_id, state in self._runs.items():
                if self._last_head.get(run_id) != state.chain_seq:
                    self._fail(
                        f"run {run_id}'s last entry (seq {state.seq}, its entry {state.chain_seq}) is not its head in"
                        f" the heads chain (which names its entry {self._last_head.get(run_id, 0)})",
                        state.seq,
                    )
                    break
        return self.report
