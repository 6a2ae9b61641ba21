"""The Ledger port's contract, written against the port alone and run against every backend: SQLite in memory, on
file and with its LIKE search fallback, and PostgreSQL (a fresh schema per test, used through the app role)."""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import PostgresServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from coalition.bus import redaction
from coalition.bus.base import Bus
from coalition.bus.canonical import canonical_json
from coalition.bus.envelope import Envelope
from coalition.bus.messages import ActionProposed, Observation, RunFinished, RunStarted, VerdictIssued
from coalition.bus.topics import ALL
from coalition.ledger import (
    GENESIS_HASH,
    EntryDraft,
    Ledger,
    LedgerQuery,
    LedgerUnavailable,
    Recorder,
    SqliteLedger,
    entry_hash,
    merkle,
    run_digest,
)
from coalition.ledger.checkpoint import peek_size
from coalition.ledger.digest import digest_of
from coalition.ledger.history import run_history
from coalition.ledger.integrity import check_ledger
from coalition.ledger.mapping import draft_from_envelope
from coalition.ledger.notary import Notary, origin_of
from coalition.ledger.run_chains import head_row_hash
from coalition.ledger.signed_note import Signer, Verifier
from coalition.ledger.tree import TreeBuilder
from coalition.ledger.witness import WitnessDir

pytestmark = pytest.mark.contract

T0 = datetime(2025, 3, 1, tzinfo=UTC)


class StepClock:
    """A wall clock for tests: every reading is one second after the previous one."""

    def __init__(self) -> None:
        self._now = datetime(2030, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now


def draft(n: int, **overrides: Any) -> EntryDraft:
    fields: dict[str, Any] = {
        "run_id": "run-a",
        "sim_time": T0 + timedelta(hours=n),
        "actor": "agent:finance",
        "actor_kind": "agent",
        "kind": "proposal",
        "subject": f"p-{n}",
        "payload": {"n": n, "action": "set_price", "args": {"region": "TX", "price": 41.5}},
        "rationale": f"entry number {n} because supply moved",
        "message_id": f"m-{n}",
        "correlation_id": f"c-{n % 3}",
        "causation_id": f"m-{n - 1}" if n > 1 else None,
    }
    fields.update(overrides)
    return EntryDraft(**fields)


@dataclass
class Backend:
    name: str
    ledger: Any  # a Ledger: SqliteLedger, PostgresLedger or MemoryLedger
    reopen: Callable[..., Any]  # another connection to the same store: reopen(wall_clock=None)
    raw_as_owner: Callable[[str], Any]  # one SQL statement with the most privilege an application could have
    refusal: type[Exception]  # what an append-only trigger raises through raw_as_owner


def _sqlite_backend(name: str, path: Path | None, *, fts: bool = True) -> Backend:
    ledger = SqliteLedger(path or ":memory:", wall_clock=StepClock(), fts=fts)

    def reopen(wall_clock: Any = None) -> SqliteLedger:
        assert path is not None, "an in-memory ledger cannot be reopened"
        return SqliteLedger(path, wall_clock=wall_clock, fts=fts)

    return Backend(name, ledger, reopen, ledger._conn.execute, sqlite3.IntegrityError)


def _postgres_backend(server: PostgresServer) -> Backend:
    import psycopg

    from coalition.ledger.postgres import PostgresLedger, split_ledger_url

    url = server.new_ledger_url()
    schema = split_ledger_url(url)[1]

    def raw_as_owner(statement: str) -> None:
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            conn.execute(f'SET ROLE "{server.owner_role}"')
            conn.execute(statement)

    def reopen(wall_clock: Any = None) -> PostgresLedger:
        return PostgresLedger(url, wall_clock=wall_clock)

    return Backend(
        "postgres", PostgresLedger(url, wall_clock=StepClock()), reopen, raw_as_owner, psycopg.errors.IntegrityError
    )


def _memory_backend() -> Backend:
    """The in-memory ledger replay --verify derives a run into: no SQL, no second connection, gone when closed."""
    from coalition.ledger.memory import MemoryLedger

    def no_store(*_: Any, **__: Any) -> Any:
        pytest.skip("an in-memory ledger has no store to reopen or to write to with SQL")

    return Backend("memory", MemoryLedger(wall_clock=StepClock()), no_store, no_store, Exception)


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "sqlite-like", "postgres", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "postgres":
        made = _postgres_backend(request.getfixturevalue("postgres"))
    elif request.param == "memory":
        made = _memory_backend()
    elif request.param == "sqlite-memory":
        made = _sqlite_backend(request.param, None)
    else:
        made = _sqlite_backend(request.param, tmp_path / "ledger.db", fts=request.param != "sqlite-like")
    yield made
    made.ledger.close()


class TestAppend:
    """append assigns sequences, chains hashes, requires a rationale and is all-or-nothing."""

    def test_assigns_seq_and_chains_hashes(self, backend: Backend) -> None:
        """Seq runs 1..n across batches; each prev_hash is the previous hash; each hash recomputes."""
        ledger = backend.ledger
        first = ledger.append([draft(1), draft(2)])
        second = ledger.append([draft(3)])
        entries = first + second
        assert [e.seq for e in entries] == [1, 2, 3]
        assert entries[0].prev_hash == GENESIS_HASH
        for before, after in itertools.pairwise(entries):
            assert after.prev_hash == before.hash
        for entry in entries:
            assert entry_hash(entry.prev_hash, entry.hashed_fields()) == entry.hash
        assert ledger.head() == (3, entries[-1].hash)

    def test_interleaved_runs_chain_as_the_backend_does(self, backend: Backend) -> None:
        """Two runs appended in turns, in batches of one and of both: the ledger seq is 1..n across them; on
        PostgreSQL each prev_hash is the hash of the previous entry of the same run (GENESIS for a run's first), on
        the others the previous entry of the ledger; every hash recomputes, verify holds, head is the ledger's last."""
        ledger = backend.ledger
        written = ledger.append([draft(1), draft(2, run_id="run-b")])
        written += ledger.append([draft(3)])
        written += ledger.append([draft(4, run_id="run-b"), draft(5, run_id="run-b"), draft(6)])
        assert [e.seq for e in written] == [1, 2, 3, 4, 5, 6]
        per_run = backend.name == "postgres"
        last: dict[str, str] = {}
        for entry in written:
            chain_of = entry.run_id if per_run else "the ledger"
            assert entry.prev_hash == last.get(chain_of, GENESIS_HASH), entry.seq
            assert entry_hash(entry.prev_hash, entry.hashed_fields()) == entry.hash
            last[chain_of] = entry.hash
        result = ledger.verify()
        assert (result.ok, result.entries) == (True, 6), result
        assert ledger.head() == (6, written[-1].hash)
        assert [backend.ledger.get(e.seq) for e in written] == written

    def test_returned_entries_equal_stored_ones(self, backend: Backend) -> None:
        """What append returns is what get and query read back, field for field."""
        written = backend.ledger.append([draft(1), draft(2, payload={"d": "1.10", "nested": [1, {"x": None}]})])
        assert [backend.ledger.get(e.seq) for e in written] == written
        assert backend.ledger.query(LedgerQuery()) == written

    def test_empty_ledger_head_and_missing_entry(self, backend: Backend) -> None:
        """An empty ledger has head (0, genesis) and no entry 1; appending nothing writes nothing."""
        assert backend.ledger.head() == (0, GENESIS_HASH)
        assert backend.ledger.get(1) is None
        assert backend.ledger.append([]) == []
        assert backend.ledger.count() == 0

    def test_wall_time_comes_from_the_injected_clock(self, backend: Backend) -> None:
        """wall_time is read from the clock given to the ledger, once per transaction."""
        entries = backend.ledger.append([draft(1), draft(2)])
        assert entries[0].wall_time == entries[1].wall_time == datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)

    def test_rationale_is_required(self, backend: Backend) -> None:
        """A blank rationale is refused when the draft is built and again by append."""
        with pytest.raises(ValidationError, match="rationale"):
            draft(1, rationale="   ")
        sneaky = EntryDraft.model_construct(**{**draft(1).__dict__, "rationale": " "})
        with pytest.raises(ValueError, match="rationale"):
            backend.ledger.append([sneaky])
        assert backend.ledger.count() == 0

    def test_append_is_atomic(self, backend: Backend) -> None:
        """One bad draft in a batch (its payload cannot be serialised) leaves the ledger as it was."""
        backend.ledger.append([draft(1)])
        head = backend.ledger.head()
        bad = draft(3, payload={"oops": object()})
        with pytest.raises(Exception, match="object"):
            backend.ledger.append([draft(2), bad, draft(4)])
        assert backend.ledger.head() == head
        assert backend.ledger.count() == 1
        assert backend.ledger.append([draft(2)])[0].seq == 2


