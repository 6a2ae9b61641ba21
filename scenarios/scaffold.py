"""`coalition scenario new NAME`: a valid, commented starting point for a new scenario file."""

from __future__ import annotations

import re
from pathlib import Path

from coalition.scenarios.errors import ScenariosError
from coalition.scenarios.spec import parse_scenario

TEMPLATE = """\
# A Coalition scenario (see docs/scenarios.md for every key). Validate with: coalition run {name}.yaml --bus memory
name: {name}
description: >-
  One paragraph: what happens to Helios, and what governance must show.
seed: 1
start: 2025-06-02
days: 10
world:
  cash_usd: 3000000
  daily_opex_usd: 800
  settlement: {{window: T+1, reserve_ratio: 0.1}}
  regions:
    - {{code: TX, name: Texas, status: allowed, active: true, base_price: 58, supply_mw: 180, demand_mw: 200,
       demand: 0.85, price_sensitivity: 0.6, regulatory_viability: 0.9}}
events:
  - day: 2
    kind: supply.shock
    subject: tx-heat-wave
    data: {{region: TX, supply_change_pct: -40, demand_change_pct: 25, cause: heat wave}}
board:
  default_on_timeout: deny
  decisions: []
expectations:
  - id: surge-price-denied
    description: A price above the surge cap is denied.
    count: {{match: {{kind: verdict, agent: finance, action: set_price, outcome: deny}}, min: 1}}
"""


class ScaffoldError(ScenariosError):
    """The scenario cannot be created (bad name, file exists)."""


def scaffold(name: str, directory: Path) -> Path:
    """Write `<directory>/<name>.yaml` from the template (validated before writing); refuses to overwrite."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise ScaffoldError(f"scenario name {name!r} must be a slug (a-z, 0-9, '.', '_', '-')")
    path = directory / f"{name}.yaml"
    if path.exists():
        raise ScaffoldError(f"{path} already exists")
    text = TEMPLATE.format(name=name)
    parse_scenario(text, file=path.name)
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
