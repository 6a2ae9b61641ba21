"""`coalition scenario new NAME`: a valid, commented starting point for a new scenario file, from the scenario
template its pack ships."""

from __future__ import annotations

import re
from pathlib import Path

from coalition.domain import load_pack
from coalition.scenarios.errors import ScenariosError
from coalition.scenarios.spec import parse_scenario


class ScaffoldError(ScenariosError):
    """The scenario cannot be created (bad name, file exists)."""


def scaffold(name: str, directory: Path, pack: str | None = None) -> Path:
    """Write `<directory>/<name>.yaml` from the scenario template of `pack` (the default pack when None), validated
    before writing; refuses to overwrite."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise ScaffoldError(f"scenario name {name!r} must be a slug (a-z, 0-9, '.', '_', '-')")
    path = directory / f"{name}.yaml"
    if path.exists():
        raise ScaffoldError(f"{path} already exists")
    chosen = load_pack(pack) if pack is not None else load_pack()
    if chosen.scenario_template is None:
        raise ScaffoldError(f"pack {chosen.name!r} ships no scenario template (its Pack's `scenario_template`)")
    text = chosen.scenario_template.read_text(encoding="utf-8").replace("__NAME__", name)
    parse_scenario(text, file=path.name)
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
