"""The ledger explorer: filtered pages, one entry with its "why" chain, CSV/JSON export, and verify (a POST)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from coalition.domain import catalog
from coalition.governance.decision_signatures import decision_check
from coalition.ledger.base import Ledger, VerifyResult
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.errors import EntryNotFound
from coalition.ledger.explain import cited_entry, explain
from coalition.spreadsheet_cells import formula_safe
from coalition.web.auth import AUDIT, READERS, Principal, allow
from coalition.web.csrf import CSRF_FIELD, check_fetch_site, check_token, submitted_token
from coalition.web.errors import Refused
from coalition.web.ledger_filter import LedgerFilter, ledger_filter, page
from coalition.web.pages import render, state_of
from coalition.web.views import ENTRY_KINDS, OUTCOMES, gate_risk

if TYPE_CHECKING:
    from coalition.ledger.integrity import IntegrityReport

router = APIRouter()

CSV_COLUMNS = (
    "seq", "run_id", "sim_time", "wall_time", "actor", "kind", "subject", "outcome", "gate", "rule_ids",
    "approver", "rationale", "evidence", "policy_version", "message_type", "message_id", "prev_hash", "hash",
)  # fmt: skip
_EXPORT_BATCH = 2000


@router.get("/ledger", include_in_schema=False)
def ledger_page(
    request: Request,
    principal: Annotated[Principal, Depends(allow(READERS))],
    f: Annotated[LedgerFilter, Depends(ledger_filter)],
) -> Response:
    """Entries newest first, filtered by facets and full-text search, one keyset page at a time."""
    state = state_of(request)
    result = page(state.ledger, f)
    context: dict[str, Any] = {
        "f": f,
        "page": result,
        "runs": [r.run_id for r in state.runs()][-200:],
        "agents": tuple(sorted(catalog().agents)),
        "kinds": ENTRY_KINDS,
        "outcomes": OUTCOMES,
        "gates": sorted(gate_risk()),
        "actions": sorted(catalog().actions),
        "can_audit": principal.can(AUDIT),
        "head": state.ledger.head()[0],
        # the number of entries the filter matches (all pages), not the ledger's size
        "matches": state.matches(replace(f, before=None, after=None).query()) if f.facets_only else None,
    }
    template = (
        "ledger_rows.html"
        if request.headers.get("hx-request") and request.headers.get("hx-target") == "rows"
        else "ledger.html"
    )
    return render(request, template, principal, **context)


@router.get("/ledger/entries/{seq}", include_in_schema=False)
def entry_page(
    request: Request,
    principal: Annotated[Principal, Depends(allow(READERS))],
    seq: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    """One entry: every field, its place in the hash chain, and the same "why" chain as `coalition ledger explain`."""
    ledger = state_of(request).ledger
    entry = ledger.get(seq)
    if entry is None:
        raise Refused(404, f"no ledger entry #{seq} (the ledger has {ledger.head()[0]} entries)")
    try:
        why = explain(ledger, seq, decision_problem=decision_check(ledger))
    except EntryNotFound:
        why = None
    head = ledger.head()[0]
    payload = orjson.dumps(entry.payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return render(
        request,
        "entry.html",
        principal,
        entry=entry,
        why=why,
        head=head,
        payload=payload,
        integrity=integrity_of(entry.seq, state_of(request).last_verify),
    )


def integrity_of(seq: int, last: tuple[datetime, VerifyResult | IntegrityReport] | None) -> tuple[str, str]:
    """(css class, sentence): whether the console's last verification covers entry `seq`, and what it found."""
    if last is None:
        return "muted", "Not covered by a verification: none has run since the console started."
    at, result = last
    when = at.isoformat(timespec="seconds")
    if not result.ok and result.first_bad_seq is not None and seq >= result.first_bad_seq:
        return "error", (
            f"The verification at {when} FAILED at entry #{result.first_bad_seq} ({result.reason}): this entry is at "
            "or after the break, so its content is not proven."
        )
    if seq > result.entries:
        return "muted", f"Written after the last verification ({when}, {result.entries} entries): not covered yet."
    return "ok", f"Covered by the verification at {when}: the hash chain up to here recomputes intact."


