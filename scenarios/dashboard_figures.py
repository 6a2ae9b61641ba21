"""What a dashboard figure is, and the run's entries, indexed once, that every figure is computed from — the core's
figures (scenarios/dashboards.py) and the ones a pack declares (coalition.domain.Panel) alike."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from coalition.ledger.entry import LedgerEntry

DECISIONS = frozenset({"allow", "deny", "escalate"})  # a verdict entry that decides (not "held" behind a gate)


@dataclass(frozen=True)
class Figure:
    """One number on a dashboard: what it is, how it is computed, and the entries behind it (ledger seqs)."""

    key: str
    label: str
    value: str
    definition: str
    seqs: tuple[int, ...] = ()
    number: float | None = None
    status: str = ""  # ok / warn / alert / n/a, for the page's colours

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "number": self.number,
            "status": self.status,
            "definition": self.definition,
            "entries": list(self.seqs),
        }


class RunEntries:
    """A run's entries, indexed once: proposals, deciding verdicts, resolutions, authorizations, executions, the
    world's daily snapshots (of kind `snapshot`) and its other observations, and how the run ended."""

    def __init__(self, entries: Sequence[LedgerEntry], snapshot: str = "") -> None:
        self.entries = list(entries)
        self.proposals: dict[str, LedgerEntry] = {}
        self.verdicts: dict[str, LedgerEntry] = {}
        self.resolutions: dict[str, LedgerEntry] = {}
        self.authorizations: dict[str, LedgerEntry] = {}
        self.executions: dict[str, list[LedgerEntry]] = defaultdict(list)
        self.snapshots: list[LedgerEntry] = []
        self.observations: list[LedgerEntry] = []
        self.finished: LedgerEntry | None = None
        for e in self.entries:
            if e.kind == "proposal":
                self.proposals.setdefault(e.subject, e)
            elif e.kind == "verdict" and e.outcome in DECISIONS:
                self.verdicts[e.subject] = e  # a held proposal's decision comes after its "held" entry
            elif e.kind == "resolution":
                self.resolutions.setdefault(e.subject, e)
            elif e.kind == "authorization":
                self.authorizations.setdefault(e.subject, e)
            elif e.kind == "execution":
                self.executions[e.subject].append(e)
            elif e.kind == "observation":
                if snapshot and e.payload.get("kind") == snapshot:
                    self.snapshots.append(e)
                else:
                    self.observations.append(e)
            elif e.kind == "run" and e.outcome not in (None, "started"):
                self.finished = e

    def applied(self) -> list[LedgerEntry]:
        return [x for xs in self.executions.values() for x in xs if x.outcome == "applied"]

    def action(self, proposal_id: str) -> str:
        p = self.proposals.get(proposal_id)
        return str(p.payload.get("action")) if p is not None else ""

    def args(self, proposal_id: str) -> dict[str, Any]:
        p = self.proposals.get(proposal_id)
        return dict(p.payload.get("args") or {}) if p is not None else {}

    def observed(self, kind: str) -> list[LedgerEntry]:
        """The observations of one kind, in ledger order."""
        return [o for o in self.observations if o.payload.get("kind") == kind]

    def last_snapshot(self) -> tuple[LedgerEntry | None, dict[str, Any]]:
        """The last daily snapshot and its data (None and {} when the run has none)."""
        last = self.snapshots[-1] if self.snapshots else None
        return last, dict((last.payload.get("data") or {}) if last is not None else {})


def decimal(value: Any) -> Decimal:
    """A recorded number as a Decimal (0 when it is none)."""
    try:
        return Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        return Decimal(0)


def usd(value: Decimal) -> float:
    """Money to the cent, as a float."""
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def usd_sum(values: Iterable[float]) -> float:
    """Money summed exactly (as decimals), back to a float with cents."""
    return usd(sum((Decimal(str(v)) for v in values), Decimal(0)))


def pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def pct_text(value: float | None) -> str:
    return f"{value:.1f} %" if value is not None else "—"


def money(value: float) -> str:
    return f"{value:,.0f} USD"
