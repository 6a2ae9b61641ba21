"""What a run's pack declares for reports (coalition.domain.Reporting), and its world KPIs as declared (Kpi: label
and format), for reports and the console; a pack that declares none, or is not installed here, shows every KPI
labelled from its name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coalition.domain import DEFAULT_PACK, Kpi, Reporting, catalog


class _Parts(dict[str, Any]):
    """A KPI's parts for its format pattern: a missing part reads 0."""

    def __missing__(self, key: str) -> Any:
        return 0


def kpi_text(kpi: Kpi, value: Any) -> str:
    """The value as the KPI's pattern writes it: "—" when the run did not report it, yes/no for a flag."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    shown: Any = value
    if isinstance(value, Mapping):
        shown = _Parts(value)
    elif isinstance(value, str):
        try:
            shown = float(value)
        except ValueError:
            shown = value
    try:
        return kpi.format.format(value=shown)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return str(value)


def kpi_label(name: str) -> str:
    """An undeclared KPI's name as a label: credits_usd → Credits (USD), escalated_cases → Escalated cases."""
    unit = next((u for suffix, u in (("_usd", " (USD)"), ("_pct", " (%)")) if name.endswith(suffix)), "")
    words = name.removesuffix("_usd").removesuffix("_pct").replace("_", " ").strip()
    return f"{words[:1].upper()}{words[1:]}{unit}"


def _undeclared_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


_NOTHING = Reporting()


def reporting_of(pack: str | None) -> Reporting:
    """What the run's pack declares for reports (nothing when it is not installed here)."""
    found = catalog().packs.get(pack or DEFAULT_PACK)
    return found.reporting if found is not None else _NOTHING


def declared_kpis(pack: str | None) -> tuple[Kpi, ...]:
    """The KPIs the run's pack declares (none when it declares none or is not installed)."""
    return reporting_of(pack).kpis


def world_kpis(pack: str | None, kpis: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) of each KPI the pack declares, in its order; every reported KPI when it declares none."""
    declared = declared_kpis(pack)
    if declared:
        return [(k.label, kpi_text(k, kpis.get(k.key))) for k in declared]
    return [(kpi_label(name), _undeclared_text(value)) for name, value in kpis.items()]