class TestAppendOnly:
    """No update and no delete are possible, even with raw SQL."""

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE entries SET hash = 'x' WHERE seq = 1",
            "UPDATE entries SET body = replace(body, 'number', 'NUMBER') WHERE seq = 1",
            "DELETE FROM entries WHERE seq = 1",
            "DELETE FROM entries",
            "UPDATE dedupe SET message_id = 'other'",
            "DELETE FROM dedupe",
        ],
    )
    def test_raw_sql_cannot_change_history(self, backend: Backend, statement: str) -> None:
        """The append-only triggers abort every UPDATE and DELETE, even for the tables' owner; the chain verifies."""
        backend.ledger.append_once("recorder", "m-1", [draft(1), draft(2)])
        with pytest.raises(backend.refusal, match="append-only"):
            backend.raw_as_owner(statement)
        assert backend.ledger.count() == 2
        assert backend.ledger.seen("recorder", "m-1")
        assert backend.ledger.verify().ok


class TestExactlyOnce:
    """append_once and append_batch_once record each (consumer, message id) once."""

    def test_append_once_dedupes(self, backend: Backend) -> None:
        """The second append_once of the same message id is a no-op returning None."""
        assert backend.ledger.append_once("recorder", "env-1", [draft(1)]) is not None
        assert backend.ledger.append_once("recorder", "env-1", [draft(1)]) is None
        assert backend.ledger.append_once("executor", "env-1", [draft(2)]) is not None
        assert backend.ledger.count() == 2

    def test_batch_skips_seen_and_repeated_ids(self, backend: Backend) -> None:
        """Ids recorded earlier and ids repeated inside the batch are written once."""
        backend.ledger.append_once("recorder", "env-1", [draft(1)])
        written = backend.ledger.append_batch_once(
            "recorder",
            [("env-1", [draft(1)]), ("env-2", [draft(2)]), ("env-2", [draft(2)]), ("env-3", [draft(3), draft(4)])],
        )
        assert [e.subject for e in written] == ["p-2", "p-3", "p-4"]
        assert backend.ledger.count() == 4

    def test_a_long_batch_skips_exactly_the_ids_this_consumer_recorded(self, backend: Backend) -> None:
        """A batch longer than one lookup of recorded ids (SQLite looks them up 500 at a time): the ids recorded
        before, wherever they are in it, are skipped; the same ids recorded by another consumer are not."""
        backend.ledger.append_batch_once("recorder", [(f"env-{n}", []) for n in range(0, 1200, 7)])
        backend.ledger.append_batch_once("executor", [(f"env-{n}", []) for n in range(1200)])
        written = backend.ledger.append_batch_once("recorder", [(f"env-{n}", [draft(n)]) for n in range(1200)])
        assert [e.subject for e in written] == [f"p-{n}" for n in range(1200) if n % 7]

    def test_batch_is_one_transaction(self, backend: Backend) -> None:
        """A failing item rolls back the whole batch, dedupe rows included, so a retry records everything."""
        items: list[tuple[str, list[EntryDraft]]] = [
            ("env-1", [draft(1)]),
            ("env-2", [draft(2, payload={"bad": object()})]),
        ]
        with pytest.raises(Exception, match="object"):
            backend.ledger.append_batch_once("recorder", items)
        assert backend.ledger.count() == 0
        assert not backend.ledger.seen("recorder", "env-1")
        assert len(backend.ledger.append_batch_once("recorder", [("env-1", [draft(1)])])) == 1

    def test_message_without_entries_is_still_remembered(self, backend: Backend) -> None:
        """An empty draft list records the dedupe row alone."""
        assert backend.ledger.append_once("recorder", "env-9", []) == []
        assert backend.ledger.append_once("recorder", "env-9", []) is None