@router.get("/ledger/evidence/{evidence_id}", include_in_schema=False)
def evidence_page(
    request: Request,
    principal: Annotated[Principal, Depends(allow(READERS))],
    evidence_id: Annotated[str, Path(min_length=1, max_length=200)],
    run: Annotated[str, Query(min_length=1, max_length=200)],
) -> Response:
    """Where an evidence id points: the entry that carries it in that run (a redirect to its page)."""
    entry = cited_entry(state_of(request).ledger, run, evidence_id)
    if entry is None:
        raise Refused(404, f"no entry in run {run!r} carries evidence id {evidence_id!r}")
    return RedirectResponse(f"/ledger/entries/{entry.seq}", status_code=303)


def _csv_rows(ledger: Ledger, f: LedgerFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for entry in _all(ledger, f):
        writer.writerow([_cell(entry, column) for column in CSV_COLUMNS])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _cell(entry: LedgerEntry, column: str) -> str:
    value = getattr(entry, column)
    if isinstance(value, list):
        return formula_safe(" ".join(str(v) for v in value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return formula_safe("" if value is None else str(value))


def _json_rows(ledger: Ledger, f: LedgerFilter) -> Iterator[bytes]:
    yield b"["
    first = True
    for entry in _all(ledger, f):
        yield (b"" if first else b",\n") + orjson.dumps(entry.model_dump(mode="json"))
        first = False
    yield b"]\n"


def _all(ledger: Ledger, f: LedgerFilter) -> Iterator[LedgerEntry]:
    """Every entry of the filtered view (ignoring the page), oldest first, read in keyset batches."""
    after = f.after or 0
    while True:
        batch = ledger.query(replace(f, after=after).query(limit=_EXPORT_BATCH, newest_first=False))
        yield from batch
        if len(batch) < _EXPORT_BATCH:
            return
        after = batch[-1].seq


@router.get("/ledger/export", include_in_schema=False)
def export(
    request: Request,
    principal: Annotated[Principal, Depends(allow(AUDIT))],
    f: Annotated[LedgerFilter, Depends(ledger_filter)],
    format: Annotated[Literal["csv", "json"], Query()] = "csv",
) -> Response:
    """The whole filtered view (not just the page) as CSV or a JSON array, streamed."""
    ledger = state_of(request).ledger
    name = "ledger-" + "-".join(v for v in f.facets_only.values())[:80].replace("/", "_") if f.facets_only else "ledger"
    if format == "json":
        return StreamingResponse(
            _json_rows(ledger, f),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{_safe(name)}.json"'},
        )
    return StreamingResponse(
        _csv_rows(ledger, f),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_safe(name)}.csv"'},
    )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "ledger"


@router.get("/ledger/verify", include_in_schema=False)
def verify_page(request: Request, principal: Annotated[Principal, Depends(allow(READERS))]) -> Response:
    """The last verification's result (if any) and a button to run one; reading changes nothing."""
    last = state_of(request).last_verify
    return render(
        request,
        "verify.html",
        principal,
        result=last[1] if last else None,
        checked_at=last[0] if last else None,
    )


@router.post("/ledger/verify", include_in_schema=False)
def run_verify(
    request: Request,
    principal: Annotated[Principal, Depends(allow(READERS))],
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD)] = None,
) -> Response:
    """Recompute the whole hash chain now, keep the result for the overview and the verify page, show it."""
    check_fetch_site(request)
    check_token(principal.session.csrf_token, submitted_token(request, csrf_token))
    state_of(request).verify_ledger()
    return RedirectResponse("/ledger/verify", status_code=303)
