"""The ledger explorer's filter (facets, full-text search, keyset page) shared by pages, exports and the API."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query

from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.entry import LedgerEntry

Facet = Annotated[str | None, Query(max_length=200)]


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """Facets AND full-text search; `before`/`after` are keyset bounds on seq (stays fast at any depth)."""

    run: str | None = None
    agent: str | None = None
    kind: str | None = None
    outcome: str | None = None
    gate: str | None = None
    action: str | None = None
    q: str | None = None
    before: int | None = None
    after: int | None = None
    limit: int = 50

    def query(self, *, limit: int | None = None, newest_first: bool = True) -> LedgerQuery:
        return LedgerQuery(
            run_id=self.run or None,
            agent=self.agent or None,
            kind=self.kind or None,
            outcome=self.outcome or None,
            gate=self.gate or None,
            action=self.action or None,
            search=self.q or None,
            before_seq=self.before,
            after_seq=self.after,
            limit=limit,
            newest_first=newest_first,
        )

    def params(self, **changes: object) -> str:
        """The query string of this filter with some fields changed (for page links and exports)."""
        data = {k: v for k, v in _fields(replace(self, **changes)).items() if v not in (None, "")}  # type: ignore[arg-type]
        if data.get("limit") == 50:
            data.pop("limit")
        return urlencode(data)

    @property
    def facets_only(self) -> dict[str, str]:
        return {k: str(v) for k, v in _fields(self).items() if k not in ("before", "after", "limit") and v}


def _fields(f: LedgerFilter) -> dict[str, object]:
    return {name: getattr(f, name) for name in LedgerFilter.__slots__}


def ledger_filter(
    *,
    run: Facet = None,
    agent: Facet = None,
    kind: Facet = None,
    outcome: Facet = None,
    gate: Facet = None,
    action: Facet = None,
    q: Annotated[str | None, Query(max_length=200, description="words that must all appear in the rationale")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="entries with seq below this (older page)")] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, description="entries with seq above this (newer page)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> LedgerFilter:
    """The filter from the query string (a FastAPI dependency)."""
    return LedgerFilter(run, agent, kind, outcome, gate, action, q, before, after, limit)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of entries, newest first, with the seq bounds for the older / newer links."""

    entries: list[LedgerEntry]
    older: int | None  # pass as before=
    newer: int | None  # pass as after=


def page(ledger: Ledger, f: LedgerFilter) -> Page:
    """Keyset pagination: `after` reads ascending then flips, so both directions use the seq index."""
    if f.after is not None and f.before is None:
        rows = ledger.query(f.query(limit=f.limit + 1, newest_first=False))
        has_newer = len(rows) > f.limit
        entries = list(reversed(rows[: f.limit]))
        older = entries[-1].seq if entries else None
        return Page(entries, older, entries[0].seq if entries and has_newer else None)
    rows = ledger.query(f.query(limit=f.limit + 1))
    has_older = len(rows) > f.limit
    entries = rows[: f.limit]
    newer = entries[0].seq if entries and f.before is not None else None
    return Page(entries, entries[-1].seq if entries and has_older else None, newer)