class TestAppendChecked:
    """append_checked: a check that reads the ledger and the append it allows happen in one write transaction."""

    def test_prepare_reads_and_its_drafts_are_appended_once(self, backend: Backend) -> None:
        """prepare() sees the ledger as it is; its drafts are appended with the dedupe row; a repeat is None."""
        backend.ledger.append([draft(1)])

        def prepare() -> tuple[str, list[EntryDraft]]:
            return "decision-1", [draft(backend.ledger.count() + 1)]

        written = backend.ledger.append_checked("approvals", prepare)
        assert written is not None
        assert [e.seq for e in written] == [2]
        assert backend.ledger.append_checked("approvals", prepare) is None
        assert backend.ledger.count() == 2

    def test_prepare_raising_refuses_and_appends_nothing(self, backend: Backend) -> None:
        """A refusal raised by prepare() rolls back: no entry, no dedupe row, and the ledger stays writable."""

        class Refused(Exception):
            pass

        def refuse() -> tuple[str, list[EntryDraft]]:
            raise Refused("already decided")

        with pytest.raises(Refused):
            backend.ledger.append_checked("approvals", refuse)
        assert backend.ledger.count() == 0
        assert not backend.ledger.seen("approvals", "decision-1")
        assert backend.ledger.append_checked("approvals", lambda: ("decision-1", [draft(1)])) is not None

    def test_a_rival_writer_waits_until_the_check_and_append_are_done(self, backend: Backend) -> None:
        """While prepare() runs, a second connection cannot append: what prepare() read stays true."""
        if backend.name == "sqlite-memory":
            pytest.skip("needs a file: a second connection to ':memory:' is another database")
        rival = backend.reopen()
        rival_written: list[int] = []

        def prepare() -> tuple[str, list[EntryDraft]]:
            seen = backend.ledger.count()
            thread = threading.Thread(target=lambda: rival_written.extend(e.seq for e in rival.append([draft(9)])))
            thread.start()
            thread.join(timeout=0.5)
            assert thread.is_alive(), "the rival appended inside the checked transaction"
            assert backend.ledger.count() == seen
            prepare.thread = thread  # type: ignore[attr-defined]
            return "decision-1", [draft(seen + 1)]

        written = backend.ledger.append_checked("approvals", prepare)
        prepare.thread.join(timeout=30)  # type: ignore[attr-defined]
        rival.close()
        assert written is not None
        assert [e.seq for e in written] == [1]
        assert rival_written == [2]


