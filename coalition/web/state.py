"""What every request handler reads: `ConsoleState`, held on `app.state.console` (built by app.create_app).

Route modules import it from here, never from app.py (app.py imports the routes: tests/unit/test_web_imports.py
fails on any import cycle inside coalition.web)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fastapi.templating import Jinja2Templates

from coalition.bus.clock import Clock
from coalition.ledger.base import LedgerQuery, RunInfo, VerifyResult
from coalition.web.access_log import AccessLog
from coalition.web.hosts import HostAllowlist
from coalition.web.live_runs import LiveRuns
from coalition.web.login_throttle import ThrottlePolicy
from coalition.web.run_views import RunViews
from coalition.web.signing_keys import SigningKeys
from coalition.web.users_store import UserStore
from coalition.web.views import Inbox, inbox

if TYPE_CHECKING:
    from coalition.bootstrap import LedgerTrust, OpenLedger
    from coalition.ledger.integrity import IntegrityReport
    from coalition.ledger.witness import Seen


@dataclass
class ConsoleState:
    """Everything a request handler needs, held on `app.state.console`."""

    ledger: OpenLedger
    users: UserStore
    clock: Clock
    session_ttl: timedelta
    secure_cookies: bool
    live: LiveRuns
    templates: Jinja2Templates
    signing: SigningKeys  # approvers' keys unlocked at login (coalition/web/signing_keys.py)
    hosts: HostAllowlist
    access: AccessLog
    throttle: ThrottlePolicy
    run_views: RunViews = field(default_factory=RunViews)
    login_lock: threading.Lock = field(default_factory=threading.Lock)
    last_verify: tuple[datetime, VerifyResult | IntegrityReport] | None = None
    trust: LedgerTrust | None = None  # the ledger key, witness and the console's memory (None: chain only)
    _runs_cache: tuple[int, list[RunInfo]] | None = None
    _inbox_cache: dict[str | None, tuple[int, Inbox]] = field(default_factory=dict)
    _count_cache: dict[LedgerQuery, tuple[int, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        """Close the ledger and users connections (the app may serve several test clients, so not on shutdown)."""
        self.ledger.close()
        self.users.close()

    def verify_ledger(self) -> tuple[datetime, VerifyResult | IntegrityReport]:
        """Verify the ledger now — chain, tree, checkpoints against the witness and the console's memory, derived
        data — and keep the result as `last_verify` (the overview shows it); an intact ledger's newest checkpoint
        becomes the one the console remembers."""
        result: VerifyResult | IntegrityReport
        if self.trust is None:
            result = self.ledger.verify()
        else:
            from coalition.ledger.integrity import check_ledger

            memory = self.trust.seen
            result = check_ledger(
                self.ledger,
                verifiers=self.trust.verifiers,
                witness=self.trust.witness,
                seen=memory.load() if memory is not None else None,
                seen_name="the console",
            )
            if result.ok and result.newest is not None and memory is not None:
                memory.remember(
                    origin=self.trust.origin,
                    verifier_key=result.newest.verifier_key,
                    note=result.newest.note,
                    size=result.newest.size,
                    at=self.clock.now(),
                    witness=self.trust.witness.describe(),
                )
        checked = (self.clock.now(), result)
        with self._lock:
            self.last_verify = checked
        return checked

    def newest_checkpoint(self) -> Seen | None:
        """The newest checkpoint the console verified: size, when, against which witness."""
        if self.trust is None or self.trust.seen is None:
            return None
        return self.trust.seen.load()

    def inbox(self, run_id: str | None = None) -> Inbox:
        """views.inbox(), folded again only when the ledger's head moved (every decision is an append)."""
        head = self.ledger.head()[0]
        with self._lock:
            hit = self._inbox_cache.get(run_id)
            if hit is not None and hit[0] == head:
                return hit[1]
        box = inbox(self.ledger, run_id=run_id)
        with self._lock:
            if len(self._inbox_cache) > 64:
                self._inbox_cache.clear()
            self._inbox_cache[run_id] = (head, box)
        return box

    def matches(self, query: LedgerQuery) -> int:
        """ledger.count(query), counted again only when the ledger's head moved (the explorer's match count)."""
        head = self.ledger.head()[0]
        with self._lock:
            hit = self._count_cache.get(query)
            if hit is not None and hit[0] == head:
                return hit[1]
        count = self.ledger.count(query)
        with self._lock:
            if len(self._count_cache) > 256:
                self._count_cache.clear()
            self._count_cache[query] = (head, count)
        return count

    def warm_run_view(self, run_id: str) -> None:
        """Build a run page's figures now (a run this console started has just ended)."""
        info = next((r for r in self.runs() if r.run_id == run_id), None)
        if info is not None:
            self.run_views.get(self.ledger, run_id, info.last_seq)

    def runs(self) -> list[RunInfo]:
        """ledger.runs(), recomputed only when the ledger's head moved (it scans the run index)."""
        head = self.ledger.head()[0]
        with self._lock:
            if self._runs_cache is not None and self._runs_cache[0] == head:
                return self._runs_cache[1]
        runs = self.ledger.runs()
        with self._lock:
            self._runs_cache = (head, runs)
        return runs
