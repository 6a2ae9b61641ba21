"""The notary: signs a checkpoint of the ledger's tree at the end of every run, every 1,000 entries and after every
human decision, and hands it to the ledger (a convenience copy), the witness store and the clients that saw it.

It listens to the ledger's commits (`add_commit_listener`), so every writer that opens the ledger through the
composition root checkpoints the same way: the runner, the recorder, the approvals service in the CLI or the
console. A checkpoint the witness cannot accept (the ledger is not consistent with the witness's newest) is not
witnessed and is reported: `ledger verify` then names the fork.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from coalition.bus.clock import Clock
from coalition.lazy_logger import LazyLogger
from coalition.ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.errors import LedgerError
from coalition.ledger.signed_note import NoteError, Signer, Verifier
from coalition.ledger.tree import StoredTree
from coalition.ledger.witness import SeenCheckpoint, WitnessDir

log = LazyLogger("coalition.ledger.notary")

CHECKPOINT_EVERY = 1000
HUMAN_DECISIONS = frozenset({"approval", "rejection"})


class ProvableLedger(Protocol):
    """What the tree, the notary and the integrity check need from a backend, beyond the `Ledger` port."""

    @property
    def ledger_id(self) -> str: ...

    def leaf_data(self, lo: int, hi: int) -> list[bytes]: ...

    def tree_node(self, level: int, index: int) -> bytes | None: ...

    def tree_node_rows(self) -> list[tuple[int, int, bytes]]: ...

    def stored_checkpoints(self) -> list[str]: ...

    def add_checkpoint(self, size: int, note: str) -> None: ...

    def head(self) -> tuple[int, str]: ...


def origin_of(ledger: ProvableLedger) -> str:
    return f"coalition.ledger/{ledger.ledger_id}"


def checkpoint_due(entries: Sequence[LedgerEntry], every: int = CHECKPOINT_EVERY) -> bool:
    """After these entries were committed: a run ended, a human decided, or a multiple of `every` was crossed."""
    first, last = entries[0].seq - 1, entries[-1].seq
    if last // every != first // every:
        return True
    return any(
        entry.kind in HUMAN_DECISIONS or (entry.kind == "run" and entry.message_type == "run.finished")
        for entry in entries
    )


@dataclass
class Notary:
    ledger: ProvableLedger
    load_signer: Callable[[], Signer]  # loaded (or created) on the first checkpoint
    witness: WitnessDir
    clock: Clock
    seen: Sequence[SeenCheckpoint] = ()
    every: int = CHECKPOINT_EVERY
    _signer: Signer | None = field(default=None, init=False, repr=False)

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = self.load_signer()
        return self._signer

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    def after_commit(self, entries: list[LedgerEntry]) -> None:
        """The commit listener: a checkpoint when one is due. A failure here never undoes the append."""
        if not checkpoint_due(entries, self.every):
            return
        try:
            self.checkpoint()
        except (LedgerError, OSError, LookupError) as exc:
            log.warning("ledger.checkpoint_failed", reason=str(exc))

    def checkpoint(self) -> SignedCheckpoint | None:
        """Sign the tree at the current head; keep it in the ledger, the witness and each client's memory."""
        size, _ = self.ledger.head()
        if size == 0:
            return None
        tree = StoredTree(self.ledger, size)
        origin = origin_of(self.ledger)
        try:
            root = tree.root()
        except LookupError as exc:  # an entry or stored node gone (deleted outside the ledger): nothing to sign over
            raise LedgerError(f"cannot sign a checkpoint: {exc} (run `coalition ledger verify`)") from None
        checkpoint = Checkpoint(origin, size, root)
        note = checkpoint.sign(self.signer)
        self.ledger.add_checkpoint(size, note)
        signed = SignedCheckpoint(
            checkpoint, note, f"{self.verifier.name}+{self.verifier.key_id.hex()}", self.verifier.encode()
        )
        conflict = self._witness_conflict(tree, origin)
        if conflict is not None:
            log.warning("ledger.checkpoint_not_witnessed", size=size, reason=conflict)
            return signed
        self.witness.add(origin, size, checkpoint.root, note)
        for memory in self.seen:
            memory.remember(
                origin=origin,
                verifier_key=self.verifier.encode(),
                note=note,
                size=size,
                at=self.clock.now(),
                witness=self.witness.describe(),
            )
        return signed

    def _witness_conflict(self, tree: StoredTree, origin: str) -> str | None:
        """Why the witness must not take this tree (its newest checkpoint is not a prefix of it), or None."""
        newest: SignedCheckpoint | None = None
        for _, note in self.witness.newest(origin):
            try:
                newest = open_checkpoint(note, [self.verifier])
                break
            except NoteError:
                continue
        if newest is None or newest.size > tree.size:
            return None
        if tree.root(newest.size) != newest.root:
            return f"the witness holds a checkpoint of size {newest.size} that this ledger does not extend (a fork)"
        return None
