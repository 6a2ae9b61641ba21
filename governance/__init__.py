"""Governance by design: policy as data, a pure evaluate(), state folded from the ledger, human approvals."""

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
