"""The audit package: a run's ledger slice (by time range or incident) as JSONL, the chain verification, the
policy in force, the human approvals and a readable summary — a directory or a zip an auditor can take away."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from coalition.bus.redaction import Redactor, redactor
from coalition.ledger.base import Ledger
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.integrity import IntegrityReport, RunChained
from coalition.ledger.proofs import Attestation
from coalition.scenarios.errors import ScenariosError
from coalition.scenarios.incidents import find_incident, incidents

FILES = ("ledger.jsonl", "verification.json", "policy.json", "approvals.json", "summary.md", "manifest.json")
# With an attestation: each entry's inclusion proof, the signed checkpoint, the ledger's public key, consistency
# proofs from earlier checkpoints and the standalone verifier (python verify.py; needs only `cryptography`).
PROOF_FILES = ("proofs.jsonl", "checkpoint.txt", "ledger-key.txt", "consistency.json", "verify.py")


class AuditError(ScenariosError):
    """Bad audit request: unknown run, empty slice, unusable destination."""


@dataclass(frozen=True)
class AuditPackage:
    """What was written and where."""

    path: Path
    entries: int
    files: tuple[str, ...]
    verified: bool


def _incident_slice(entries: list[LedgerEntry], incident: str) -> list[LedgerEntry]:
    """Entries about an incident, named by its id or by the event that announced it (scenarios/incidents.py);
    for any other id, the entries whose args/payload name it plus every entry sharing their correlation ids."""
    known = find_incident(incidents(entries), incident)
    if known is not None:
        wanted = set(known.seqs)
        return [e for e in entries if e.seq in wanted]
    needle = orjson.dumps(incident).decode()
    correlations = {
        e.correlation_id
        for e in entries
        if e.correlation_id and (e.subject == incident or needle in orjson.dumps(e.payload).decode())
    }
    proposals = {e.subject for e in entries if e.kind == "proposal" and e.correlation_id in correlations}
    return [e for e in entries if e.correlation_id in correlations or e.subject in proposals or e.subject == incident]


def audit_slice(
    ledger: Ledger,
    run_id: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    incident: str | None = None,
) -> list[LedgerEntry]:
    """The run's entries in [start, end] (simulated time) or about one incident, in ledger order; an empty slice
    is an AuditError (an auditor is never handed an empty package)."""
    entries = list(ledger.iter_entries(run_id=run_id))
    if not entries:
        raise AuditError(f"no run {run_id!r} in the ledger")
    if incident is not None:
        chosen = _incident_slice(entries, incident)
        if not chosen:
            raise AuditError(f"no entry of run {run_id!r} mentions incident {incident!r}")
        return chosen
    chosen = [e for e in entries if (start is None or e.sim_time >= start) and (end is None or e.sim_time <= end)]
    if not chosen:
        first, last = min(e.sim_time for e in entries), max(e.sim_time for e in entries)
        raise AuditError(
            f"no entry of run {run_id!r} falls between {_at(start, 'its start')} and {_at(end, 'its end')} "
            f"(simulated time; the run spans {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M})"
        )
    return chosen


def _at(moment: datetime | None, default: str) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else default


def _summary(run_id: str, chosen: list[LedgerEntry], scope: str, verified: dict[str, Any], policy: str) -> str:
    kinds: dict[str, int] = {}
    for e in chosen:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    lines = [
        f"# Audit package — run {run_id}",
        "",
        f"Scope: {scope}. {len(chosen)} ledger entries"
        + (
            f", simulated time {chosen[0].sim_time.isoformat()} → {chosen[-1].sim_time.isoformat()}." if chosen else "."
        ),
        f"Ledger verification: {'OK' if verified['ok'] else 'FAILED at seq ' + str(verified['first_bad_seq'])}"
        f" ({verified['entries']} entries checked, head {verified['head_hash']}).",
        f"Policy in force: {policy}.",
        "",
        "## Entries by kind",
        "",
        *[f"- {k}: {n}" for k, n in sorted(kinds.items())],
        "",
        "## Timeline of decisions",
        "",
    ]
    for e in chosen:
        if e.kind in ("verdict", "approval", "rejection", "resolution", "execution"):
            what = f"{e.payload.get('agent', '')} {e.payload.get('action', '')}".strip()
            lines.append(f"- `{e.seq}` {e.sim_time:%Y-%m-%d %H:%M} {e.kind} {e.outcome or ''} {what} — {e.rationale}")
    lines += ["", "Files: " + ", ".join(FILES) + ". Each JSONL line is one entry with its hash and prev_hash.", ""]
    return "\n".join(lines)


def write_audit(
    ledger: Ledger,
    run_id: str,
    out: Path,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    incident: str | None = None,
    attestation: Attestation | None = None,
    integrity: IntegrityReport | None = None,
) -> AuditPackage:
    """Write the package to `out` (a directory, or a .zip file); with an attestation, provable offline. With the
    full integrity report (`ledger verify`'s), verification.json names the tree and checkpoint checks too."""
    chosen = audit_slice(ledger, run_id, start=start, end=end, incident=incident)
    verified = verification_record(ledger, integrity)
    started = next((e for e in ledger.iter_entries(run_id=run_id) if e.kind == "run"), None)
    settings = (started.payload.get("settings") or {}) if started is not None else {}
    policy = {
        "policy_version": started.payload.get("policy_version") if started is not None else None,
        "policy_document": settings.get("policy_document"),
    }
    approvals = [e.model_dump(mode="json") for e in chosen if e.kind in ("approval", "rejection")]
    scope = f"incident {incident}" if incident else f"simulated time {start or 'start'} → {end or 'end'}"
    version = str(policy["policy_version"] or "unknown")
    contents = {
        "ledger.jsonl": b"".join(
            orjson.dumps(e.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS) + b"\n" for e in chosen
        ),
        "verification.json": orjson.dumps(verified, option=orjson.OPT_INDENT_2),
        "policy.json": orjson.dumps(policy, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
        "approvals.json": orjson.dumps(approvals, option=orjson.OPT_INDENT_2),
        "summary.md": _summary(run_id, chosen, scope, verified, version).encode(),
        "manifest.json": orjson.dumps(
            {"run_id": run_id, "scope": scope, "entries": len(chosen), "files": list(FILES)}, option=orjson.OPT_INDENT_2
        ),
    }
    files: tuple[str, ...] = FILES
    if attestation is not None:
        whole_run_chain = isinstance(ledger, RunChained) and start is None and end is None and incident is None
        try:
            proofs = attestation.package_files([e.seq for e in chosen], run_chain=run_id if whole_run_chain else None)
        except ValueError as exc:
            raise AuditError(f"cannot prove the slice: {exc}") from None
        contents.update(proofs)
        files = FILES + PROOF_FILES + tuple(name for name in proofs if name not in PROOF_FILES)
        contents["manifest.json"] = orjson.dumps(
            {"run_id": run_id, "scope": scope, "entries": len(chosen), "files": list(files)},
            option=orjson.OPT_INDENT_2,
        )
    secrets = redactor()  # a secret never leaves in a package (an entry that held one no longer matches its hash)
    contents = {
        name: _redacted(name, data, secrets) if secrets.needed(data) else data for name, data in contents.items()
    }
    try:
        if out.suffix == ".zip":
            out.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in contents.items():
                    zf.writestr(name, data)
        else:
            out.mkdir(parents=True, exist_ok=True)
            for name, data in contents.items():
                (out / name).write_bytes(data)
    except OSError as exc:
        raise AuditError(f"cannot write the audit package to {out}: {exc.strerror or exc}") from None
    return AuditPackage(out, len(chosen), files, bool(verified["ok"]))


def _redacted(name: str, data: bytes, secrets: Redactor) -> bytes:
    """A package file with every secret redacted: JSON files through their parsed values (where a secret holding a
    quote, a backslash or a control character is unescaped), anything else as text."""
    if name.endswith(".jsonl"):
        lines = data.splitlines()
        return b"".join(orjson.dumps(secrets.value(orjson.loads(line))) + b"\n" for line in lines if line)
    if name.endswith(".json"):
        return orjson.dumps(secrets.value(orjson.loads(data)), option=orjson.OPT_INDENT_2)
    return secrets.text(data.decode()).encode()


def verification_record(ledger: Ledger, integrity: IntegrityReport | None) -> dict[str, Any]:
    """verification.json: what was checked and how it came out (the hash chain alone without an integrity report)."""
    if integrity is None:
        chain = ledger.verify()
        return {
            "ok": chain.ok,
            "entries": chain.entries,
            "first_bad_seq": chain.first_bad_seq,
            "reason": chain.reason,
            "head_hash": chain.head_hash,
            "checks": ["hash chain"],
        }
    newest = integrity.newest
    return {
        "ok": integrity.ok,
        "entries": integrity.entries,
        "first_bad_seq": integrity.first_bad_seq,
        "reason": integrity.reason,
        "head_hash": integrity.head_hash,
        "checks": [
            "hash chain",
            "Merkle tree (every leaf, stored nodes compared)",
            "checkpoint signatures and roots",
            "consistency with the witness and this client's newest checkpoint",
            *(["derived data (filter columns, full-text index)"] if integrity.derived_checked else []),
        ],
        "tree_root": integrity.root.hex() if integrity.root is not None else None,
        "checkpoints_checked": integrity.checkpoints_checked,
        "newest_checkpoint": None
        if newest is None
        else {
            "size": newest.size,
            "root": newest.root.hex(),
            "signer": newest.signer,
            "source": integrity.newest_source,
        },
        "summary": integrity.line(),
    }
