"""The values of a declared chart (coalition.domain.Chart) over a run's daily snapshots: one list per drawn line,
day by day, None where a day has no value. The report's plotly figures and the console's SVG charts both draw
these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coalition.domain import Chart, Line

Values = list[float | None]


@dataclass(frozen=True, slots=True)
class Drawn:
    """One line as drawn: its name in the legend, its declaration and its value on each day."""

    name: str
    line: Line
    values: Values


@dataclass(frozen=True, slots=True)
class ChartValues:
    """A chart's lines (declared order; a `*` line's keys in sorted order, the lines over one collection drawn key
    by key) and its band's lower and upper values."""

    chart: Chart
    lines: list[Drawn]
    band: tuple[Drawn, Drawn] | None


def at(data: Any, path: str) -> Any:
    """The value at a dotted path (None where there is none)."""
    for part in path.split(".") if path else ():
        data = data.get(part) if isinstance(data, Mapping) else None
    return data


def number(value: Any) -> float | None:
    """A snapshot's value as a number (a flag counts 1), None when it is none."""
    if value is None or isinstance(value, (Mapping, list)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _items(data: Any) -> list[tuple[str, Any]]:
    if isinstance(data, Mapping):
        return sorted((str(k), v) for k, v in data.items())
    if isinstance(data, list):
        return [(str(i), v) for i, v in enumerate(data)]
    return []


def _found(data: Any, parts: Sequence[str]) -> list[Any]:
    """Every value a path with `*` segments reaches."""
    if not parts:
        return [data]
    head, rest = parts[0], parts[1:]
    if head == "*":
        return [v for _, item in _items(data) for v in _found(item, rest)]
    return _found(data.get(head) if isinstance(data, Mapping) else None, rest)


def _folded(line: Line, data: Mapping[str, Any]) -> float | None:
    found = _found(data, line.path.split("."))
    if line.reduce == "count":
        return float(sum(1 for v in found if v is not None))
    values = [n for n in (number(v) for v in found) if n is not None]
    if not values:
        return None
    total = sum(values)
    return total / len(values) if line.reduce == "mean" else total


def _finish(line: Line, value: float | None, data: Mapping[str, Any]) -> float | None:
    if value is None:
        return None
    if line.unless and not number(at(data, line.unless)):
        return None
    if line.plus_pct:
        return value * (1 + (number(at(data, line.plus_pct)) or 0) / 100)
    return value


def _split(path: str) -> tuple[str, str]:
    head, _, tail = path.partition(".*.")
    return head, tail


def _kept(data: Mapping[str, Any], line: Line) -> dict[str, Any]:
    """A `*` line's keys on one day and what each holds (only those its `only` list names, when it has one)."""
    head, _ = _split(line.path)
    keep = at(data, line.only) if line.only else None
    return {k: v for k, v in _items(at(data, head)) if keep is None or (isinstance(keep, list) and k in keep)}


def _name(line: Line, key: str) -> str:
    return line.label.format(key=key) if "{key}" in line.label else f"{line.label} {key}".strip()


def _starred(line: Line) -> bool:
    return ".*." in line.path and not line.reduce


def _one(line: Line, days: Sequence[Mapping[str, Any]]) -> Drawn:
    if line.reduce:
        return Drawn(line.label, line, [_finish(line, _folded(line, d), d) for d in days])
    return Drawn(line.label, line, [_finish(line, number(at(d, line.path)), d) for d in days])


def _groups(lines: Sequence[Line]) -> list[list[Line]]:
    """Consecutive `*` lines over one collection form a group (drawn key by key); every other line is alone."""
    groups: list[list[Line]] = []
    for line in lines:
        last = groups[-1][-1] if groups else None
        if last is not None and _starred(line) and _starred(last) and _split(line.path)[0] == _split(last.path)[0]:
            groups[-1].append(line)
        else:
            groups.append([line])
    return groups


def chart_values(chart: Chart, days: Sequence[Mapping[str, Any]]) -> ChartValues:
    """The chart's lines over the snapshots' data, in day order."""
    drawn: list[Drawn] = []
    for group in _groups(chart.lines):
        if not _starred(group[0]):
            drawn.append(_one(group[0], days))
            continue
        kept = [_kept(d, group[0]) for d in days]
        for key in sorted({k for found in kept for k in found}):
            for line in group:
                _, tail = _split(line.path)
                values = [
                    _finish(line, number(at(found[key], tail)), d) if key in found else None
                    for found, d in zip(kept, days, strict=True)
                ]
                drawn.append(Drawn(_name(line, key), line, values))
    band = (_one(chart.band[0], days), _one(chart.band[1], days)) if chart.band is not None else None
    return ChartValues(chart, drawn, band)
