"""Checking a finished run against its scenario's expectations: counts and orderings of ledger entries, and
values in the final world. Each result says what was expected and what was observed."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from coalition.domain import WorldPort
from coalition.scenarios.spec import (
    CountCheck,
    EntryMatch,
    Expectation,
    OrderCheck,
    WorldCheck,
    as_decimal,
    subset_matches,
)


class ExpectationResult(BaseModel):
    """The outcome of one expectation (goes into `run.finished` and the run summary)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    description: str
    passed: bool
    observed: Any
    expected: str
    detail: str


class RecordedEntry(Protocol):
    """What expectations read of an entry: a LedgerEntry, or a StoredEntry (its stored fields, without a model)."""

    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def gate(self) -> str | None: ...
    @property
    def message_type(self) -> str | None: ...
    @property
    def rule_ids(self) -> list[str]: ...
    @property
    def payload(self) -> dict[str, Any]: ...


class _Proposals:
    """Proposal payloads by id, so that a verdict, resolution or execution can be matched on action and args."""

    def __init__(self, entries: Sequence[RecordedEntry]) -> None:
        self._by_id: dict[str, dict[str, Any]] = {}
        for entry in entries:
            if entry.kind == "proposal" and "proposal_id" in entry.payload:
                self._by_id.setdefault(str(entry.payload["proposal_id"]), entry.payload)

    def of(self, entry: RecordedEntry) -> dict[str, Any]:
        key = entry.payload.get("proposal_id", entry.subject)
        return self._by_id.get(str(key), {})


def entry_matches(match: EntryMatch, entry: RecordedEntry, proposals: _Proposals) -> bool:
    """Every field the match names agrees with the entry (agent/action/args fall back to the proposal's)."""
    for name in ("kind", "actor", "outcome", "gate", "subject", "message_type"):
        wanted = getattr(match, name)
        if wanted is not None and getattr(entry, name) != wanted:
            return False
    if match.rule_ids and not set(match.rule_ids) <= set(entry.rule_ids):
        return False
    if not subset_matches(match.payload, entry.payload):
        return False
    if match.agent is None and match.action is None and not match.args:
        return True
    proposal = proposals.of(entry)
    if match.agent is not None:
        agents = {entry.actor, f"agent:{entry.payload.get('agent')}", f"agent:{proposal.get('agent')}"}
        if f"agent:{match.agent}" not in agents:
            return False
    if match.action is not None and match.action not in (entry.payload.get("action"), proposal.get("action")):
        return False
    args = entry.payload.get("args", proposal.get("args"))
    return not match.args or subset_matches(match.args, args)


class _Entries:
    """A run's entries in sequence order, with each kind's (position, entry) pairs: a match that names a kind (nearly
    every one) is tried on that kind's entries only, not on every entry of the run."""

    def __init__(self, ordered: Sequence[RecordedEntry]) -> None:
        self.ordered = ordered
        self._by_kind: dict[str, list[tuple[int, RecordedEntry]]] = {}
        for position, entry in enumerate(ordered, 1):
            self._by_kind.setdefault(entry.kind, []).append((position, entry))

    def candidates(self, match: EntryMatch) -> Sequence[tuple[int, RecordedEntry]]:
        """(position in the run, 1-based; entry) of every entry that can match, in sequence order."""
        if match.kind is None:
            return list(enumerate(self.ordered, 1))
        return self._by_kind.get(match.kind, [])


def _count(check: CountCheck, entries: _Entries, proposals: _Proposals) -> tuple[bool, Any, str]:
    n = sum(1 for _, e in entries.candidates(check.match) if entry_matches(check.match, e, proposals))
    parts = []
    ok = True
    if check.equals is not None:
        parts.append(f"== {check.equals}")
        ok = ok and n == check.equals
    if check.min is not None:
        parts.append(f">= {check.min}")
        ok = ok and n >= check.min
    if check.max is not None:
        parts.append(f"<= {check.max}")
        ok = ok and n <= check.max
    return ok, n, f"count {' and '.join(parts)}"


