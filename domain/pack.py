"""What a domain pack provides, as one value the core can read: its actions, agents, world, gates, default
policy and scenario library. docs/packs.md walks through writing one.

A pack is an installed Python package exposing a `Pack` through the `coalition.packs` entry point group::

    [project.entry-points."coalition.packs"]
    billing-desk = "billing_desk:PACK"

The core loads packs only through that group (coalition.domain.catalog); no core module imports a pack.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any, Protocol

from pydantic import BaseModel

from coalition.domain.actions import Action
from coalition.domain.loaded_on_use import LoadedOnUse
from coalition.domain.reporting import Reporting


@dataclass(frozen=True, slots=True)
class AgentDecl:
    """One agent of a pack.

    - `name`: the agent's name on the bus, in policies and budgets (it also names its producer key);
    - `build`: narrator → the agent (a coalition.agents FunctionAgent: a LangGraph graph over the agent's engine),
      or where to find it as `"package.module:Attribute"`, imported only when an agent is built (so that reading a
      pack's vocabulary — which every command that validates a policy does — never loads LangChain or LangGraph);
    - `reacts_to`: the observation and agent-message kinds that make it run in a step (the agent class's
      `REACTS_TO` is what the runtime reads; this is for documentation and may stay empty);
    - `observes`: the observation kinds the scenario routes to it (in addition to the broadcast ones);
    - `doc`: one line for the docs.
    """

    name: str
    build: Callable[[Any], Any] | str
    reacts_to: frozenset[str] = frozenset()
    observes: tuple[str, ...] = ()
    doc: str = ""

    def builder(self) -> Callable[[Any], Any]:
        """`build` itself, or the attribute its `"module:attribute"` names (imported now)."""
        if not isinstance(self.build, str):
            return self.build
        module_name, _, attribute = self.build.partition(":")
        found: Callable[[Any], Any] = getattr(importlib.import_module(module_name), attribute)
        return found


class WorldPort(Protocol):
    """What the core reads of a pack's world: its state (`day`, and `applied_keys`, the idempotency keys the
    executor applied, which the executor records there), what a scenario's world checks see, and its KPIs."""

    @property
    def state(self) -> Any: ...

    def snapshot(self) -> dict[str, Any]: ...

    def kpis(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class WorldDecl:
    """The pack's world: how a scenario's world section becomes the world the executor changes.

    - `build`: (the scenario's world spec, seed, the policy's limits) → the world (its `state` has `day` and
      `applied_keys`, which the executor reads; `snapshot()` and `kpis()` are what a scenario's world checks and
      a run's summary read);
    - `open_day`: (the world, the scenario, the day, each agent's money budget) → the day's observations, in
      order: the world moves to the day, applies the day's events and says what the agents see (each a
      coalition.bus Observation; the runner publishes them after the policy brief on day 0);
    - `spec`: the pydantic model of the scenario's `world:` section (the pack's scenario fields);
    - `observations`: every observation kind → the agents it goes to unless an event names its own `to`;
    - `generated`: the kinds the world emits itself (a scenario cannot schedule them);
    - `data_models`: per schedulable kind, the model of its data that its readers accept;
    - `lenient_parts`: per kind, (key, model) of a part agents read leniently but an author must get right;
    - `cases`: the kinds that are a customer's case arriving through a channel (`data.channel`): the
      consistency check (pass^k) sends each through other channels and days;
    - `check_event`: (the scenario's world spec, one scheduled event) → None, or raises the scenarios' Problem
      with its path inside the event: what the world knows of its events (e.g. a region it has), checked when a
      scenario loads.

    A table only scenarios and a running world read (`data_models`, `lenient_parts`) may be declared
    `LoadedOnUse("package.module:NAME")`: every command that validates a policy loads every installed pack, and
    then does not import the models.
    """

    build: Callable[..., Any]
    open_day: Callable[..., list[Any]]
    spec: type[Any] | None = None
    observations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    generated: frozenset[str] = frozenset()
    data_models: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    lenient_parts: Mapping[str, tuple[str, type[BaseModel]]] = field(default_factory=dict)
    cases: frozenset[str] = frozenset()
    check_event: Callable[[Any, Any], None] | None = None


@dataclass(frozen=True, slots=True)
class Voice:
    """How a pack's agents are named to a model and how the offline model signs their notices.

    - `business`: whom the agents work for, in every instruction to a model ("You are the finance agent of
      <business>. …");
    - `sign_off`: how one of the offline model's customer notices opens ("<sign_off>: we …");
    - `offline_model`: the offline model's id, recorded with every text it words.

    The instructions and the offline wording are recorded (by hash and by text), so a pack that changes its voice
    changes its runs' ledgers.
    """

    business: str
    sign_off: str
    offline_model: str


@dataclass(frozen=True, slots=True)
class GovernanceDecl:
    """What governance reads of a pack besides its actions (everything optional: a pack whose policies write their
    rules, and keep their limits as plain named values, declares nothing here).

    - `limits`: the model of the `limits:` section of the pack's policies, a subclass of governance's HardLimits
      with the pack's typed sections (e.g. a price band with its own checks); a policy of the pack is validated
      with it and its `limits` is that model;
    - `built_in_rules`: (the validated policy) → the rules, in order, that govern a policy document of the pack
      that writes no `rules:` (documents recorded before the pack's rules became data): governance runs them
      after permissions and argument shapes, before high-impact tools, tiers and money budgets (each a
      coalition.governance Rule). Called when such a policy loads too: SectionProblem (one line) when the
      document lacks what they read. None: every policy of the pack writes its rules;
    - `enforced_limits`: the limit sections the built-in rules enforce: a policy of the pack that writes rules
      must read each of them it declares in some rule (else it would look enforced and be enforced by nothing);
    - `observes`: per observation kind, what governance learns from it: (GovernanceState.learned, the
      observation's data) → the learned values to replace (as an action's `learns` does when it executes);
    - `state_fields`: the fields rules' expressions read as `state.<name>` besides governance's own (`credits`,
      `spend`, `open_escalations`), each a coalition.governance StateField, typically over what it learned.
    """

    limits: type[BaseModel] | None = None
    built_in_rules: Callable[[Any], Sequence[Any]] | None = None
    enforced_limits: tuple[str, ...] = ()
    observes: Mapping[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]]] = field(
        default_factory=dict
    )
    state_fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pack:
    """A domain pack: one business's vocabulary and behaviour, declared once.

    - `name`: how scenarios and `coalition pack list` name it (a scenario file's `pack:`);
    - `title`, `description`: one line each, for `coalition pack list`;
    - `actions`: every action, each once (see coalition.domain.actions.Action);
    - `agents`: every agent, in a stable order;
    - `world`: the world model (see WorldDecl);
    - `gates`: the names of the decision gates its default policy declares;
    - `policy`: the default policy file (a resource inside the pack): a scenario of the pack without its own
      `policy:` is governed by it;
    - `scenarios`: the folder of its scenario library (*.yaml);
    - `brief`: the validated policy → the data of the `policy.brief` observation every agent gets on day 0
      (what the pack's agents must know of the policy; governance enforces it whatever agents believe);
    - `policy_sections`: top-level sections the pack adds to its policies (e.g. eligibility tables its engines
      read); `check_policy` validates them: (the policy document) → None, or SectionProblem (one line);
    - `demo`: the scenario of its library (file name without .yaml) that `coalition demo` runs when this is the
      default pack;
    - `scenario_template`: a commented scenario file (a resource inside the pack) that `coalition scenario new NAME
      --pack` starts from, `__NAME__` standing for the new scenario's name;
    - `reporting`: what reports and the console show of its world (see Reporting);
    - `voice`: how its agents are named to a model and how the offline model words their notices (see Voice;
      `speaks` makes one of the title and name when the pack declares none);
    - `governance`: what governance reads of the pack's policies besides (see GovernanceDecl).
    """

    name: str
    title: str
    actions: tuple[Action, ...]
    agents: tuple[AgentDecl, ...] = ()
    world: WorldDecl | None = None
    gates: tuple[str, ...] = ()
    policy: Traversable | None = None
    scenarios: Traversable | None = None
    description: str = ""
    brief: Callable[[Any], Mapping[str, Any]] | None = None
    policy_sections: tuple[str, ...] = ()
    check_policy: Callable[[Mapping[str, Any]], None] | None = None
    demo: str = ""
    scenario_template: Traversable | None = None
    reporting: Reporting = field(default_factory=Reporting)
    voice: Voice | None = None
    governance: GovernanceDecl = GovernanceDecl()
    _by_name: dict[str, Action] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for action in self.actions:
            if action.name in self._by_name:
                raise ValueError(f"pack {self.name}: action {action.name!r} is declared twice")
            self._by_name[action.name] = action
        names = [agent.name for agent in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"pack {self.name}: an agent is declared twice ({', '.join(names)})")
        for action in self.actions:
            for proposer in action.proposers:
                if proposer not in names:
                    raise ValueError(f"pack {self.name}: action {action.name} names unknown proposer {proposer!r}")
        for table in self.loaded_on_use:
            table.pack = self.name

    @property
    def loaded_on_use(self) -> tuple[LoadedOnUse[Any, Any], ...]:
        """The world's tables declared LoadedOnUse (imported on their first read)."""
        if self.world is None:
            return ()
        tables = (self.world.data_models, self.world.lenient_parts)
        return tuple(table for table in tables if isinstance(table, LoadedOnUse))

    def action(self, name: str) -> Action | None:
        return self._by_name.get(name)

    @property
    def speaks(self) -> Voice:
        """The pack's voice, or one made of its title and name when it declares none."""
        if self.voice is not None:
            return self.voice
        return Voice(self.title, f"An update from {self.title}", f"offline:{self.name}-narrator-v1")

    @property
    def agent_names(self) -> tuple[str, ...]:
        return tuple(agent.name for agent in self.agents)
