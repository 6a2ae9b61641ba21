"""The scenario file format (YAML) as frozen pydantic models, and the loader that turns any mistake in a file
into one line naming the file, the path inside the document and the problem."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from coalition.agents.errors import ModelConfigError
from coalition.agents.model_choice import parse_model_spec
from coalition.bus.canonical import canonical_json, content_hash
from coalition.bus.documents import MAX_DOCUMENT_BYTES, DocumentError, decode_document, load_document
from coalition.domain import DEFAULT_PACK, Pack, PackError, WorldDecl, catalog
from coalition.governance.lanes import DRAFT_REVIEW
from coalition.governance.policy import Policy, default_policy, load_policy
from coalition.ledger.entry import EntryKind
from coalition.scenarios.errors import Problem, ScenarioError


@cache
def observation_kinds() -> dict[str, tuple[str, ...]]:
    """Observation kinds of every installed pack's world → the agents they go to unless an event names its own
    `to` (docs/design.md)."""
    return {k: v for pack in _worlds() for k, v in pack.observations.items()}


@cache
def generated_kinds() -> frozenset[str]:
    """Kinds the world and the runner emit themselves: a scenario cannot schedule them."""
    return frozenset(k for pack in _worlds() for k in pack.generated)


@cache
def data_models() -> dict[str, type[BaseModel]]:
    """The agents' own model of each schedulable kind's data: a file is checked against what its readers accept,
    so a bad value is one line at load time instead of an error mid-run."""
    return {k: v for pack in _worlds() for k, v in pack.data_models.items()}


@cache
def lenient_parts() -> dict[str, tuple[str, type[BaseModel]]]:
    """Parts an agent reads leniently at run time that a scenario author must still get right: (key, model)."""
    return {k: v for pack in _worlds() for k, v in pack.lenient_parts.items()}


def _worlds() -> list[WorldDecl]:
    return [pack.world for pack in catalog().packs.values() if pack.world is not None]


MAX_SEED = 2**64 - 1  # canonical JSON (orjson) carries integers up to 2**64 - 1
MAX_DATA_NUMBER = Decimal("1e15")
_NUMERIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=80)]
Text = Annotated[str, Field(min_length=1)]


def _agent(name: str) -> str:
    if name not in catalog().agents:
        raise Problem(f"unknown agent {name!r} (agents: {', '.join(catalog().agent_names)})")
    return name


def _action(name: str) -> str:
    if name not in catalog().actions:
        raise Problem(f"unknown action {name!r} (see the action table of docs/design.md)")
    return name


KnownAgent = Annotated[str, AfterValidator(_agent)]  # one of the five agents, or a one-line Problem
KnownAction = Annotated[str, AfterValidator(_action)]  # an action the executor knows, or a one-line Problem


def _json_safe(value: Any, at: tuple[str | int, ...] = ()) -> Any:
    """YAML data as JSON: dates become ISO strings; anything JSON cannot carry is a problem."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Problem(f"key {key!r} must be a string", at)
            out[key] = _json_safe(item, (*at, key))
        return out
    if isinstance(value, list):
        return [_json_safe(item, (*at, i)) for i, item in enumerate(value)]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise Problem(f"{type(value).__name__} values cannot travel in a message", at)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ProseDocument(_Spec):
    """A document from outside, as people write it; the event's `data` is its ground-truth structured reading.
    In the model lanes the receiving agent's model reads the prose (screened as untrusted); the offline model
    answers with the ground truth, and the transactional lane uses it."""

    kind: Literal["regulator_bulletin", "customer_complaint", "news_article", "partner_email"]
    title: Text
    sender: str = ""
    text: Text


