"""Governance by design: policy as data, a pure evaluate(), state folded from the ledger, human approvals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coalition.lazy_exports import lazy_package

if TYPE_CHECKING:  # the names below load on first use, so importing one submodule loads only that one
    from coalition.governance.approvals import (
        DecisionResult,
        load_escalation,
        load_escalations,
        policy_for_run,
        record_decision,
    )
    from coalition.governance.errors import GovernanceError, PolicyError
    from coalition.governance.escalation import Decision, DecisionCheck, Escalation, check_decision
    from coalition.governance.evaluate import evaluate
    from coalition.governance.policy import Policy, default_policy, load_policy, parse_policy
    from coalition.governance.service import GovernanceService
    from coalition.governance.state import GovernanceState, fold_ledger
    from coalition.governance.verdict import Finding, Verdict

_LAZY: dict[str, str] = {
    "Decision": "coalition.governance.escalation",
    "DecisionCheck": "coalition.governance.escalation",
    "DecisionResult": "coalition.governance.approvals",
    "Escalation": "coalition.governance.escalation",
    "Finding": "coalition.governance.verdict",
    "GovernanceError": "coalition.governance.errors",
    "GovernanceService": "coalition.governance.service",
    "GovernanceState": "coalition.governance.state",
    "Policy": "coalition.governance.policy",
    "PolicyError": "coalition.governance.errors",
    "Verdict": "coalition.governance.verdict",
    "check_decision": "coalition.governance.escalation",
    "default_policy": "coalition.governance.policy",
    "evaluate": "coalition.governance.evaluate",
    "fold_ledger": "coalition.governance.state",
    "load_escalation": "coalition.governance.approvals",
    "load_escalations": "coalition.governance.approvals",
    "load_policy": "coalition.governance.policy",
    "parse_policy": "coalition.governance.policy",
    "policy_for_run": "coalition.governance.approvals",
    "record_decision": "coalition.governance.approvals",
}
lazy_package(__name__, _LAZY)

__all__ = [
    "Decision",
    "DecisionCheck",
    "DecisionResult",
    "Escalation",
    "Finding",
    "GovernanceError",
    "GovernanceService",
    "GovernanceState",
    "Policy",
    "PolicyError",
    "Verdict",
    "check_decision",
    "default_policy",
    "evaluate",
    "fold_ledger",
    "load_escalation",
    "load_escalations",
    "load_policy",
    "parse_policy",
    "policy_for_run",
    "record_decision",
]
