"""SqliteLedger.deferred_sync: the commits of a block skip their own fsync (synchronous=NORMAL) and the block ends
with one fsync of the write-ahead log, however it ends, unless a checkpoint in the block synced it after the
block's last commit; a checkpoint, inside the block or not, is synced before add_checkpoint returns (the witness
must never hold a checkpoint of entries a power cut could take back), once the writers' turn is handed on (no other
writer waits for the disk)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ledger_tree import draft

from coalition.ledger import SqliteLedger
from coalition.ledger.writer_lock import WriterLock


class Syncs:
    """What the ledger's connection executes (its SQL, in order) and which files this process fsyncs."""

    def __init__(self, ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[str] = []
        self.turn_free_at_fsync: list[bool] = []
        ledger._conn.set_trace_callback(self.events.append)
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            self.events.append(f"fsync {os.readlink(f'/proc/self/fd/{fd}')}")
            self.turn_free_at_fsync.append(turn_free(Path(ledger.path)))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)

    def sync_level_at_each_commit(self) -> list[str]:
        """The synchronous level each COMMIT ran under (the last PRAGMA synchronous set before it)."""
        level, levels = "FULL", []
        for event in self.events:
            if event.startswith("PRAGMA synchronous = "):
                level = event.removeprefix("PRAGMA synchronous = ")
            elif event == "COMMIT":
                levels.append(level)
        return levels


def turn_free(path: Path) -> bool:
    """Whether another writer could take the writers' turn right now."""
    other = WriterLock(os.path.realpath(path), timeout_s=0)
    try:
        return other.acquire()
    finally:
        other.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    with SqliteLedger(tmp_path / "ledger.db") as opened:
        yield opened


def test_commits_in_the_block_skip_their_fsync_and_the_log_is_synced_once_at_the_end(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = Syncs(ledger, monkeypatch)
    ledger.append([draft(1)])
    with ledger.deferred_sync():
        for n in range(2, 6):
            ledger.append_batch_once("recorder", [(f"m-{n}", [draft(n)])])
        assert not any(event.startswith("fsync") for event in syncs.events)
    ledger.append([draft(6)])
    assert syncs.sync_level_at_each_commit() == ["FULL", "NORMAL", "NORMAL", "NORMAL", "NORMAL", "FULL"]
    assert [e for e in syncs.events if e.startswith("fsync")] == [f"fsync {ledger.path}-wal"]
    assert ledger.count() == 6


def test_a_checkpoint_in_the_block_is_synced_before_add_checkpoint_returns_with_the_turn_handed_on(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = Syncs(ledger, monkeypatch)
    with ledger.deferred_sync():
        ledger.append([draft(1)])
        ledger.add_checkpoint(1, "a signed note")
        syncs.events.append("returned")
        ledger.append([draft(2)])
    assert syncs.sync_level_at_each_commit() == ["NORMAL", "NORMAL", "NORMAL"]
    log = f"fsync {ledger.path}-wal"
    commits = [i for i, e in enumerate(syncs.events) if e == "COMMIT"]
    assert [e for e in syncs.events if e.startswith("fsync")] == [log, log]  # the checkpoint's, the block's end
    assert commits[1] < syncs.events.index(log) < syncs.events.index("returned")
    assert syncs.turn_free_at_fsync == [True, True]  # no other writer waited for the disk
    assert ledger.stored_checkpoints() == ["a signed note"]


def test_a_checkpoint_outside_any_block_is_synced_the_same_way(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = Syncs(ledger, monkeypatch)
    ledger.append([draft(1)])
    ledger.add_checkpoint(1, "a signed note")
    syncs.events.append("returned")
    ledger.append([draft(2)])
    assert syncs.sync_level_at_each_commit() == ["FULL", "NORMAL", "FULL"]  # FULL again after the checkpoint
    log = f"fsync {ledger.path}-wal"
    assert [e for e in syncs.events if e.startswith("fsync")] == [log]
    commits = [i for i, e in enumerate(syncs.events) if e == "COMMIT"]
    assert commits[1] < syncs.events.index(log) < min(syncs.events.index("returned"), commits[2])
    assert syncs.turn_free_at_fsync == [True]
    assert ledger.stored_checkpoints() == ["a signed note"]


def test_a_block_that_raises_still_syncs_and_leaves_commits_synced_again(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = Syncs(ledger, monkeypatch)

    def failing_run() -> None:
        with ledger.deferred_sync():
            ledger.append([draft(1)])
            raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError, match="the run failed"):
        failing_run()
    ledger.append([draft(2)])
    assert syncs.sync_level_at_each_commit() == ["NORMAL", "FULL"]
    assert [e for e in syncs.events if e.startswith("fsync")] == [f"fsync {ledger.path}-wal"]


def test_a_ledger_opened_normal_or_in_memory_has_nothing_to_defer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for opened in (SqliteLedger(tmp_path / "normal.db", synchronous="NORMAL"), SqliteLedger(":memory:")):
        with opened:
            syncs = Syncs(opened, monkeypatch)
            with opened.deferred_sync():
                opened.append([draft(1)])
            assert not any(e.startswith(("fsync", "PRAGMA")) for e in syncs.events)


def test_a_ledger_opened_through_a_symlink_syncs_the_log_beside_the_real_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite keeps the write-ahead log beside the file the path resolves to: the block's sync must find it there
    (it looked beside the link, found nothing and synced nothing)."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "ledger.db"
    link.symlink_to(real / "ledger.db")
    with SqliteLedger(link) as ledger:
        syncs = Syncs(ledger, monkeypatch)
        with ledger.deferred_sync():
            ledger.append_batch_once("recorder", [("m-1", [draft(1)])])
        assert syncs.sync_level_at_each_commit() == ["NORMAL"]
        assert [e for e in syncs.events if e.startswith("fsync")] == [f"fsync {real / 'ledger.db'}-wal"]
    assert (real / "ledger.db-writer").exists()  # the writers' turn is taken beside the real file too
    assert not (tmp_path / "ledger.db-writer").exists()


def test_a_block_ending_with_its_checkpoint_syncs_the_log_once_not_again_at_its_end(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep run ends with its checkpoint, synced after the run's last commit: the block's end has nothing of the
    block left to sync (its second fsync of the log was one of a sweep run's five)."""
    syncs = Syncs(ledger, monkeypatch)
    with ledger.deferred_sync():
        ledger.append_batch_once("recorder", [("m-1", [draft(1)]), ("m-2", [draft(2)])])
        ledger.add_checkpoint(2, "a signed note")
        syncs.events.append("checkpointed")
    log = f"fsync {ledger.path}-wal"
    assert [e for e in syncs.events if e.startswith("fsync")] == [log]
    assert syncs.events.index(log) < syncs.events.index("checkpointed")
    assert ledger.count() == 2


def test_a_block_that_commits_nothing_still_syncs_what_a_dead_writer_left_unsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep worker that finds its run complete acknowledges the job after the block: the run's last commits may
    be a dead worker's, made NORMAL and never synced, so the block syncs the log though it wrote nothing."""
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as dead, SqliteLedger(path) as alive, dead.deferred_sync():
        dead.append([draft(1)])
        dead.add_checkpoint(1, "a signed note")  # synced here: this ledger has nothing unsynced left
        dead.append([draft(2)])  # committed NORMAL: the writer dies before its block ends
        syncs = Syncs(alive, monkeypatch)
        with alive.deferred_sync():
            assert alive.count() == 2  # the run is found as the dead writer left it
        assert [e for e in syncs.events if e.startswith("fsync")] == [f"fsync {path}-wal"]
