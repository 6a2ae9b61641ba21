"""What an approver needs beside an escalation in the terminal: the people who may decide it, by name, and a
warning before it expires (in simulated time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from coalition.governance.escalation import Escalation, is_proposer
from coalition.governance.policy import Policy
from coalition.ledger.base import Ledger, LedgerQuery

# An escalation expires when the run's clock reaches its deadline; the clock moves a day at a time, so a deadline
# within a day of the run's simulated now is hit by the next day at the latest.
WARN_WITHIN = timedelta(hours=24)


def who_may_decide(escalation: Escalation, policy: Policy) -> list[str]:
    """The people in the policy's approver directory holding one of the gate's roles, as "name (role)", minus
    the proposer and anyone who already approved (they count once)."""
    names = []
    for name, roles in sorted(policy.approvers.items()):
        held = [r for r in escalation.approver_roles if r in roles]
        if not held or is_proposer(name, escalation.agent) or name in escalation.approvers:
            continue
        names.append(f"{name} ({', '.join(held)})")
    return names


@dataclass(frozen=True, slots=True)
class RunClock:
    """Where a run stands: its simulated now, the time of its latest entry. (The wall time at which a waiting
    interactive run moves on is not in the ledger: the approval wait is a setting of the process, not content.)"""

    sim_now: datetime | None

    @classmethod
    def of(cls, ledger: Ledger, run_id: str) -> RunClock:
        newest = ledger.query(LedgerQuery(run_id=run_id, newest_first=True, limit=1))
        return cls(newest[0].sim_time if newest else None)


def expiry_warning(escalation: Escalation, clock: RunClock) -> str | None:
    """One line when the escalation is about to expire as deny; None when it is not close (or never expires)."""
    if escalation.expires_at is None or clock.sim_now is None or not escalation.is_open:
        return None
    left = escalation.expires_at - clock.sim_now
    if left > WARN_WITHIN:
        return None
    sim = f"{escalation.expires_at:%Y-%m-%d %H:%M} simulated"
    if left <= timedelta(0):
        text = f"EXPIRES NOW: its deadline ({sim}) has passed; it resolves as deny at the run's next step"
    else:
        hours = left.total_seconds() / 3600
        text = f"EXPIRES SOON: deadline {sim}, {hours:.0f} h of simulated time left; the run's next day reaches it"
    return text
