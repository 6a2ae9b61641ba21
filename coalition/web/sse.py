"""Live run progress as server-sent events: the ledger (and a console-started run's DayProgress), polled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from coalition.ledger.base import LedgerQuery
from coalition.web.state import ConsoleState
from coalition.web.views import run_finished, unfinished_status


def progress_of(state: ConsoleState, run_id: str) -> dict[str, Any]:
    """A snapshot of one run's progress, whoever runs it (this console, the CLI, another machine)."""
    ledger = state.ledger
    newest = ledger.query(LedgerQuery(run_id=run_id, newest_first=True, limit=1))
    finished = run_finished(ledger, run_id)
    live = state.live.get(run_id)
    if finished is not None:
        status = str(finished.outcome)
    elif live is not None:  # this console runs it: its thread says how it ended
        status = live.status if live.status != "running" or live.alive else "incomplete"
    else:
        status = unfinished_status(ledger, run_id, now=state.clock.now())
    data: dict[str, Any] = {
        "run_id": run_id,
        "entries": ledger.count(LedgerQuery(run_id=run_id)),
        "last_seq": newest[0].seq if newest else None,
        "sim_time": newest[0].sim_time.isoformat() if newest else None,
        "status": status,
        "pending_approvals": ledger.count(LedgerQuery(run_id=run_id, kind="verdict", outcome="escalate"))
        - ledger.count(LedgerQuery(run_id=run_id, kind="resolution")),
    }
    if live is not None and live.progress is not None:
        p = live.progress
        data.update(day=p.day + 1, days=p.days, superstep=p.superstep, waiting_for_human=p.waiting_for_human)
        data["pending_approvals"] = p.pending_escalations
    if live is not None and live.error:
        data["error"] = live.error
    if not newest and live is None:
        data["status"] = "unknown"
    return data


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def progress_stream(
    state: ConsoleState, run_id: str, *, poll_seconds: float = 0.5, max_seconds: float = 3600.0
) -> AsyncIterator[bytes]:
    """`progress` events while the run moves, then one `done` event (completed / failed / incomplete / unknown).

    A run nobody finishes (interrupted, crashed, console restarted) turns "incomplete" after QUIET_LIMIT without a
    ledger write, which ends the stream; `max_seconds` bounds it anyway."""
    last: dict[str, Any] | None = None
    waited = 0.0
    yield b"retry: 2000\n\n"
    while waited <= max_seconds:
        data = await run_in_threadpool(progress_of, state, run_id)
        if data != last:
            yield _event("progress", data)
            last = data
        if data["status"] != "running":
            yield _event("done", data)
            return
        await asyncio.sleep(poll_seconds)
        waited += poll_seconds
    yield _event("done", {**(last or {}), "status": "timeout"})