class ScheduledEvent(_Spec):
    """Something that happens to the world on a given day; becomes an observation for the agents in `to`. Its
    kind and data are checked against the scenario's pack (Scenario validates them: `check_against`)."""

    day: int = Field(ge=0)
    kind: str
    subject: str = ""
    to: list[str] | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    text: str | None = None
    document: ProseDocument | None = None

    @model_validator(mode="after")
    def _one_text(self) -> ScheduledEvent:
        if self.document is not None and self.text is not None:
            raise Problem("an event with a document carries its prose in document.text, not text", ("text",))
        return self

    _default_to: tuple[str, ...] | None = PrivateAttr(default=None)  # the pack's recipients of the kind

    @field_validator("to")
    @classmethod
    def _known_agents(cls, to: list[str] | None) -> list[str] | None:
        for i, name in enumerate(to or []):
            try:
                _agent(name)
            except Problem as exc:
                raise Problem(exc.reason, (i,)) from None
        return to

    @field_validator("data", mode="before")
    @classmethod
    def _plain_data(cls, data: Any) -> Any:
        return _json_safe(data) if isinstance(data, Mapping) else data

    def check_against(self, pack: Pack) -> None:
        """The kind is one the pack's world takes from a scenario, `to` names the pack's agents, and the data is
        what the receiving agents can read (bad values name their field); Problem otherwise. Remembers the
        kind's recipients."""
        world = pack.world
        assert world is not None  # a scenario's pack has a world (Scenario checks it first)
        kind = self.kind
        if kind in world.generated:
            raise Problem(f"{kind!r} is emitted by the world itself and cannot be scheduled", ("kind",))
        if kind not in world.observations:
            known = ", ".join(k for k in world.observations if k not in world.generated)
            raise Problem(f"unknown observation kind {kind!r} (kinds of pack {pack.name}: {known})", ("kind",))
        for i, name in enumerate(self.to or []):
            if name not in pack.agent_names:
                reason = f"agent {name!r} is not one of pack {pack.name}'s ({', '.join(pack.agent_names)})"
                raise Problem(reason, ("to", i))
        model = world.data_models.get(kind)
        if model is not None:
            checks: list[tuple[tuple[str, ...], type[BaseModel], Any]] = [((), model, self.data)]
            if kind in world.lenient_parts:
                key, part = world.lenient_parts[kind]
                checks.append(((key,), part, self.data.get(key, {})))
            for at, checked, value in checks:
                try:
                    checked.model_validate(value)
                except ValidationError as exc:
                    loc, reason = first_problem(exc, checked)
                    raise Problem(reason, ("data", *at, *loc)) from None
            allowed = _data_keys(model)
            for key in self.data:
                if key not in allowed:  # the agents ignore unknown keys: a misspelt one would pass silently
                    raise Problem(f"unknown key (allowed: {', '.join(sorted(allowed))})", ("data", key))
        self._default_to = tuple(world.observations[kind])

    @property
    def recipients(self) -> list[str]:
        if self.to is not None:
            return list(self.to)
        return list(self._default_to) if self._default_to is not None else list(observation_kinds()[self.kind])


class Approver(_Spec):
    """A person from the policy's approver directory, acting in one of their roles."""

    name: Text
    role: Text


class BoardMatch(_Spec):
    """Which pending escalation a scripted decision is for; every given field must match, args as a subset."""

    gate: str | None = None
    agent: KnownAgent | None = None
    action: KnownAction | None = None
    args: dict[str, Any] = Field(default_factory=dict)


class BoardDecision(_Spec):
    """A scripted human decision: approve or reject the first pending escalation that matches; `amend` approves an
    assistive draft (gate draft_review) with `args` changed (the arguments to change, within the action's schema)."""

    match: BoardMatch
    decision: Literal["approve", "reject", "amend"]
    approvers: list[Approver] = Field(min_length=1)
    reason: Text
    on_day: int | None = Field(default=None, ge=0)
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct_approvers(self) -> BoardDecision:
        if self.decision == "amend" and not self.args:
            raise Problem("an amend names the arguments it changes", ("args",))
        if self.decision != "amend" and self.args:
            raise Problem(f"only an amend changes arguments (this decision is {self.decision!r})", ("args",))
        declared = catalog().actions.get(self.match.action) if self.match.action is not None else None
        arguments = declared.argument_names() if declared is not None else ()
        for key in self.args if arguments else ():
            if key not in arguments:
                why = f"{key!r} is not an argument of {self.match.action} (expected {', '.join(arguments)})"
                raise Problem(why, ("args", key))
        names = [a.name for a in self.approvers]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise Problem(f"{name!r} is listed twice (four-eyes needs distinct people)", ("approvers", i, "name"))
        return self


class BoardSpec(_Spec):
    """The scripted board: decisions in priority order; anything left unanswered expires (deny)."""

    default_on_timeout: Literal["deny"] = "deny"
    decisions: list[BoardDecision] = Field(default_factory=list)