class TestQuery:
    """query and count filter on every indexed field and combine filters with AND."""

    @pytest.fixture
    def filled(self, backend: Backend) -> Ledger:
        backend.ledger.append(
            [
                draft(1),
                draft(
                    2,
                    actor="governance",
                    actor_kind="governance",
                    kind="verdict",
                    outcome="escalate",
                    gate="market_entry",
                    payload={"agent": "finance"},
                    rule_ids=["gate.market_entry"],
                ),
                draft(
                    3, actor="agent:ops", kind="proposal", payload={"agent": "ops"}, rationale="pause settlement now"
                ),
                draft(4, run_id="run-b", actor="governance", actor_kind="governance", kind="verdict", outcome="deny"),
                draft(
                    5,
                    actor="world",
                    actor_kind="world",
                    kind="observation",
                    subject="TX",
                    rationale="observed supply.shock about TX",
                ),
            ]
        )
        return backend.ledger

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            (LedgerQuery(), [1, 2, 3, 4, 5]),
            (LedgerQuery(run_id="run-b"), [4]),
            (LedgerQuery(agent="finance"), [1, 2]),
            (LedgerQuery(actor="agent:ops"), [3]),
            (LedgerQuery(kind="verdict"), [2, 4]),
            (LedgerQuery(gate="market_entry"), [2]),
            (LedgerQuery(outcome="escalate"), [2]),
            (LedgerQuery(subject="TX"), [5]),
            (LedgerQuery(correlation_id="c-1"), [1, 4]),
            (LedgerQuery(causation_id="m-2"), [3]),
            (LedgerQuery(message_id="m-3"), [3]),
            (LedgerQuery(kind="verdict", run_id="run-a"), [2]),
            (LedgerQuery(after_seq=2, before_seq=5), [3, 4]),
            (LedgerQuery(limit=2), [1, 2]),
            (LedgerQuery(limit=2, newest_first=True), [5, 4]),
        ],
    )
    def test_filters(self, filled: Ledger, query: LedgerQuery, expected: list[int]) -> None:
        """Each filter selects exactly the entries it names; count agrees (ignoring limit)."""
        assert [e.seq for e in filled.query(query)] == expected
        if query.limit is None:
            assert filled.count(query) == len(expected)

    def test_iter_entries_pages_through_a_run(self, filled: Ledger) -> None:
        """iter_entries yields a run's entries in seq order across pages."""
        assert [e.seq for e in filled.iter_entries(run_id="run-a", batch=2)] == [1, 2, 3, 5]

    def test_runs_report_scenario_and_status(self, backend: Backend) -> None:
        """runs() lists each run with its scenario (from run.started) and its last status."""
        backend.ledger.append(
            [
                draft(
                    1,
                    kind="run",
                    actor="runner",
                    actor_kind="runner",
                    subject="helios-launch",
                    outcome="started",
                    message_type="run.started",
                    payload={"seed": 7, "days": 3},
                ),
                draft(2),
                draft(3, kind="run", actor="runner", actor_kind="runner", subject="", outcome="completed"),
                draft(4, run_id="run-b"),
            ]
        )
        runs = {r.run_id: r for r in backend.ledger.runs()}
        assert runs["run-a"].scenario == "helios-launch"
        assert runs["run-a"].status == "completed"
        assert (runs["run-a"].first_seq, runs["run-a"].last_seq, runs["run-a"].entries) == (1, 3, 3)
        assert runs["run-a"].extra == {"seed": 7, "days": 3}
        assert runs["run-b"].scenario is None


class TestSearch:
    """Full-text search over rationale and subject (FTS5, SQLite's LIKE fallback, PostgreSQL's tsvector)."""

    @pytest.fixture
    def ledger(self, backend: Backend) -> Any:
        backend.ledger.append(
            [
                draft(1, rationale="Surge pricing in Texas after the supply shock", subject="TX"),
                draft(2, rationale="Enter the Ontario market", subject="ON"),
                draft(3, rationale="Texas settlement paused: meter outage", subject="incident-7"),
            ]
        )
        return backend.ledger

    def test_words_must_all_match(self, ledger: Ledger) -> None:
        """Every word must appear (case-insensitively) in the rationale or the subject."""
        assert [e.seq for e in ledger.query(LedgerQuery(search="texas"))] == [1, 3]
        assert [e.seq for e in ledger.query(LedgerQuery(search="Texas outage"))] == [3]
        assert [e.seq for e in ledger.query(LedgerQuery(search="incident-7"))] == [3]
        assert ledger.count(LedgerQuery(search="ontario")) == 1

    @pytest.mark.parametrize("text", ['"', "AND (", "*", "a'b", "100%", "NEAR(x y)"])
    def test_odd_input_is_not_an_error(self, ledger: Ledger, text: str) -> None:
        """Quotes, operators and wildcards are searched for as text, never a syntax error."""
        assert ledger.query(LedgerQuery(search=text)) == []

    def test_control_characters_separate_words(self, ledger: Ledger) -> None:
        """A NUL or an escape sequence is not searchable text (a NUL once ended FTS5's string: a 500 in the console)."""
        everything = [e.seq for e in ledger.query(LedgerQuery())]
        assert [e.seq for e in ledger.query(LedgerQuery(search="\x00"))] == everything
        assert ledger.count(LedgerQuery(search="\x00\x1b")) == len(everything)
        assert ledger.query(LedgerQuery(search="texas\x00outage")) == ledger.query(LedgerQuery(search="texas outage"))


API_KEY = "sk-verysecret12345"  # long: redacted wherever it appears
SHORT_SECRET = "finance"  # short: redacted where it stands as a whole word, as in the actor "agent:finance"


