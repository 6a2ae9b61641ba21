"""Incidents as the ledger tells them: the id ops opened each one under, the outside event(s) that announced it
(a scenario's event id, e.g. `tx-meter-firmware`, is often what people call it), its severity, regions, status,
and every entry of the run that concerns it — for `coalition ledger incidents`, `audit --incident` and the ops
cockpit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from coalition.ledger.entry import LedgerEntry


@dataclass
class IncidentRecord:
    """One incident of a run. `aliases` are the subjects of the observations that announced it."""

    incident_id: str
    aliases: list[str] = field(default_factory=list)
    kind: str = ""
    severity: int | None = None
    regions: list[str] = field(default_factory=list)
    affected_customers: int | None = None
    summary: str = ""
    status: str = "proposed"  # proposed / pending (escalated) / open / resolved / not opened
    opened_at: datetime | None = None  # simulated time the executor opened it
    resolved_at: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    seqs: list[int] = field(default_factory=list)  # every entry of the run that concerns it, ledger order

    @property
    def names(self) -> list[str]:
        return [self.incident_id, *self.aliases]

    def age_hours(self, now: datetime) -> float | None:
        """Simulated hours since it opened (to its resolution, if resolved)."""
        if self.opened_at is None:
            return None
        end = self.resolved_at or now
        return round((end - self.opened_at).total_seconds() / 3600, 1)

    def to_json(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "aliases": self.aliases,
            "kind": self.kind,
            "severity": self.severity,
            "regions": self.regions,
            "affected_customers": self.affected_customers,
            "summary": self.summary,
            "status": self.status,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "entries": len(self.seqs),
            "first_seq": self.seqs[0] if self.seqs else None,
        }


def _incident_arg(entry: LedgerEntry) -> str | None:
    args = entry.payload.get("args")
    if isinstance(args, dict) and isinstance(args.get("incident_id"), str) and args["incident_id"]:
        return str(args["incident_id"])
    data = entry.payload.get("data")
    if entry.kind == "message" and isinstance(data, dict) and isinstance(data.get("incident_id"), str):
        return str(data["incident_id"])
    return None


def _hint(entry: LedgerEntry) -> str | None:
    data = entry.payload.get("data")
    if entry.kind == "observation" and isinstance(data, dict) and isinstance(data.get("incident_hint"), str):
        return str(data["incident_hint"])
    return None


def incidents(entries: Sequence[LedgerEntry]) -> list[IncidentRecord]:
    """Every incident a run proposed, opened or resolved, in the order it first appeared, with its entries."""
    ordered = sorted(entries, key=lambda e: e.seq)
    found: dict[str, IncidentRecord] = {}
    proposal_incident: dict[str, str] = {}
    opened_ids: set[str] = set()  # an id only referenced (e.g. a complaint case a notice names) is no incident
    for e in ordered:
        incident_id = _incident_arg(e)
        if incident_id is None:
            continue
        record = found.setdefault(incident_id, IncidentRecord(incident_id))
        if e.kind == "proposal":
            proposal_incident[e.subject] = incident_id
            if e.payload.get("action") == "open_incident":
                opened_ids.add(incident_id)
                _describe(record, e.payload.get("args") or {})
    by_evidence: dict[str, LedgerEntry] = {}
    for e in ordered:
        if e.kind == "observation":
            evidence_id = e.payload.get("evidence_id")
            if isinstance(evidence_id, str):
                by_evidence[evidence_id] = e
    # The observations that announced an incident: named by their hint, or cited by the proposal that opened it.
    for e in ordered:
        hint = _hint(e)
        if hint in found and e.subject and e.subject not in found[hint].aliases and e.subject != hint:
            found[hint].aliases.append(e.subject)
        if e.kind == "proposal" and e.payload.get("action") == "open_incident" and e.subject in proposal_incident:
            record = found[proposal_incident[e.subject]]
            for cited in e.evidence:
                source = by_evidence.get(cited)
                if source is None or not source.subject or source.subject.startswith("day-"):
                    continue
                if source.subject not in record.names:
                    record.aliases.append(source.subject)
    opened = [r for r in found.values() if r.incident_id in opened_ids]
    for record in opened:
        _collect(record, ordered, proposal_incident)
    return opened


def _describe(record: IncidentRecord, args: dict[str, Any]) -> None:
    record.kind = str(args.get("kind", record.kind))
    severity = args.get("severity")
    record.severity = int(severity) if isinstance(severity, int | float) else record.severity
    regions = args.get("regions")
    record.regions = [str(r) for r in regions] if isinstance(regions, list) else record.regions
    affected = args.get("affected_customers")
    record.affected_customers = int(affected) if isinstance(affected, int | float) else record.affected_customers
    record.summary = str(args.get("summary", record.summary))


def _collect(record: IncidentRecord, ordered: Sequence[LedgerEntry], proposal_incident: dict[str, str]) -> None:
    """Every entry about the incident: those naming it (or an alias) in subject or payload, the whole chain of
    each proposal about it, and everything sharing a causal correlation with the observations announcing it."""
    names = set(record.names)
    needles = [orjson.dumps(name).decode() for name in names]
    proposals = {pid for pid, iid in proposal_incident.items() if iid == record.incident_id}
    correlations: set[str] = set()
    for e in ordered:
        if e.kind == "observation" and e.subject in names and e.correlation_id:
            correlations.add(e.correlation_id)
    chosen: list[LedgerEntry] = []
    for e in ordered:
        if e.subject in names or e.subject in proposals or (e.correlation_id and e.correlation_id in correlations):
            chosen.append(e)
            continue
        if e.kind in ("run", "observation") and e.subject.startswith("day-"):
            continue  # a daily snapshot lists open incident ids; it is not about any one of them
        if e.kind == "run":
            continue
        text = orjson.dumps(e.payload).decode()
        if any(needle in text for needle in needles):
            chosen.append(e)
    record.seqs = [e.seq for e in chosen]
    if chosen:
        record.first_seen, record.last_seen = chosen[0].sim_time, chosen[-1].sim_time
    _status(record, chosen)


def _status(record: IncidentRecord, chosen: Iterable[LedgerEntry]) -> None:
    for e in chosen:
        changes = e.payload.get("changes") if e.kind == "execution" else None
        incident = changes.get("incident") if isinstance(changes, dict) else None
        if isinstance(incident, dict) and incident.get("incident_id") == record.incident_id:
            if incident.get("status") == "open":
                record.status, record.opened_at = "open", e.sim_time
                record.severity = int(incident.get("severity", record.severity or 0)) or record.severity
            elif incident.get("status") == "resolved":
                record.status, record.resolved_at = "resolved", e.sim_time
        elif e.kind == "verdict" and e.payload.get("action") == "open_incident" and record.status == "proposed":
            record.status = {"escalate": "pending", "deny": "not opened"}.get(str(e.outcome), record.status)
        elif e.kind == "resolution" and record.status == "pending" and e.outcome in ("rejected", "expired"):
            record.status = "not opened"


def find_incident(records: Sequence[IncidentRecord], name: str) -> IncidentRecord | None:
    """The incident called `name`: its id, or the subject of an observation that announced it."""
    for record in records:
        if name == record.incident_id:
            return record
    for record in records:
        if name in record.aliases:
            return record
    return None