class EntryMatch(_Spec):
    """Which ledger entries an expectation counts; every given field must match (payload/args as subsets)."""

    kind: EntryKind | None = None
    actor: str | None = None
    agent: KnownAgent | None = None
    action: KnownAction | None = None
    outcome: str | None = None
    gate: str | None = None
    subject: str | None = None
    message_type: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    args: dict[str, Any] = Field(default_factory=dict)


class CountCheck(_Spec):
    """How many entries match: at least `min`, at most `max`, exactly `equals`."""

    match: EntryMatch
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    equals: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> CountCheck:
        if self.min is None and self.max is None and self.equals is None:
            raise Problem("give min, max or equals")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise Problem(f"min {self.min} is above max {self.max}")
        return self


class OrderCheck(_Spec):
    """The first entry matching `first` comes before the first entry matching `then`."""

    first: EntryMatch
    then: EntryMatch


WorldOp = Literal["<=", ">=", "<", ">", "==", "!=", "in"]


class WorldCheck(_Spec):
    """A value in the final world (dotted path into World.snapshot(), plus `kpis.`; `*` = every child)."""

    path: Text
    op: WorldOp
    value: Any

    @model_validator(mode="after")
    def _in_needs_list(self) -> WorldCheck:
        if self.op == "in" and not isinstance(self.value, list):
            raise Problem("'in' needs a list of values", ("value",))
        return self


class Expectation(_Spec):
    """One thing the run must show, checked at the end against the ledger and the final world."""

    id: Slug
    description: Text
    count: CountCheck | None = None
    order: OrderCheck | None = None
    world: WorldCheck | None = None

    @model_validator(mode="after")
    def _one_check(self) -> Expectation:
        given = [k for k in ("count", "order", "world") if getattr(self, k) is not None]
        if len(given) != 1:
            raise Problem(f"give exactly one of count, order, world (got {', '.join(given) or 'none'})")
        return self


class AgentSettings(_Spec):
    """Per-agent settings; `model` is "offline" (the deterministic narrator) or "openai:…"/"anthropic:…", and
    None when the file does not set it (so COALITION_LLM applies, while an explicit offline wins over it); `graph`
    names a factory of the user's own LangGraph graph that stands in for the pack's agent (docs/byo-agent.md)."""

    model: str | None = None
    # a graph of the user's own (agents/graph_agent.py) in place of the pack's agent: "package.module:factory"
    graph: str | None = None

    @field_validator("graph")
    @classmethod
    def _graph_reference(cls, graph: str | None) -> str | None:
        if graph is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", graph):
            raise Problem(f"must be 'package.module:factory' (got {graph!r})")
        return graph

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str | None) -> str | None:
        if model is not None:
            try:
                parse_model_spec(model)
            except ModelConfigError as exc:
                raise Problem(exc.reason) from None
        return model