class TestSecrets:
    """A configured secret is redacted before an entry is sealed, and everything a backend answers is the sealed
    entry: bodies, filters and search see the redaction, never the secret, on every backend as on SQLite's."""

    def test_answers_come_from_the_redacted_entries(self, backend: Backend) -> None:
        redaction.install({"OPENAI_API_KEY": API_KEY, "DB_PASSWORD": SHORT_SECRET})
        drafts = [
            draft(1, rationale=f"provider 401: invalid key {API_KEY}"),  # actor agent:finance
            draft(
                2,
                actor="governance",
                actor_kind="governance",
                kind="verdict",
                payload={"agent": SHORT_SECRET, "error": f"key {API_KEY} refused"},
            ),
        ]
        reference = SqliteLedger(":memory:", wall_clock=StepClock())
        try:
            backend.ledger.append(drafts)
            reference.append(drafts)
            ledger = backend.ledger
            assert ledger.head() == reference.head()
            entries = [e.hashed_fields() for e in ledger.query(LedgerQuery())]
            assert entries == [e.hashed_fields() for e in reference.query(LedgerQuery())]
            assert API_KEY not in str(entries)
            assert f"agent:{SHORT_SECRET}" not in str(entries)
            if hasattr(ledger, "run_bodies"):
                assert ledger.run_bodies("run-a") == reference.run_bodies("run-a") == entries
            for query, expected in [
                (LedgerQuery(search=API_KEY), []),
                (LedgerQuery(search="invalid key"), [1]),
                (LedgerQuery(agent=SHORT_SECRET), []),
                (LedgerQuery(agent="[redacted:DB_PASSWORD]"), [1, 2]),
                (LedgerQuery(actor=f"agent:{SHORT_SECRET}"), []),
                (LedgerQuery(actor="agent:[redacted:DB_PASSWORD]"), [1]),
            ]:
                assert [e.seq for e in ledger.query(query)] == expected, query
                assert ledger.count(query) == len(expected), query
                assert [e.seq for e in reference.query(query)] == expected, query
        finally:
            reference.close()


SEARCH_WORDS = ("heatwave", "settlement", "campaign", "outage", "jurisdiction", "credit", "surge", "reserve")
SEARCH_AGENTS = ("finance", "legal", "marketing", "ops", "research")
SEARCH_KINDS = ("proposal", "verdict", "observation", "execution", "message")