def _order(check: OrderCheck, entries: _Entries, proposals: _Proposals) -> tuple[bool, Any, str]:
    # positions within the run (1-based), not ledger sequence numbers: those depend on what else the ledger holds
    first = next((i for i, e in entries.candidates(check.first) if entry_matches(check.first, e, proposals)), None)
    then = next((i for i, e in entries.candidates(check.then) if entry_matches(check.then, e, proposals)), None)
    observed = {"first_at": first, "then_at": then}
    return first is not None and then is not None and first < then, observed, "first_at < then_at (entry of the run)"


def resolve_path(data: Any, path: str) -> list[tuple[str, Any]]:
    """Values at a dotted path (`*` = every child), with their concrete paths; missing parts give nothing."""
    found: list[tuple[str, Any]] = [("", data)]
    for part in path.split("."):
        step: list[tuple[str, Any]] = []
        for where, value in found:
            prefix = f"{where}." if where else ""
            if isinstance(value, Mapping):
                keys = sorted(value) if part == "*" else [part] if part in value else []
                step.extend((f"{prefix}{k}", value[k]) for k in keys)
            elif isinstance(value, list):
                if part == "*":
                    step.extend((f"{prefix}{i}", v) for i, v in enumerate(value))
                elif part.isdigit() and int(part) < len(value):
                    step.append((f"{prefix}{part}", value[int(part)]))
        found = step
    return found


def compare(observed: Any, op: str, expected: Any) -> bool:
    """observed <op> expected, numbers (and numeric strings) compared exactly as decimals."""
    if op == "in":
        return any(subset_matches(candidate, observed) for candidate in expected)
    if op in ("==", "!="):
        same = subset_matches(expected, observed)
        return same if op == "==" else not same
    a, b = as_decimal(observed), as_decimal(expected)
    if a is None or b is None:
        return False
    return {"<=": a <= b, ">=": a >= b, "<": a < b, ">": a > b}[op]


def _world(check: WorldCheck, view: Mapping[str, Any]) -> tuple[bool, Any, str]:
    values = resolve_path(view, check.path)
    expected = f"{check.path} {check.op} {check.value!r}"
    if not values:
        return False, None, f"{expected} (path not found)"
    ok = all(compare(value, check.op, check.value) for _, value in values)
    observed = values[0][1] if "*" not in check.path else dict(values)
    return ok, observed, expected


def world_view(world: WorldPort, named: Collection[str] | None = None) -> dict[str, Any]:
    """What world checks see: the snapshot, plus the run's KPIs under `kpis`. `named`: the keys the checks' paths
    start with (None, or `*` among them: every key); a world that snapshots part of its state (`snapshot_of`, the
    state's fields of those names) dumps those alone, not its whole state (a run's customers and credits)."""
    partial = getattr(world, "snapshot_of", None)
    if named is None or "*" in named or partial is None:
        return {**world.snapshot(), "kpis": world.kpis()}
    return {**partial(frozenset(named) - {"kpis"}), "kpis": world.kpis()}


def check_expectations(
    expectations: Sequence[Expectation], entries: Sequence[RecordedEntry], world: WorldPort
) -> list[ExpectationResult]:
    """Check every expectation against the run's ledger entries (in sequence order) and the final world."""
    ordered = sorted(entries, key=lambda e: e.seq)
    proposals = _Proposals(ordered)
    by_kind = _Entries(ordered)
    named = {e.world.path.split(".", 1)[0] for e in expectations if e.world is not None}
    view = world_view(world, named) if named else {}  # no world check: nothing reads the world
    results = []
    for expectation in expectations:
        if expectation.count is not None:
            ok, observed, expected = _count(expectation.count, by_kind, proposals)
        elif expectation.order is not None:
            ok, observed, expected = _order(expectation.order, by_kind, proposals)
        else:
            assert expectation.world is not None  # the model guarantees exactly one check
            ok, observed, expected = _world(expectation.world, view)
        verdict = "passed" if ok else "FAILED"
        results.append(
            ExpectationResult(
                id=expectation.id,
                description=expectation.description,
                passed=ok,
                observed=observed,
                expected=expected,
                detail=f"{expectation.id}: {verdict}: expected {expected}, observed {observed!r}",
            )
        )
    return results
