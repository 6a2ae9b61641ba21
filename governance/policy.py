"""The governance policy as data: a YAML file validated by pydantic and versioned by the hash of its content."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from coalition.bus.canonical import canonical_json
from coalition.bus.documents import MAX_DOCUMENT_BYTES, DocumentError, decode_document, load_document
from coalition.domain import DEFAULT_PACK, Pack, PackError, SectionProblem, catalog
from coalition.governance.errors import PolicyError
from coalition.governance.lanes import DRAFT_REVIEW, AgentLane
from coalition.governance.tiers import ALWAYS_HUMAN, Tiers


def action_names() -> frozenset[str]:
    """Every action the installed packs declare: a permission or tool naming anything else is a typo."""
    return frozenset(catalog().actions)


def charged_args() -> dict[str, str]:
    """The argument a budget is charged from, per charged action (each pack action's `charges`)."""
    return {name: action.charges for name, action in catalog().actions.items() if action.charges is not None}


# Gates the code itself escalates through whatever the rules say (money budgets overrun).
CODE_GATES: frozenset[str] = frozenset({"budget_overrun"})

MAX_POLICY_NUMBER = Decimal("1e12")  # every amount, percentage and threshold: beyond it is a typo or an attack
Money = Annotated[Decimal, Field(le=MAX_POLICY_NUMBER, allow_inf_nan=False)]
BudgetPeriod = Literal["run", "day", "week", "month"]


class _FieldProblem(ValueError):
    """A cross-field problem that knows which field (below the validated model) it is about."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.where = where
        self.reason = reason


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AgentBudget(_Frozen):
    """What one agent may spend per period: money now; LLM tokens and cost are enforced from issue 5 on."""

    money_usd: Money = Field(ge=0)
    llm_tokens: int | None = Field(default=None, ge=0, le=10**12)
    llm_cost_usd: Money | None = Field(default=None, ge=0)


class Budgets(_Frozen):
    """Budgets per agent; a period is a window of simulated time after which spend starts again from zero."""

    period: BudgetPeriod = "month"
    agents: dict[str, AgentBudget] = Field(default_factory=dict)


LimitScalar = Annotated[Decimal, Field(le=MAX_POLICY_NUMBER, ge=-MAX_POLICY_NUMBER, allow_inf_nan=False)] | bool | str
# A named limit: a number, a string, a list of them, or a mapping of named limits, nested at most three deep
# (`limits.refunds.tiers.gold`).
_Leaf = LimitScalar | list[LimitScalar]
LimitValue = _Leaf | dict[str, _Leaf | dict[str, _Leaf | dict[str, _Leaf]]]


class HardLimits(_Frozen):
    """Limits no proposal may cross whoever asks: breaking one is a deny, never an escalation. Each key is a named
    limit (a number, a string, a list, or a mapping of them) that rules' expressions read as `limits.<name>`; a
    pack may type sections of its own (GovernanceDecl.limits, a subclass of this model: its policies' limits)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, LimitValue] = Field(init=False)


_NUMBER_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _number_from_text(value: object) -> object:
    """A number written as decimal text (a policy rebuilt from its JSON dump) is that number, not a string."""
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        return Decimal(value.strip())
    return value


GateParameter = Annotated[LimitScalar, BeforeValidator(_number_from_text)]


class Gate(_Frozen):
    """Who must approve an escalation, how many distinct approvers, and when it lapses (simulated hours). Any
    other key is a parameter of the gate (a number, a flag or a string) that rules read as `gates.<gate>.<key>`
    (e.g. the amount from which a commitment escalates)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, GateParameter] = Field(init=False)

    approver_roles: list[str] = Field(min_length=1)
    approvals_required: int = Field(default=1, ge=1, le=10)
    four_eyes_above_usd: Money | None = Field(default=None, ge=0)
    expires_after_hours: float = Field(gt=0, le=24 * 365 * 10, allow_inf_nan=False)

    def required_for(self, amount: Decimal | None) -> int:
        """Approvals needed: two distinct approvers when the amount at stake is above the four-eyes threshold."""
        if self.four_eyes_above_usd is not None and amount is not None and amount > self.four_eyes_above_usd:
            return max(self.approvals_required, 2)
        return self.approvals_required


RULE_ID = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"
LET_NAME = r"^[a-z][a-z0-9_]*$"


class RuleSpec(_Frozen):
    """A rule as data (docs/policy.md): on the listed actions, when the CEL expression `when` is true (over
    `args`, `proposer`, `action`, `state`, `limits` and `gates`), deny or escalate through `gate` with the
    `reason` template rendered with the values that fired it. `let` names sub-expressions (expanded in place);
    `amount` is the amount at stake a gate's four-eyes threshold is compared with; `checked_as` is the id an
    allow verdict lists (several rules may share one)."""

    id: str = Field(pattern=RULE_ID, max_length=100)
    checked_as: str | None = Field(default=None, pattern=RULE_ID, max_length=100)
    actions: list[str] = Field(min_length=1)
    let: dict[Annotated[str, Field(pattern=LET_NAME, max_length=40)], str] = Field(default_factory=dict)
    when: str
    outcome: Literal["deny", "escalate"]
    gate: str | None = None
    amount: str | None = None
    reason: str = Field(min_length=1, max_length=2000)

    @property
    def listed_as(self) -> str:
        return self.checked_as or self.id


class HighImpactTool(Gate):
    """A tool that always needs a human (money movement, credential change), whoever proposes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actions: list[str] = Field(min_length=1)


class Holds(_Frozen):
    """Gates hold what depends on them: while an escalation is open, a later proposal sharing one of its
    dependency keys (same argument name, same value, e.g. the same incident_id) waits for the human decision —
    approval releases it to governance, rejection or expiry cancels it — unless its action is safe_while_pending."""

    dependency_keys: list[str] = Field(default_factory=list)
    safe_while_pending: list[str] = Field(default_factory=list)


class Policy(_Frozen):
    """Everything governance enforces. `version` is the sha256 of the canonical JSON of the document it was
    validated from (the YAML as written, never re-serialised through today's model: adding an optional field
    or a default to the model changes no recorded version); a policy built in code hashes its model dump.

    A policy belongs to one pack (`pack:`, absent = the default pack): its agents, actions and gates are that
    pack's, and the sections the pack adds (Pack.policy_sections, e.g. eligibility tables) are checked by it."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str = Field(min_length=1)
    pack: str | None = None
    description: str = ""
    budgets: Budgets
    limits: SerializeAsAny[HardLimits]  # the pack's model of them when it declares one (GovernanceDecl.limits)
    permissions: dict[str, list[str]]
    gates: dict[str, Gate]
    high_impact_tools: dict[str, HighImpactTool] = Field(default_factory=dict)
    approvers: dict[str, list[str]]
    holds: Holds = Field(default_factory=Holds)
    rules: list[RuleSpec] = Field(default_factory=list, max_length=500)
    lanes: dict[str, AgentLane] = Field(default_factory=dict)  # governance/lanes.py; unnamed = transactional
    tiers: Tiers = Field(default_factory=Tiers)  # governance/tiers.py; unnamed = auto

    _version: str = PrivateAttr(default="")
    _document: dict[str, Any] | None = PrivateAttr(default=None)
    _compiled: tuple[object, tuple[Any, ...]] | None = PrivateAttr(default=None)

    @field_validator("limits", mode="before")
    @classmethod
    def _pack_limits(cls, data: Any, info: ValidationInfo) -> Any:
        """Validated with the model the policy's pack declares for its limits, if any (an uninstalled pack is named
        by the checks after the fields)."""
        if isinstance(data, HardLimits) or "pack" not in info.data:
            return data
        try:
            model = catalog().pack(info.data["pack"] or DEFAULT_PACK).governance.limits
        except PackError:
            return data
        if model is None:
            return data
        if not issubclass(model, HardLimits):
            raise TypeError(f"the pack's limits model {model.__name__} is not a HardLimits")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problem = section_problem("", exc)
            if problem.where == "(root)":
                raise ValueError(problem.reason) from None
            raise _FieldProblem(problem.where, problem.reason) from None

    @model_validator(mode="wrap")
    @classmethod
    def _keep_document(cls, data: Any, handler: ModelWrapValidatorHandler[Policy]) -> Policy:
        policy = handler(data)
        if isinstance(data, Mapping) and policy is not data:
            policy._adopt_document(data)
        return policy

    def _adopt_document(self, data: Mapping[str, Any]) -> None:
        try:
            document = orjson.loads(canonical_json(dict(data)))  # plain JSON: what a ledger records and reads back
        except TypeError:
            return  # not plain data (built in code): the model dump stands for the document
        object.__setattr__(self, "_document", document)
        object.__setattr__(self, "_version", hashlib.sha256(canonical_json(document)).hexdigest())

    @property
    def pack_name(self) -> str:
        """The pack this policy governs (its `pack:`, or the default pack)."""
        return self.pack or DEFAULT_PACK

    def of_pack(self) -> Pack:
        """The installed pack this policy governs (PackError when it is not installed)."""
        return catalog().pack(self.pack_name)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        installed = catalog()  # a broken installed pack is not this policy's fault: its PackError names it
        try:
            pack = installed.pack(self.pack_name)
        except PackError as exc:
            raise _FieldProblem("pack", exc.reason) from None
        self._check_sections(pack)
        agents = pack.agent_names
        _check_agents(self.budgets.agents, "budgets.agents", agents, pack.name)
        _check_agents(self.permissions, "permissions", agents, pack.name)
        known = frozenset(action.name for action in pack.actions)
        for agent, actions in self.permissions.items():
            for action in actions:
                if action not in known:
                    raise _FieldProblem(f"permissions.{agent}", _unknown_action(action, pack.name))
        for name in self.approvers:
            if name in catalog().agents or name.startswith("agent:"):
                raise _FieldProblem(f"approvers.{name}", "an agent cannot be an approver")
        _check_agents(self.lanes, "lanes", agents, pack.name)
        for agent, lane in self.lanes.items():
            for action in lane.actions:
                if action not in self.permissions.get(agent, []):
                    raise _FieldProblem(f"lanes.{agent}.actions", f"{action!r} is not permitted to {agent}")
            held = {role for roles in self.approvers.values() for role in roles}
            for role in lane.reviewers or ():
                if role not in held:
                    raise _FieldProblem(f"lanes.{agent}.reviewers", f"no approver holds the role {role!r}")
        self._check_tiers(known, pack)
        for action in self.holds.safe_while_pending:
            if action not in known:
                raise _FieldProblem("holds.safe_while_pending", _unknown_action(action, pack.name))
        for reserved in sorted({DRAFT_REVIEW} & (set(self.gates) | set(self.high_impact_tools))):
            where = f"gates.{reserved}" if reserved in self.gates else f"high_impact_tools.{reserved}"
            raise _FieldProblem(where, "the name is reserved for the assistive lane's drafts (name the gate otherwise)")
        tool_of: dict[str, str] = {}
        for tool, spec in self.high_impact_tools.items():
            where = f"high_impact_tools.{tool}"
            if tool in self.gates:
                raise _FieldProblem(where, "the name is already a decision gate")
            for action in spec.actions:
                if action not in known:
                    raise _FieldProblem(f"{where}.actions", _unknown_action(action, pack.name))
                if action in tool_of:
                    raise _FieldProblem(f"{where}.actions", f"{action!r} is already under {tool_of[action]}")
                tool_of[action] = tool
        for gate_name, gate in self.all_gates().items():
            holders = {n for n, roles in self.approvers.items() if set(roles) & set(gate.approver_roles)}
            needed = gate.required_for(Decimal("Infinity"))
            if len(holders) < needed:
                where = f"gates.{gate_name}" if gate_name in self.gates else f"high_impact_tools.{gate_name}"
                raise _FieldProblem(
                    where,
                    f"needs {needed} distinct approvers holding one of "
                    f"{gate.approver_roles}, but the approver directory has {len(holders)}",
                )
        for gate_name in sorted(CODE_GATES - set(self.gates)):
            raise _FieldProblem("gates", f"{gate_name!r} is required (the code escalates through it)")
        if not self.rules:
            self._check_built_in_rules_can_run()
        self._check_rules()
        return self

    def _check_tiers(self, known: frozenset[str], pack: Pack) -> None:
        """Every tier names a known action (permitted to its agent, for a per-agent tier) and, always-human, a gate."""
        _check_agents(self.tiers.agents, "tiers.agents", pack.agent_names, pack.name)
        gates = self.all_gates()
        for where, agent, action, tier in self.tiers.named():
            if action not in known:
                raise _FieldProblem(where, _unknown_action(action, pack.name))
            if agent is not None and action not in self.permissions.get(agent, []):
                raise _FieldProblem(where, f"{action!r} is not permitted to {agent}")
            if tier.tier == ALWAYS_HUMAN and tier.gate not in gates:
                raise _FieldProblem(f"{where}.gate", f"unknown gate {tier.gate!r} (gates: {', '.join(gates)})")

    def _check_sections(self, pack: Pack) -> None:
        """Top-level keys besides the model's are sections the policy's pack declares, checked by the pack."""
        extra = sorted(self.model_extra or {})
        for key in extra:
            if key not in pack.policy_sections:
                declared = (
                    f" (pack {pack.name} adds: {', '.join(pack.policy_sections)})" if pack.policy_sections else ""
                )
                raise _FieldProblem(key, f"unknown key{declared}")
        if pack.check_policy is not None and (extra or pack.policy_sections):
            try:  # the validated document (its limits as numbers), with the pack's sections as written
                pack.check_policy(self.model_dump())
            except SectionProblem as exc:
                raise _FieldProblem(exc.where, exc.reason) from None

    def _check_built_in_rules_can_run(self) -> None:
        """A policy that writes no `rules:` is governed by the rules its pack builds in: the pack must build some,
        and the policy must declare what they read (the pack says what it lacks)."""
        built_in = self.of_pack().governance.built_in_rules
        if built_in is None:
            raise _FieldProblem("rules", f"a policy of pack {self.pack_name} writes its rules (none are built in)")
        try:
            built_in(self)
        except SectionProblem as exc:
            raise _FieldProblem(exc.where, exc.reason) from None

    def _check_rules_cover_what_the_code_did(self) -> None:
        """A policy that writes `rules:` is enforced by them alone (the rules its pack builds in step aside), so
        a gate, a high-impact tool or a limit section the built-in rules enforce (GovernanceDecl.enforced_limits)
        it declares but no rule uses would look enforced and be enforced by nothing: refuse it, naming the first."""
        escalating = {rule.gate for rule in self.rules if rule.gate is not None}
        escalating |= {tier.gate for _, _, _, tier in self.tiers.named() if tier.gate is not None}
        for section, names in (("gates", list(self.gates)), ("high_impact_tools", self.high_impact_tools)):
            for name in names:
                if name not in escalating and name not in CODE_GATES:
                    raise _FieldProblem(
                        f"{section}.{name}",
                        "is declared but no rule escalates through it; a policy that writes rules is enforced by "
                        "its rules alone (add the rule, or remove the gate)",
                    )
        texts = " ".join(
            " ".join((rule.when, rule.amount or "", rule.reason, *rule.let.values())) for rule in self.rules
        )
        read = set(re.findall(r"\blimits\.([A-Za-z_]\w*)", texts))
        declared = self.limits.model_dump()
        for name in self.of_pack().governance.enforced_limits:
            if name not in read and declared.get(name) is not None:
                raise _FieldProblem(
                    f"limits.{name}",
                    "is declared but no rule reads it; a policy that writes rules is enforced by its rules alone "
                    "(add the rule that enforces it)",
                )

    def _check_rules(self) -> None:
        """Every rule names known actions and gates, and its expressions compile (once, kept for evaluate)."""
        from coalition.governance.rules.expression import RuleProblem, compile_rules  # they import this module

        gates = self.all_gates()
        pack = self.of_pack()
        known = frozenset(action.name for action in pack.actions)
        for i, rule in enumerate(self.rules):
            where = f"rules[{i}]"
            for action in rule.actions:
                if action not in known:
                    raise _FieldProblem(f"{where}.actions", _unknown_action(action, pack.name))
            if rule.outcome == "escalate" and rule.gate is None:
                raise _FieldProblem(f"{where}.gate", "an escalate rule names the gate that decides it")
            if rule.gate is not None and rule.gate not in gates:
                raise _FieldProblem(f"{where}.gate", f"unknown gate {rule.gate!r} (gates: {', '.join(gates)})")
            if rule.outcome == "deny" and (rule.gate is not None or rule.amount is not None):
                raise _FieldProblem(f"{where}.outcome", "a deny rule has no gate and no amount")
        if self.rules:
            self._check_rules_cover_what_the_code_did()
        try:
            compiled = compile_rules(self)
        except RuleProblem as exc:
            raise _FieldProblem(exc.where, exc.reason) from None
        object.__setattr__(self, "_compiled", (self.rules, compiled))

    def compiled_rules(self) -> tuple[Any, ...]:
        """The rules' compiled expressions (compiled when the policy was validated)."""
        if self._compiled is None or self._compiled[0] is not self.rules:
            from coalition.governance.rules.expression import compile_rules

            object.__setattr__(self, "_compiled", (self.rules, compile_rules(self)))
        assert self._compiled is not None
        return self._compiled[1]

    def model_post_init(self, context: Any, /) -> None:
        object.__setattr__(self, "_document", None)
        object.__setattr__(self, "_version", hashlib.sha256(canonical_json(self.model_dump(mode="json"))).hexdigest())

    @model_serializer(mode="wrap")
    def _without_empty_lanes(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without `lanes` / `tiers` when they name none: a policy built in code before they existed keeps its
        version."""
        dumped: dict[str, Any] = handler(self)
        if dumped.get("lanes", 0) == {}:
            del dumped["lanes"]
        if dumped.get("tiers", 0) == {"actions": {}, "agents": {}}:
            del dumped["tiers"]
        if dumped.get("pack", 0) is None:  # the default pack's policies, as written before packs existed
            del dumped["pack"]
        return dumped

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Policy:
        """A copy whose version is the hash of the copy's content (pydantic's copy would keep the old one)."""
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy.model_post_init(None)
        return copy

    @property
    def document(self) -> dict[str, Any]:
        """The document this policy was validated from (what a run records and a replay reads back)."""
        return self._document if self._document is not None else self.model_dump(mode="json")

    @property
    def version(self) -> str:
        """The full content hash (64 hex): the same parsed policy always has the same version."""
        return self._version

    @property
    def short_version(self) -> str:
        return self._version[:16]

    def all_gates(self) -> dict[str, Gate]:
        """Decision gates and high-impact tools by name."""
        gates: dict[str, Gate] = dict(self.gates)
        gates.update(self.high_impact_tools)
        return gates

    def gate(self, name: str) -> Gate:
        """A declared gate (KeyError when the policy has none of that name)."""
        return self.gates[name]

    def roles_of(self, approver: str) -> list[str]:
        return list(self.approvers.get(approver, []))


def _check_agents(by_agent: Mapping[str, object], section: str, agents: tuple[str, ...], pack: str) -> None:
    for agent in by_agent:
        if agent not in agents:
            other = catalog().pack_of.get(agent) if agent in catalog().agents else None
            where = f" of pack {other}, not {pack}" if other else ""
            raise _FieldProblem(f"{section}.{agent}", f"unknown agent{where} (agents are {', '.join(agents)})")


def _unknown_action(action: str, pack: str) -> str:
    """Why an action a policy names is not one it may name: a typo, or another pack's action."""
    other = catalog().pack_of.get(action) if action in catalog().actions else None
    return f"action {action!r} belongs to pack {other}, not {pack}" if other else f"unknown action {action!r}"


def parse_policy(data: object, *, source: str) -> Policy:
    """Validate already-parsed YAML/JSON data; any problem is one PolicyError naming the field."""
    if not isinstance(data, dict):
        raise PolicyError(source, "(root)", f"expected a mapping of policy sections, got {type(data).__name__}")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        where = _field_path(first["loc"])
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, _FieldProblem):
            where = cause.where if where == "(root)" else f"{where}.{cause.where}"
        raise PolicyError(source, where, _reason(first) + more) from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; a missing, unreadable, oversized or malformed file raises one-line
    PolicyError naming the file, and the line or field."""
    source = str(path)
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
        text = decode_document(raw)
    except OSError as exc:
        raise PolicyError(source, "(file)", exc.strerror or str(exc)) from None
    except DocumentError as exc:
        raise PolicyError(source, exc.where, exc.reason) from None
    return _from_text(text, source)


def default_policy(pack: str = DEFAULT_PACK) -> Policy:
    """A pack's shipped default policy (Pack.policy; the default pack's unless named): PolicyError when the pack
    is not installed or ships none."""
    try:
        found = catalog().pack(pack)
    except PackError as exc:
        raise PolicyError(pack, "pack", exc.reason) from None
    if found.policy is None:
        raise PolicyError(pack, "pack", f"pack {pack} ships no default policy (give --policy)")
    return _from_text(found.policy.read_text(encoding="utf-8"), found.policy.name)


def _from_text(text: str, source: str) -> Policy:
    try:
        data = load_document(text)
    except DocumentError as exc:
        raise PolicyError(source, exc.where, exc.reason) from None
    return parse_policy(data, source=source)


def section_problem(where: str, exc: ValidationError) -> SectionProblem:
    """The first problem of a section validated with its own model, as one line: `where` (the section's path in
    the policy, or "" for the policy itself) joined with the path inside it, and the reason (with a count of the
    others)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    inside = _field_path(first["loc"]) if first["loc"] else ""
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, _FieldProblem):
        inside = cause.where if inside in ("", "(root)") else f"{inside}.{cause.where}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    path = ".".join(part for part in (where, inside) if part and part != "(root)") or "(root)"
    return SectionProblem(path, _reason(first) + more)


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "model-")):  # pydantic's internal validator steps
            continue
        else:
            out += f".{part}" if out else part
    return out or "(root)"


def _reason(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(error["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return msg
    given = repr(error.get("input"))
    return f"{msg[:1].lower()}{msg[1:]} (got {given if len(given) <= 80 else given[:77] + '...'})"