class Scenario(_Spec):
    """A whole scenario: the pack it is written for (`pack:`, absent = the default pack), its world on day 0, what
    happens on which day, how the board answers, what to expect. `world:` is validated by the pack's world model,
    events by its observation kinds."""

    name: Slug
    description: Text
    seed: int = Field(ge=0, le=MAX_SEED)
    start: date
    days: int = Field(ge=1, le=3650)
    pack: str | None = None
    policy: str | None = None
    world: Any
    events: list[ScheduledEvent] = Field(default_factory=list)
    board: BoardSpec = BoardSpec()
    expectations: list[Expectation] = Field(default_factory=list)
    agents: dict[str, AgentSettings] = Field(default_factory=dict)

    _source: Path | None = PrivateAttr(default=None)
    _document: dict[str, Any] | None = PrivateAttr(default=None)
    # the policy parse_scenario checked the scenario against, with where it was read from (the pack, and the file or
    # None for the pack's default): a run governs with that same parse instead of reading and compiling it again
    _checked_policy: tuple[tuple[str, Path | None], Policy] | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_document(cls, data: Any, handler: ModelWrapValidatorHandler[Scenario]) -> Scenario:
        scenario = handler(data)
        if isinstance(data, Mapping) and scenario is not data:
            try:  # plain JSON: what a run records and a replay reads back, never re-serialised by today's model
                scenario._document = orjson.loads(canonical_json(dict(data)))
            except TypeError:
                scenario._document = None  # built in code: the model dump stands for the document
        return scenario

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Scenario:
        """A copy; a copy with changes is no longer the document it was read from (its hash follows the copy)."""
        copy = super().model_copy(update=update, deep=deep)
        if update:
            copy._document = None
        return copy

    @model_serializer(mode="wrap")
    def _without_default_pack(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without `pack` when it names none: a scenario built in code for the default pack keeps its hash."""
        dumped: dict[str, Any] = handler(self)
        if dumped.get("pack", 0) is None:
            del dumped["pack"]
        return dumped

    @property
    def pack_name(self) -> str:
        return self.pack or DEFAULT_PACK

    def of_pack(self) -> Pack:
        return catalog().pack(self.pack_name)

    @field_validator("pack")
    @classmethod
    def _installed(cls, pack: str | None) -> str | None:
        if pack is not None:
            try:
                found = catalog().pack(pack)
            except PackError as exc:
                raise Problem(f"{pack!r} {exc.reason}") from None
            if found.world is None or found.world.spec is None:
                raise Problem(f"pack {pack} declares no world a scenario can describe")
        return pack

    @field_validator("world")
    @classmethod
    def _pack_world(cls, world: Any, info: ValidationInfo) -> Any:
        """The `world:` section as the pack's world model (the default pack's when `pack:` is absent)."""
        if "pack" not in info.data:
            return world  # the pack itself is wrong: that is the problem reported
        decl = catalog().pack(info.data["pack"] or DEFAULT_PACK).world
        if decl is None or decl.spec is None:
            raise Problem(f"pack {info.data['pack'] or DEFAULT_PACK} declares no world a scenario can describe")
        if isinstance(world, decl.spec):
            return world
        try:
            return decl.spec.model_validate(world)
        except ValidationError as exc:
            loc, reason = first_problem(exc, decl.spec)
            raise Problem(reason, loc) from None

    @property
    def document(self) -> dict[str, Any]:
        """The document this scenario was validated from (what a run records and a replay reads back)."""
        return self._document if self._document is not None else self.model_dump(mode="json")

    @field_validator("description")
    @classmethod
    def _one_paragraph(cls, text: str) -> str:
        if "\n\n" in text.strip():
            raise Problem("must be one paragraph (no blank lines)")
        return text

    @field_validator("agents")
    @classmethod
    def _known_agent_names(cls, agents: dict[str, AgentSettings]) -> dict[str, AgentSettings]:
        for name in agents:
            try:
                _agent(name)
            except Problem as exc:
                raise Problem(exc.reason, (name,)) from None
        return agents

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        last = self.days - 1
        pack = self.of_pack()
        for name in self.agents:
            if name not in pack.agent_names:
                reason = f"agent {name!r} is not one of pack {pack.name}'s ({', '.join(pack.agent_names)})"
                raise Problem(reason, ("agents", name))
        check_event = pack.world.check_event if pack.world is not None else None
        for i, event in enumerate(self.events):
            try:
                event.check_against(pack)
                if event.day > last:
                    raise Problem(f"{event.day} is after the last day ({last})", ("day",))
                if check_event is not None:  # what the pack's world knows of its events (its regions, customers)
                    check_event(self.world, event)
            except Problem as exc:
                raise Problem(exc.reason, ("events", i, *exc.at)) from None
            _bounded_numbers(event.data, ("events", i, "data"))
        for i, decision in enumerate(self.board.decisions):
            if decision.on_day is not None and decision.on_day > last:
                raise Problem(f"{decision.on_day} is after the last day ({last})", ("board", "decisions", i, "on_day"))
        seen: set[str] = set()
        for i, expectation in enumerate(self.expectations):
            if expectation.id in seen:
                raise Problem(f"{expectation.id!r} is used twice", ("expectations", i, "id"))
            seen.add(expectation.id)
        return self

    @property
    def last_day(self) -> int:
        return self.days - 1

    @property
    def source(self) -> Path | None:
        """The file the scenario was read from (None when built in code)."""
        return self._source

    @property
    def policy_path(self) -> Path | None:
        """The policy file to govern with; None = the pack's shipped default policy (`default_policy(pack)`)."""
        if self.policy is None:
            return None
        path = Path(self.policy)
        return path if path.is_absolute() or self._source is None else self._source.parent / path

    def load_policy(self) -> Policy:
        path = self.policy_path
        if self._checked_policy is not None and self._checked_policy[0] == (self.pack_name, path):
            return self._checked_policy[1]  # read and checked when the scenario was (frozen: safe to share)
        return default_policy(self.pack_name) if path is None else load_policy(path)

    def date_of(self, day: int) -> datetime:
        """Midnight UTC of a scenario day (the simulated clock's time for that day)."""
        return datetime.combine(self.start, time(0, tzinfo=UTC)) + timedelta(days=day)

    def events_on(self, day: int) -> list[ScheduledEvent]:
        """Today's events, in file order."""
        return [e for e in self.events if e.day == day]


