"""evaluate(proposal, state, policy) -> Verdict: the pure, deterministic decision on one proposal.

Rules run as a pipeline (structlog's processor model): the first deny wins; otherwise any escalation
escalates (the first one names the gate); otherwise the proposal is allowed. The rule objects are built once
per policy version and cached, so the hot path does no pydantic work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from coalition.bus.messages import ActionProposed
from coalition.governance.policy import Policy, action_names
from coalition.governance.rules.arguments import ArgumentShapes
from coalition.governance.rules.base import Rule
from coalition.governance.rules.budgets import MoneyBudget
from coalition.governance.rules.expression import ActionRules, rules_by_action
from coalition.governance.rules.gates import HighImpactToolGate, HumanTier, ModelBudgetRequest
from coalition.governance.rules.permissions import Permissions
from coalition.governance.state import GovernanceState
from coalition.governance.verdict import Finding, Verdict

Step = Rule | ActionRules


def built_in_rules(policy: Policy) -> list[Rule]:
    """The pipeline in order for a policy that writes no rules of its own: permissions, argument shapes, the
    rules its pack builds in (its hard limits and gates: GovernanceDecl.built_in_rules), high-impact tools, tiers,
    model and money budgets."""
    pack_rules = policy.of_pack().governance.built_in_rules  # present: a policy without rules is checked at load
    assert pack_rules is not None
    gates = policy.gates
    rules: list[Rule] = [Permissions(policy.permissions), ArgumentShapes(), *pack_rules(policy)]
    rules.extend(HighImpactToolGate(tool, spec) for tool, spec in policy.high_impact_tools.items())
    if policy.tiers.human_actions():
        rules.append(HumanTier(policy.tiers, policy.all_gates()))
    rules.append(ModelBudgetRequest(gates["budget_overrun"]))
    rules.append(MoneyBudget(policy.budgets.agents, gates["budget_overrun"]))
    return rules


@dataclass(slots=True)
class Pipeline:
    """The rules of one policy, pre-selected per action, plus the allow verdicts already built."""

    policy_version: str
    by_action: dict[str, tuple[Step, ...]]
    fallback: tuple[Step, ...]
    allowed: dict[tuple[str, str], Verdict] = field(default_factory=dict)

    @classmethod
    def build(cls, policy: Policy) -> Pipeline:
        """A policy that writes rules (`rules:`) is governed by them between the generic steps (permissions and
        argument shapes before, money budgets after); one that writes none by the rules its pack builds in."""
        if not policy.rules:
            rules = built_in_rules(policy)
            by_action: dict[str, tuple[Step, ...]] = {
                a: tuple(r for r in rules if r.actions is None or a in r.actions) for a in action_names()
            }
            return cls(policy.version, by_action, tuple(r for r in rules if r.actions is None))
        before: list[Rule] = [Permissions(policy.permissions), ArgumentShapes()]
        budget = MoneyBudget(policy.budgets.agents, policy.gate("budget_overrun"))
        written = rules_by_action(policy, sorted(action_names()))
        human = HumanTier(policy.tiers, policy.all_gates())
        by_action = {}
        for action in sorted(action_names()):
            steps: list[Step] = [*before]
            if action in written:
                steps.append(written[action])
            if human.actions is not None and action in human.actions:
                steps.append(human)
            if budget.actions is not None and action in budget.actions:
                steps.append(budget)
            by_action[action] = tuple(steps)
        return cls(policy.version, by_action, tuple(before))

    def allow(self, proposal: ActionProposed, rules: Sequence[Step]) -> Verdict:
        key = (proposal.agent, proposal.action)
        verdict = self.allowed.get(key)
        if verdict is None:
            checked = tuple(
                dict.fromkeys(i for r in rules for i in (r.listed if isinstance(r, ActionRules) else (r.rule_id,)))
            )
            reason = (
                f"{proposal.agent} may {proposal.action}; no hard limit, gate or budget objected "
                f"({len(checked)} rules checked)"
            )
            verdict = Verdict(
                "allow",
                (reason,),
                checked,
                None,
                (),
                0,
                None,
                self.policy_version,
            )
            self.allowed[key] = verdict
        return verdict


_PIPELINES: dict[str, Pipeline] = {}


def pipeline_for(policy: Policy) -> Pipeline:
    """The cached pipeline of a policy (keyed by its content hash)."""
    pipeline = _PIPELINES.get(policy.version)
    if pipeline is None:
        if len(_PIPELINES) > 64:
            _PIPELINES.clear()
        pipeline = _PIPELINES[policy.version] = Pipeline.build(policy)
    return pipeline


def evaluate(proposal: ActionProposed, state: GovernanceState, policy: Policy) -> Verdict:
    """Decide one proposal. Pure: same (proposal, state, policy) → equal verdict; the state is never changed."""
    pipeline = pipeline_for(policy)
    rules = pipeline.by_action.get(proposal.action, pipeline.fallback)
    escalations: list[Finding] = []
    for rule in rules:
        if isinstance(rule, ActionRules):
            for written in rule.findings(proposal, state):
                if written.outcome == "deny":
                    return _denied(written, pipeline.policy_version)
                escalations.append(written)
            continue
        try:
            finding = rule(proposal, state)
        except Exception as exc:  # a rule bug must not let an action through: fail closed
            reason = f"rule {rule.rule_id} failed ({type(exc).__name__}: {exc}); denied, fail closed"
            return Verdict("deny", (reason,), ("governance.rule_error",), policy_version=pipeline.policy_version)
        if finding is None:
            continue
        if finding.outcome == "deny":
            return _denied(finding, pipeline.policy_version)
        escalations.append(finding)
    if not escalations:
        return pipeline.allow(proposal, rules)
    first = escalations[0]
    if len(escalations) == 1:  # the usual escalation: one gate, which sets every term (as _roles_for_all would)
        roles = first.approver_roles
        return Verdict(
            "escalate",
            (first.reason,),
            (first.rule_id,),
            first.gate,
            tuple(roles) if roles else roles,
            first.approvals_required,
            first.expires_after,
            pipeline.policy_version,
        )
    return Verdict(
        "escalate",
        tuple(f.reason for f in escalations),
        tuple(f.rule_id for f in escalations),
        gate=first.gate,
        approver_roles=_roles_for_all(escalations),
        # when several gates fire, the strictest of them sets the bar: most approvers, soonest expiry
        approvals_required=max(f.approvals_required for f in escalations),
        expires_after=min((f.expires_after for f in escalations if f.expires_after is not None), default=None),
        policy_version=pipeline.policy_version,
    )


def _denied(finding: Finding, policy_version: str) -> Verdict:
    """The deny verdict of one finding (every field by position: a frozen dataclass takes keywords at about twice
    the cost)."""
    return Verdict("deny", (finding.reason,), (finding.rule_id,), None, (), 0, None, policy_version)


def _roles_for_all(escalations: list[Finding]) -> tuple[str, ...]:
    """Roles that may answer every gate that fired (in the first gate's order); if no role can, the first gate's
    roles (the gate named on the verdict) decide."""
    first = escalations[0].approver_roles
    common = [role for role in first if all(role in f.approver_roles for f in escalations[1:])]
    return tuple(common) if common else first
