"""The installed packs, found through the `coalition.packs` entry point group, and their merged vocabulary.

Packs are loaded lazily, on the first question about the vocabulary (never at import time, so a pack may import
any core module). Every action and agent name is unique across installed packs: a clash is a PackError naming
both packs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points

from coalition.domain.actions import Action
from coalition.domain.errors import PackError
from coalition.domain.pack import AgentDecl, Pack
from coalition.domain.pack_paths import ENTRY_POINT_GROUP, pack_path, packs_from_path

DEFAULT_PACK = "helios"  # a scenario file without `pack:` was written for it


@dataclass(frozen=True, slots=True)
class Catalog:
    """Packs by name, and every action and agent with the pack that declares it."""

    packs: Mapping[str, Pack]
    actions: Mapping[str, Action] = field(default_factory=dict)
    agents: Mapping[str, AgentDecl] = field(default_factory=dict)
    pack_of: Mapping[str, str] = field(default_factory=dict)  # action or agent name → pack name

    @classmethod
    def of(cls, packs: Iterable[Pack]) -> Catalog:
        by_name: dict[str, Pack] = {}
        actions: dict[str, Action] = {}
        agents: dict[str, AgentDecl] = {}
        pack_of: dict[str, str] = {}
        for pack in packs:
            if pack.name in by_name:
                raise PackError(pack.name, "is installed twice")
            by_name[pack.name] = pack
            for table in pack.loaded_on_use:
                table.check()
            for action in pack.actions:
                if action.name in actions:
                    raise PackError(pack.name, f"action {action.name!r} is already declared by {pack_of[action.name]}")
                actions[action.name] = action
                pack_of[action.name] = pack.name
            for agent in pack.agents:
                if agent.name in agents:
                    raise PackError(pack.name, f"agent {agent.name!r} is already declared by {pack_of[agent.name]}")
                agents[agent.name] = agent
                pack_of.setdefault(agent.name, pack.name)
        return cls(by_name, actions, agents, pack_of)

    def pack(self, name: str) -> Pack:
        """The pack named `name`; PackError listing the installed ones otherwise."""
        found = self.packs.get(name)
        if found is None:
            installed = ", ".join(sorted(self.packs)) or "none"
            raise PackError(
                name, f"is not installed (installed packs: {installed}); a pack's folder is used with --pack-path"
            )
        return found

    @property
    def agent_names(self) -> tuple[str, ...]:
        """Every agent of every installed pack, packs in name order, each pack's agents in its order."""
        return tuple(a.name for name in sorted(self.packs) for a in self.packs[name].agents)


def installed_packs() -> list[Pack]:
    """Every pack the `coalition.packs` entry points name, in name order, then the packs of the directories
    COALITION_PACK_PATH names (coalition.domain.pack_paths); PackError for one that cannot load, or a directory's
    pack whose name an installed one already uses."""
    packs = _entry_point_packs()
    where = dict.fromkeys((pack.name for pack in packs), "the installed pack")
    for directory in pack_path():
        for pack in packs_from_path(directory, where):
            where[pack.name] = f"the pack from {directory.absolute()}"
            packs.append(pack)
    return packs


def _entry_point_packs() -> list[Pack]:
    packs: list[Pack] = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        try:
            loaded = point.load()
        except Exception as exc:  # a broken third-party pack is one line, not a traceback
            raise PackError(
                point.name, f"entry point {point.value} cannot be loaded ({type(exc).__name__}: {exc})"
            ) from None
        if not isinstance(loaded, Pack):
            raise PackError(point.name, f"entry point {point.value} is a {type(loaded).__name__}, not a Pack")
        if loaded.name != point.name:
            raise PackError(point.name, f"entry point {point.value} holds the pack named {loaded.name!r}")
        packs.append(loaded)
    return packs


@cache
def catalog() -> Catalog:
    """The installed packs' vocabulary (loaded once per process)."""
    return Catalog.of(installed_packs())


def load_pack(name: str = DEFAULT_PACK) -> Pack:
    """One installed pack by name."""
    return catalog().pack(name)
