"""The Merkle tree kept in the append transaction equals the tree built from scratch, whatever the batch sizes; its
proofs verify; a ledger written without it (or from before it) gets the same nodes when a writer opens it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from verdict_drafts import verdict_draft

from coalition.ledger import AppendOnlyViolation, EntryDraft, SqliteLedger, merkle
from coalition.ledger.notary import checkpoint_due
from coalition.ledger.tree import BLOCK, StoredTree, TreeBuilder

pytestmark = pytest.mark.unit


def draft(n: int) -> EntryDraft:
    return verdict_draft(n, run_id="run-tree")


def from_scratch(ledger: SqliteLedger) -> TreeBuilder:
    builder = TreeBuilder()
    builder.extend(ledger.leaf_data(0, ledger.head()[0]))
    return builder


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=12))
def test_incremental_nodes_equal_the_tree_from_scratch(batches: list[int]) -> None:
    with SqliteLedger(":memory:") as ledger:
        n = 0
        for size in batches:
            ledger.append([draft(n + i) for i in range(size)])
            n += size
        builder = from_scratch(ledger)
        assert sorted(ledger.tree_node_rows()) == sorted(builder.completed)
        with ledger.tree() as tree:
            assert tree.root() == builder.root()
            for index in {0, n // 2, n - 1}:
                leaf = merkle.leaf_hash(ledger.leaf_data(index, index + 1)[0])
                merkle.verify_inclusion(index, n, leaf, tree.inclusion_proof(index), tree.root())
            for size1 in {1, n // 3 or 1, n}:
                old = TreeBuilder()
                old.extend(ledger.leaf_data(0, size1))
                merkle.verify_consistency(size1, n, tree.consistency_proof(size1), old.root(), tree.root())


def test_writers_taking_turns_build_on_each_others_entries(tmp_path: Path) -> None:
    """A writer keeps the leaf hashes of the tree's last incomplete block for its next append; when another writer
    appended in between, or its own append was rolled back after its nodes were computed (and another writer's
    entries took their seqs), the block is read again: the stored nodes are those of the tree built from scratch."""
    path = tmp_path / "ledger.db"
    with SqliteLedger(path, synchronous="NORMAL") as one, SqliteLedger(path, synchronous="NORMAL") as two:
        n = 0
        for writer, size in [(one, 40), (two, 10), (one, 30), (one, 50), (two, 64), (one, 1), (two, 100), (one, 9)]:
            writer.append([draft(n + i) for i in range(size)])
            n += size
        assert sorted(one.tree_node_rows()) == sorted(from_scratch(one).completed)
        with sqlite3.connect(path) as conn:  # the next stored node fails to insert: the append is rolled back
            conn.execute("CREATE TRIGGER fail BEFORE INSERT ON tree_nodes BEGIN SELECT RAISE(ABORT, 'full'); END")
        with pytest.raises(AppendOnlyViolation):
            one.append([draft(n + i) for i in range(BLOCK)])
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TRIGGER fail")
        two.append([draft(n + i) for i in range(BLOCK)])  # as many entries as were rolled back, other ones
        one.append([draft(n + BLOCK + i) for i in range(BLOCK + 3)])
        assert sorted(one.tree_node_rows()) == sorted(from_scratch(one).completed)


def test_a_ledger_written_without_the_tree_gets_the_same_nodes_when_a_writer_opens_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SqliteLedger(path, synchronous="NORMAL", tree=False) as ledger:
        ledger.append([draft(i) for i in range(3 * BLOCK + 17)])
        assert ledger.tree_node_rows() == []
    with SqliteLedger(path, create=False) as reader:  # read-only tools build nothing, but still prove
        assert reader.tree_node_rows() == []
        with reader.tree() as tree:
            expected = from_scratch(reader)
            assert tree.root() == expected.root()
    with SqliteLedger(path) as writer:
        assert sorted(writer.tree_node_rows()) == sorted(expected.completed)


def test_a_proof_beyond_the_tree_is_refused() -> None:
    with SqliteLedger(":memory:") as ledger:
        ledger.append([draft(i) for i in range(10)])
        with ledger.tree() as tree, pytest.raises(merkle.ProofError):
            tree.inclusion_proof(10)
        with pytest.raises(merkle.ProofError):
            StoredTree(ledger, 10).perfect(4, 0)


def test_checkpoints_are_due_at_run_end_each_human_decision_and_every_thousand() -> None:
    with SqliteLedger(":memory:") as ledger:
        plain = ledger.append([draft(i) for i in range(999)])
        assert not checkpoint_due(plain)
        assert checkpoint_due(ledger.append([draft(999)]))  # crosses 1,000
        approval = draft(1000).model_copy(update={"kind": "approval", "actor": "human:carol", "actor_kind": "human"})
        assert checkpoint_due(ledger.append([approval]))
        finished = draft(1001).model_copy(update={"kind": "run", "message_type": "run.finished"})
        assert checkpoint_due(ledger.append([finished]))
        assert not checkpoint_due(ledger.append([draft(1002)]))


def test_every_append_path_tells_the_commit_listeners() -> None:
    """append, append_once, append_batch_once and append_checked (human decisions) all reach the notary."""
    seen: list[int] = []
    with SqliteLedger(":memory:") as ledger:
        ledger.add_commit_listener(lambda entries: seen.extend(e.seq for e in entries))
        ledger.append([draft(0)])
        ledger.append_once("c", "m1", [draft(1)])
        ledger.append_batch_once("c", [("m2", [draft(2)]), ("m1", [draft(3)])])
        ledger.append_checked("c", lambda: ("m3", [draft(4)]))
        assert ledger.append_once("c", "m1", [draft(5)]) is None
    assert seen == [1, 2, 3, 4]