def _data_keys(model: type[BaseModel]) -> set[str]:
    """The keys an event's data may hold: its model's fields, and `region` (checked against the world)."""
    return {field.alias or name for name, field in model.model_fields.items()} | {"region"}


def _bounded_numbers(value: Any, at: tuple[str | int, ...] = ()) -> None:
    """Every number in an event's data within ±MAX_DATA_NUMBER: 1e300 is no amount of money, kWh or accounts."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _bounded_numbers(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _bounded_numbers(item, (*at, i))
    elif not isinstance(value, bool) and isinstance(value, int | float | str):
        number = as_decimal(value) if not isinstance(value, str) or _NUMERIC.fullmatch(value.strip()) else None
        if number is not None and abs(number) > MAX_DATA_NUMBER:  # "1e300" is a number to the agents too
            raise Problem(f"{_short(value)} is out of range (at most {MAX_DATA_NUMBER:,.0f} in size)", at)


def scenario_hash(scenario: Scenario) -> str:
    """Content hash of the scenario's document (comments, key order, formatting, the file's path and today's
    model defaults do not change it)."""
    return content_hash(scenario.document)


def library() -> dict[str, Traversable]:
    """Every installed pack's scenario library by name: the default pack's by file name ("price-spike"), another
    pack's prefixed with the pack's name ("billing-desk-retention-wave")."""
    found: dict[str, Traversable] = {}
    for pack in sorted(catalog().packs.values(), key=lambda p: p.name):
        if pack.scenarios is None or not pack.scenarios.is_dir():
            continue
        prefix = "" if pack.name == DEFAULT_PACK else f"{pack.name}-"
        for item in pack.scenarios.iterdir():
            if item.name.endswith(".yaml"):
                found[prefix + item.name.removesuffix(".yaml")] = item
    return dict(sorted(found.items()))


def list_library() -> list[str]:
    """Names of the scenarios shipped in the installed packs' libraries (`library()`)."""
    return list(library())


