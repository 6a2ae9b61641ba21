"""`coalition pack new NAME`: a working pack written from the templates in coalition/cli/pack_template/ — one
agent, one action with its argument model, one gate, a default policy, one scenario and its tests — that runs as
soon as it is installed (`pip install -e DIR` registers its `coalition.packs` entry point)."""

from __future__ import annotations

import importlib.util
import keyword
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jinja2 import Environment, StrictUndefined

from coalition.domain import Catalog

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# template → the file it becomes ({module} is the pack's Python package)
FILES: dict[str, str] = {
    "pyproject.toml.j2": "pyproject.toml",
    "README.md.j2": "README.md",
    "__init__.py.j2": "{module}/__init__.py",
    "world.py.j2": "{module}/world.py",
    "actions.py.j2": "{module}/actions.py",
    "agent.py.j2": "{module}/agent.py",
    "policy.yaml.j2": "{module}/policy.yaml",
    "scenario.yaml.j2": "{module}/scenarios/first-orders.yaml",
    "test_pack.py.j2": "tests/test_{module}.py",
}


class ScaffoldProblem(ValueError):
    """Why a pack cannot be scaffolded there under that name (one line)."""


@dataclass(frozen=True, slots=True)
class PackNames:
    """Every name the templates use, derived from the pack's name (agent and action names are prefixed with it:
    they must be unique across every installed pack)."""

    name: str

    @property
    def module(self) -> str:
        return self.name

    @property
    def title(self) -> str:
        return self.name.replace("_", " ").strip().capitalize()

    @property
    def camel(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_") if part)

    def context(self) -> dict[str, str]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": f"coalition-pack-{self.name.replace('_', '-')}",
            "title": self.title,
            "agent": f"{self.name}_clerk",
            "agent_class": f"{self.camel}Clerk",
            "action": f"{self.name}_ship",
            "order_kind": f"{self.name}.order",
            "role": f"{self.name}_manager",
            "world_class": f"{self.camel}World",
            "scenario": f"{self.name}-first-orders",
        }


def check_name(name: str, installed: Catalog) -> PackNames:
    """The names of a new pack; ScaffoldProblem when NAME is not a lowercase identifier, is a pack already
    installed, or is a module Python already finds (the pack's package would shadow it, or be shadowed)."""
    if not NAME_PATTERN.match(name) or keyword.iskeyword(name):
        raise ScaffoldProblem(
            f"pack name {name!r} is not a lowercase Python identifier (letters, digits and _, starting with a "
            "letter, at most 40 characters): it names the pack's package"
        )
    names = PackNames(name)
    clash = {name, name.replace("_", "-")} & set(installed.packs)
    if clash:
        raise ScaffoldProblem(f"pack name {name!r} clashes with the installed pack {sorted(clash)[0]!r}")
    for taken in (names.context()["agent"], names.context()["action"]):
        if taken in installed.agents or taken in installed.actions:
            raise ScaffoldProblem(
                f"pack name {name!r}: {taken!r} is already declared by the pack {installed.pack_of[taken]!r}"
            )
    if importlib.util.find_spec(name) is not None:
        raise ScaffoldProblem(f"pack name {name!r} clashes with the importable module {name!r}; choose another")
    return names


def check_target(target: Path) -> None:
    """The target must be a new or empty directory."""
    if target.exists() and not target.is_dir():
        raise ScaffoldProblem(f"target {target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise ScaffoldProblem(f"target directory {target} is not empty")


def render(names: PackNames) -> dict[str, str]:
    """Every file of the new pack: relative path → text."""
    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)  # noqa: S701 (code, not HTML)
    folder = resources.files("coalition.cli").joinpath("pack_template")
    context = names.context()
    files: dict[str, str] = {}
    for template, path in FILES.items():
        text = folder.joinpath(template).read_text(encoding="utf-8")
        files[path.format(module=names.module)] = env.from_string(text).render(context)
    return files


def scaffold(name: str, target: Path, installed: Catalog) -> tuple[PackNames, list[Path]]:
    """Write the pack `name` into `target` (checked first: nothing is written on a problem)."""
    names = check_name(name, installed)
    check_target(target)
    files = render(names)
    written: list[Path] = []
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return names, written