def _search_draft(i: int) -> EntryDraft:
    """Entry i of a ledger where runs interleave, one run is compact and some facets are rare but spread out."""
    kind = "run" if i % 97 == 0 else SEARCH_KINDS[i % len(SEARCH_KINDS)]
    agent = SEARCH_AGENTS[(i // 5) % len(SEARCH_AGENTS)]
    by_agent = kind in ("proposal", "message")
    return draft(
        i,
        run_id="run-solo" if 1200 <= i < 1300 else f"run-{(i // 250) % 4}",
        actor=f"agent:{agent}" if by_agent else "governance",
        actor_kind="agent" if by_agent else "governance",
        kind=kind,
        subject=f"p-{i:07d}",
        payload={"agent": agent, "action": ("set_price", "launch_campaign", "pause_settlement")[(i // 3) % 3]},
        rationale=f"entry {i}: {SEARCH_WORDS[i % 8]} in TX moved prices {SEARCH_WORDS[(i // 7) % 8]} #{i % 97}",
        outcome=("allow", "deny", "escalate")[i % 3] if kind == "verdict" else None,
        gate="rare_gate" if i % 613 == 1 else ("market_entry" if kind == "verdict" and i % 3 == 2 else None),
        correlation_id=f"c-{i % 41}",
    )


class TestSearchWithFilters:
    """FTS5 search combined with filters returns exactly what the LIKE fallback returns, in the same order."""

    N = 3000
    SEARCHES = ("surge", "surge TX", "Heatwave reserve", "credit campaign", "p-0001234", "absent-word")
    FILTERS: tuple[dict[str, str], ...] = (
        {},
        {"run_id": "run-2"},
        {"run_id": "run-solo"},
        {"run_id": "run-1", "kind": "verdict"},
        {"agent": "ops"},
        {"agent": "finance", "kind": "verdict", "outcome": "escalate"},
        {"kind": "run"},
        {"gate": "rare_gate"},
        {"gate": "market_entry", "run_id": "run-3"},
        {"subject": "p-0001234"},
        {"actor": "governance", "correlation_id": "c-5"},
        {"run_id": "no-such-run"},
        {"action": "set_price"},
        {"action": "pause_settlement", "run_id": "run-2", "kind": "verdict"},
        {"action": "launch_campaign", "gate": "rare_gate"},
        {"action": "no_such_action"},
    )
    PAGES: tuple[dict[str, Any], ...] = (
        {},
        {"limit": 7, "newest_first": True},
        {"limit": 7, "after_seq": 1000},
        {"limit": 3, "newest_first": True, "before_seq": 2500},
        {"after_seq": 400, "before_seq": 1800},
        {"limit": 0},
    )

    @pytest.fixture
    def pair(self, backend: Backend) -> Iterator[tuple[Any, SqliteLedger]]:
        """The backend under test and, as the oracle, a SQLite ledger searching with LIKE over the same entries."""
        drafts = [_search_draft(i) for i in range(1, self.N + 1)]
        like = SqliteLedger(":memory:", fts=False)
        like.append(drafts)
        for start in range(0, len(drafts), 500):
            backend.ledger.append(drafts[start : start + 500])
        yield backend.ledger, like
        like.close()

    def _queries(self) -> Iterator[LedgerQuery]:
        for search, filters, page in itertools.product(self.SEARCHES, self.FILTERS, self.PAGES):
            yield LedgerQuery(search=search, **filters, **page)

    def test_same_rows_same_order_as_like(self, pair: tuple[Any, SqliteLedger]) -> None:
        """Every search × filter × page combination gives the same seqs (and count) as LIKE, on every backend."""
        fts, like = pair
        non_empty = 0
        for query in self._queries():
            expected = [e.seq for e in like.query(query)]
            assert [e.seq for e in fts.query(query)] == expected, query
            assert fts.count(query) == like.count(query), query
            non_empty += bool(expected)
        assert non_empty > 100  # of 576 combinations: the comparison is not mostly empty lists

    def test_action_filter_matches_the_payload(self, pair: tuple[SqliteLedger, SqliteLedger]) -> None:
        """The explorer's action facet: exactly the entries whose payload names that action, with or without search."""
        fts, _ = pair
        for search in (None, "surge"):
            found = fts.query(LedgerQuery(action="pause_settlement", search=search, newest_first=True, limit=20))
            assert found
            assert all(e.payload["action"] == "pause_settlement" for e in found)
            everything = [e for e in fts.query(LedgerQuery(search=search)) if e.payload.get("action") == "set_price"]
            assert fts.count(LedgerQuery(action="set_price", search=search)) == len(everything)


class TestSqliteSearchPlans:
    """SQLite only: both FTS5 plans are used (the plan choice is SQLite's; the results are the contract above)."""

    def test_both_plans_are_exercised(self) -> None:
        """Rare spread-out filters probe FTS5 per row; the rest walk FTS5 matches in seq order (and stop early)."""
        fts = SqliteLedger(":memory:", wall_clock=StepClock())
        try:
            fts.append([_search_draft(i) for i in range(1, TestSearchWithFilters.N + 1)])
            queries = TestSearchWithFilters()._queries()
            plans = {query: fts._search_sql(query, "e.seq") for query in queries if query.run_id != "no-such-run"}
            probing = [q for q, plan in plans.items() if plan is not None and "EXISTS" in plan[0]]
            walking = [q for q, plan in plans.items() if plan is not None and "CROSS JOIN" in plan[0]]
            assert LedgerQuery(search="surge", gate="rare_gate") in probing
            assert LedgerQuery(search="surge", run_id="run-2", limit=7, newest_first=True) in walking
            assert fts._search_sql(LedgerQuery(search="surge", run_id="no-such-run"), "e.seq") is None
        finally:
            fts.close()


class TestVerify:
    """verify accepts an intact chain (tampering is covered in tests/unit/test_ledger_tamper.py)."""

    def test_empty_ledger_verifies(self, backend: Backend) -> None:
        """An empty ledger is intact, with the genesis hash as head (and no run chain where each run has one)."""
        result = backend.ledger.verify()
        assert (result.ok, result.entries, result.head_hash, result.first_bad_seq) == (True, 0, GENESIS_HASH, None)
        assert result.chains is None or (result.chains.ok, result.chains.runs, result.chains.heads) == (True, 0, 0)

    def test_intact_ledger_verifies(self, backend: Backend) -> None:
        """After several transactions verify is OK with the right count and head."""
        for n in range(1, 21, 4):
            backend.ledger.append([draft(n + i) for i in range(4)])
        result = backend.ledger.verify()
        assert result.ok, result.reason
        assert (result.entries, result.head_hash) == (20, backend.ledger.head()[1])

    @pytest.mark.parametrize(
        ("spelled", "why"),
        [
            (
                b'"outcome":"allow","outcome":null',
                "the key 'outcome' appears twice in one object (readers disagree on its value)",
            ),
            (b'"outcome": null', "its key order, spacing, escapes or number spelling are not the canonical ones"),
        ],
    )
    def test_stored_bytes_that_are_not_canonical_json_are_named_by_the_derived_data_check(
        self, backend: Backend, spelled: bytes, why: str
    ) -> None:
        """Bytes that hash and link right but repeat a key read two ways (SQLite's json_extract keeps the first value,
        Python the last): the chain check proves the bytes and passes them; the derived-data check, which proves
        every reader reads one value, names them at their seq, as it does any other spelling."""
        ledger = backend.ledger
        ledger.append([draft(n) for n in (1, 2, 3)])
        assert ledger.derived_data_problem() is None
        _, head = ledger.head()
        fields = {**ledger.get(3).hashed_fields(), "seq": 4, "prev_hash": head, "subject": "p-4"}
        body = canonical_json(fields).replace(b'"outcome":null', spelled)
        assert body != canonical_json(fields)
        _insert_raw(backend, 4, hashlib.sha256(head.encode() + body).hexdigest(), body)
        result = ledger.verify()
        assert (result.ok, result.entries) == (True, 4), result.reason
        named = f"derived data: seq 4's stored JSON is not canonical: {why}"
        assert ledger.derived_data_problem() == named
        if backend.name != "memory":  # `ledger verify`: the stored ledgers' full check (the in-memory one has none)
            assert check_ledger(ledger, verifiers=[], derived=False).ok
            report = check_ledger(ledger, verifiers=[])
            assert (report.ok, report.reason) == (False, named)


def _insert_raw(backend: Backend, seq: int, hash_: str, body: bytes) -> None:
    """Store a row as the most privileged writer could: SQL as the owner, or the in-memory ledger's kept bytes."""
    if backend.name == "memory":
        kept = backend.ledger._stored
        kept.append(type(kept[0])(body, hash_, orjson.loads(body)))
        return
    text = body.decode().replace("'", "''")
    if backend.name != "postgres":
        backend.raw_as_owner(f"INSERT INTO entries (seq, hash, body) VALUES ({seq}, '{hash_}', '{text}')")
        return
    # one run whose entries came in one append before: the run's seq-th entry, and the heads chain's second row
    backend.raw_as_owner(f"INSERT INTO entries (seq, chain_seq, hash, body) VALUES ({seq}, {seq}, '{hash_}', '{text}')")
    before = backend.ledger.get(seq - 1)
    first = head_row_hash(
        GENESIS_HASH, seq=1, run_id="run-a", chain_seq=seq - 1, head_hash=before.hash, entry_seq=seq - 1
    )
    row = head_row_hash(first, seq=2, run_id="run-a", chain_seq=seq, head_hash=hash_, entry_seq=seq)
    backend.raw_as_owner(
        "INSERT INTO run_heads (seq, run_id, chain_seq, head_hash, entry_seq, prev_hash, hash)"
        f" VALUES (2, 'run-a', {seq}, '{hash_}', {seq}, '{first}', '{row}')"
    )


class TestMerkleTree:
    """Every backend keeps the RFC 6962 tree in the append transaction, proves inclusion and consistency from it,
    keeps signed checkpoints, and passes the full integrity check (chain, tree, checkpoints, witness)."""

    @pytest.fixture(autouse=True)
    def _stored(self, backend: Backend) -> None:
        if backend.name == "memory":
            pytest.skip("the in-memory ledger keeps no tree or checkpoints: a stored ledger's, not a scratch one's")

    def _fill(self, ledger: Any, sizes: list[int]) -> None:
        """Appends of these sizes through every append path (blocks cross the 64-leaf stored level both ways)."""
        n = 0
        for k, size in enumerate(sizes):
            batch = [draft(n + i + 1) for i in range(size)]
            if k % 3 == 0:
                ledger.append(batch)
            elif k % 3 == 1:
                ledger.append_once("recorder", f"tree-{k}", batch)
            else:
                ledger.append_batch_once("recorder", [(f"tree-{k}", batch)])
            n += size

    def test_stored_nodes_and_proofs_match_the_tree_from_scratch(self, backend: Backend) -> None:
        """The nodes kept incrementally equal a from-scratch build; every proof verifies against the root."""
        ledger = backend.ledger
        self._fill(ledger, [1, 62, 3, 130, 64, 7, 1])
        size = ledger.head()[0]
        builder = TreeBuilder()
        builder.extend(ledger.leaf_data(0, size))
        assert sorted(ledger.tree_node_rows()) == sorted(builder.completed)
        assert len(builder.completed) >= 4
        with ledger.tree() as tree:
            assert tree.size == size
            root = tree.root()
            assert root == builder.root()
            for index in (0, 1, 63, 64, 65, 127, 200, size - 1):
                leaf = merkle.leaf_hash(ledger.leaf_data(index, index + 1)[0])
                merkle.verify_inclusion(index, size, leaf, tree.inclusion_proof(index), root)
            for size1 in (1, 64, 65, 199, size):
                old = TreeBuilder()
                old.extend(ledger.leaf_data(0, size1))
                merkle.verify_consistency(size1, size, tree.consistency_proof(size1), old.root(), root)

    def test_a_proof_that_was_tampered_with_fails(self, backend: Backend) -> None:
        """Negative control: the same proof against a flipped leaf or another root does not verify."""
        ledger = backend.ledger
        self._fill(ledger, [100])
        with ledger.tree() as tree:
            proof, root = tree.inclusion_proof(70), tree.root()
        leaf = merkle.leaf_hash(ledger.leaf_data(70, 71)[0])
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(70, 100, merkle.leaf_hash(b"x" + ledger.leaf_data(70, 71)[0]), proof, root)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(70, 100, leaf, proof, merkle.leaf_hash(b"another root"))

    def test_checkpoints_are_signed_kept_and_verified(self, backend: Backend, tmp_path: Path) -> None:
        """The notary signs after 1,000 entries and on demand; the full check names the newest checkpoint, and a
        checkpoint signed by another key is refused (negative control)."""
        ledger = backend.ledger
        key = Ed25519PrivateKey.generate()
        origin = origin_of(ledger)
        witness = WitnessDir(tmp_path / "witness")
        notary = Notary(ledger, lambda: Signer(origin, key), witness, StepClock())
        ledger.add_commit_listener(notary.after_commit)
        for start in range(0, 1000, 250):
            ledger.append([draft(start + i + 1) for i in range(250)])
        assert [peek_size(note) for note in ledger.stored_checkpoints()] == [1000]
        ledger.append([draft(1001)])
        assert notary.checkpoint() is not None
        assert [peek_size(note) for note in ledger.stored_checkpoints()] == [1000, 1001]
        verifiers = [Verifier.of(origin, key.public_key())]
        report = check_ledger(ledger, verifiers=verifiers, witness=witness)
        assert report.ok, report.line()
        assert report.newest is not None
        assert report.newest.size == 1001
        assert report.checkpoints_checked == 4  # two in the ledger, two in the witness
        assert report.derived_checked
        stranger = [Verifier.of(origin, Ed25519PrivateKey.generate().public_key())]
        refused = check_ledger(ledger, verifiers=stranger, witness=witness)
        assert not refused.ok
        assert "checkpoint" in (refused.reason or "")

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE tree_nodes SET idx = idx + 1",
            "DELETE FROM tree_nodes",
            "UPDATE checkpoints SET note = 'forged'",
            "DELETE FROM checkpoints",
        ],
    )
    def test_raw_sql_cannot_change_the_tree_or_checkpoints(self, backend: Backend, statement: str) -> None:
        """The tree's nodes and the kept checkpoints are append-only like the entries, even for their owner."""
        ledger = backend.ledger
        self._fill(ledger, [130])
        ledger.add_checkpoint(130, "a note")
        with pytest.raises(backend.refusal, match="append-only"):
            backend.raw_as_owner(statement)
        assert len(ledger.tree_node_rows()) == 3
        assert ledger.stored_checkpoints() == ["a note"]


def _append_from_process(reopen: Callable[..., Any], worker: str, count: int) -> None:
    ledger = reopen()
    try:
        for n in range(count):
            ledger.append([draft(n + 1, actor=f"agent:{worker}", subject=f"{worker}-{n}")])
    finally:
        ledger.close()


class TestConcurrentProcesses:
    """Two processes appending to one store (the recorder and a human's CLI) keep one valid chain."""

    def test_two_writers_keep_a_valid_chain(self, backend: Backend) -> None:
        """Interleaved appends from two processes: no gap, no fork, every entry present once."""
        if backend.name in ("sqlite-memory", "memory"):
            pytest.skip("an in-memory ledger belongs to one process")
        context = multiprocessing.get_context("fork")
        workers = [
            context.Process(target=_append_from_process, args=(backend.reopen, w, 150)) for w in ("ops", "legal")
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
            assert worker.exitcode == 0
        ledger = backend.reopen()
        try:
            result = ledger.verify()
            assert result.ok, result.reason
            assert result.entries == 300
            subjects = [e.subject for e in ledger.iter_entries()]
            assert sorted(subjects) == sorted(f"{w}-{n}" for w in ("ops", "legal") for n in range(150))
        finally:
            ledger.close()

    def test_opening_a_missing_or_foreign_file_is_a_clear_error(self, tmp_path: Path) -> None:
        """create=False refuses a missing file; a non-database file is LedgerUnavailable naming the path."""
        with pytest.raises(LedgerUnavailable, match="no such file"):
            SqliteLedger(tmp_path / "missing.db", create=False)
        junk = tmp_path / "junk.db"
        junk.write_bytes(b"this is not a database at all" * 100)
        with pytest.raises(LedgerUnavailable, match=str(junk)):
            SqliteLedger(junk)


def _story(run_id: str) -> list[tuple[str, Envelope]]:
    """A small run: start, an observation, a proposal caused by it, its verdict, the end."""
    started = RunStarted(scenario="mini", scenario_hash="h", seed=1, policy_version="pv", start=T0, days=1)
    obs = Observation(kind="supply.shock", subject="TX", to=["finance"], evidence_id="ev-1")
    prop = ActionProposed(
        proposal_id="p-1",
        agent="finance",
        action="set_price",
        args={"price": 40},
        rationale="follow the shock",
        evidence=["ev-1"],
    )
    verdict = VerdictIssued(
        proposal_id="p-1",
        proposal_hash=prop.proposal_hash,
        agent="finance",
        action="set_price",
        outcome="allow",
        reasons=["within limits"],
        policy_version="pv",
    )

    def wrap(message: Any, n: int, source: str, step: int, cause: str | None = None) -> Envelope:
        return Envelope.wrap(
            message, id=f"{run_id}-e{n}", source=source, run_id=run_id, superstep=step, sim_time=T0, causation_id=cause
        )

    return [
        ("control", wrap(started, 1, "runner", 0)),
        ("observations", wrap(obs, 2, "world", 0)),
        ("proposals", wrap(prop, 3, "agent:finance", 1, f"{run_id}-e2")),
        ("verdicts", wrap(verdict, 4, "governance", 1, f"{run_id}-e3")),
        ("control", wrap(RunFinished(status="completed"), 5, "runner", 1)),
    ]


class TestRecorderOverEveryBus:
    """The recorder gives the same ledger content, hence the same run digest, on every bus backend."""

    def test_same_digest_on_every_bus(self, bus: Bus, backend: Backend) -> None:
        """A story recorded from this bus into this ledger has the digest of the same story recorded in memory."""
        ledger = backend.ledger
        reference = SqliteLedger(":memory:", wall_clock=StepClock())
        try:
            story = _story("run-x")
            bus.publish_many(story)
            bus.publish_many(story[1:3])  # a producer retry: the same envelopes again
            assert Recorder(bus, ledger, min_idle_ms=0).flush() == 5
            drafts = [draft_from_envelope(env) for _, env in sorted(story, key=lambda item: ALL.index(item[0]))]
            reference.append([d for d in drafts if d is not None])
            assert run_digest(ledger, "run-x") == run_digest(reference, "run-x")
            # read from the stored bodies where the backend hands them out: the digest of the entries as models
            entries = run_history(ledger, "run-x")
            assert run_digest(ledger, "run-x") == digest_of(e.deterministic_fields() for e in entries)
            assert ledger.verify().ok
        finally:
            ledger.close()
            reference.close()