def _resolve(path_or_name: str | Path) -> Path:
    text = str(path_or_name)
    if isinstance(path_or_name, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        path = Path(path_or_name)
        if not path.is_file():
            raise ScenarioError(path.name, "", f"file not found ({path})")
        return path
    ref = library().get(text)
    if ref is None or not ref.is_file():
        available = ", ".join(list_library())
        raise ScenarioError(f"{text}.yaml", "", f"no such scenario in the library (available: {available})")
    return Path(str(ref))


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Read a scenario file, or a library scenario by bare name ("price-spike"); ScenarioError on any problem."""
    path = _resolve(path_or_name)
    try:
        with path.open("rb") as handle:
            text = decode_document(handle.read(MAX_DOCUMENT_BYTES + 1))
    except OSError as exc:
        raise ScenarioError(path.name, "", f"cannot be read: {exc.strerror or exc}") from None
    except DocumentError as exc:
        raise ScenarioError(path.name, exc.where, exc.reason) from None
    return parse_scenario(text, file=path.name, source=path)


def parse_scenario(text: str, *, file: str = "<scenario>", source: Path | None = None) -> Scenario:
    """Validate scenario YAML text; `source` (the file's path) anchors a relative policy path."""
    try:
        data = load_document(text)
    except DocumentError as exc:
        raise ScenarioError(file, exc.where, exc.reason) from None
    if not isinstance(data, dict):
        raise ScenarioError(file, "(top)", f"expected a mapping of scenario keys, got {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        path, reason = explain(exc, Scenario)
        raise ScenarioError(file, path, reason) from None
    scenario._source = source
    _check_against_policy(scenario, file)
    return scenario


def _check_against_policy(scenario: Scenario, file: str) -> None:
    """Board decisions must name gates and approvers the policy knows, in roles they hold."""
    path = scenario.policy_path
    if path is not None and not path.is_file():
        raise ScenarioError(file, "policy", f"{scenario.policy!r} not found (looked for {path})")
    policy = scenario.load_policy()
    misfit = policy_misfit(scenario, policy)
    if misfit is not None:
        raise ScenarioError(file, "policy", misfit)
    scenario._checked_policy = ((scenario.pack_name, path), policy)
    gates = policy.all_gates()
    for i, decision in enumerate(scenario.board.decisions):
        where = f"board.decisions[{i}]"
        gate = decision.match.gate
        if gate is not None and gate not in gates and gate != DRAFT_REVIEW:  # draft_review: the assistive lane's
            known = ", ".join([*gates, DRAFT_REVIEW])
            raise ScenarioError(file, f"{where}.match.gate", f"unknown gate {gate!r} (gates: {known})")
        for j, approver in enumerate(decision.approvers):
            roles = policy.roles_of(approver.name)
            if not roles:
                known = ", ".join(sorted(policy.approvers))
                reason = f"{approver.name!r} is not in the policy's approver directory ({known})"
                raise ScenarioError(file, f"{where}.approvers[{j}].name", reason)
            if approver.role not in roles:
                reason = f"{approver.name!r} does not hold the role {approver.role!r} (holds {', '.join(roles)})"
                raise ScenarioError(file, f"{where}.approvers[{j}].role", reason)


def policy_misfit(scenario: Scenario, policy: Policy) -> str | None:
    """Why `policy` cannot govern `scenario` (it is another pack's: its agents, actions and gates are not the
    scenario's), or None."""
    if policy.pack_name == scenario.pack_name:
        return None
    return (
        f"policy {policy.name!r} governs pack {policy.pack_name}, not this scenario's pack {scenario.pack_name} "
        f"(give a policy of pack {scenario.pack_name}, or none for its default)"
    )


def _format_path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "model-")) or part == "[key]":
            continue
        else:
            out += f".{part}" if out else part
    return out or "(top)"


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model that holds the last key of `loc` (to list the keys it allows)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = _inner_model(current.model_fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """list[X], dict[str, X], X | None → X (the model inside a container)."""
    while get_origin(annotation) in (list, dict, Union) or type(annotation).__name__ == "UnionType":
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[-1] if args else None
    return annotation


def explain(exc: ValidationError, model: type[BaseModel]) -> tuple[str, str]:
    """The first validation error as (path in the document, one-line reason)."""
    loc, reason = first_problem(exc, model)
    return _format_path(loc), reason


def first_problem(exc: ValidationError, model: type[BaseModel]) -> tuple[list[str | int], str]:
    """The first validation error as (location inside `model`'s input, one-line reason)."""
    first = exc.errors(include_url=False)[0]
    loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith(("function-", "model-")))]
    kind = first["type"]
    cause = first.get("ctx", {}).get("error")
    value = first.get("input")
    if isinstance(cause, Problem):
        return [*loc, *cause.at], cause.reason
    if kind == "extra_forbidden":
        holder = _model_at(model, loc[:-1])
        allowed = f" (allowed: {', '.join(holder.model_fields)})" if holder is not None else ""
        return loc, f"unknown key{allowed}"
    if kind == "missing":
        return loc, "is required"
    if kind.startswith(("date_", "datetime_")):
        return loc, f"{value!r} is not a valid date (use YYYY-MM-DD)"
    if kind == "literal_error":
        return loc, f"{value!r} is not one of {first['ctx']['expected']}"
    message = str(first["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return loc, message
    shown = _short(value)
    return loc, f"{message[:1].lower()}{message[1:]}" + (f" (got {shown})" if shown else "")


def _short(value: Any) -> str:
    if isinstance(value, dict | list):
        return type(value).__name__
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def numbers_equal(a: Any, b: Any) -> bool | None:
    """Compare two numbers (or numeric strings, as money is in snapshots) exactly; None if either is not one."""
    da, db = as_decimal(a), as_decimal(b)
    if da is None or db is None:
        return None
    return da == db


def as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def subset_matches(expected: Any, observed: Any) -> bool:
    """`expected` is found in `observed`: mappings as subsets (recursively), numbers by value, the rest equal."""
    if isinstance(expected, Mapping):
        return isinstance(observed, Mapping) and all(
            key in observed and subset_matches(value, observed[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(observed, list)
            and len(expected) == len(observed)
            and all(subset_matches(e, o) for e, o in zip(expected, observed, strict=True))
        )
    same_number = numbers_equal(expected, observed) if not isinstance(expected, str) else None
    return bool(same_number) if same_number is not None else bool(expected == observed)
