"""Small server-rendered SVG line charts, so a run's charts show without JavaScript or a CDN."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = ("#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2")
MARKER_COLOURS = {"deny": "#dc2626", "escalate": "#d97706"}
_W, _H, _PAD = 640, 200, 36


def line_chart(
    title: str,
    lines: Sequence[tuple[str, Sequence[tuple[int, float]]]],
    *,
    markers: Sequence[tuple[int, str, str]] = (),
    band: tuple[Sequence[tuple[int, float]], Sequence[tuple[int, float]]] | None = None,
    unit: str = "",
) -> Markup:
    """An accessible SVG: one polyline per series, an optional shaded band, vertical decision markers."""
    points = [p for _, pts in lines for p in pts]
    if band is not None:
        points += list(band[0]) + list(band[1])
    if not points:
        return Markup('<p class="muted">{} — no data yet.</p>').format(title)
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    x_hi, y_hi = (x_hi if x_hi > x_lo else x_lo + 1), (y_hi if y_hi > y_lo else y_lo + 1)

    def x(v: float) -> float:
        return _PAD + (v - x_lo) * (_W - 2 * _PAD) / (x_hi - x_lo)

    def y(v: float) -> float:
        return _H - _PAD + (v - y_lo) * -(_H - 2 * _PAD) / (y_hi - y_lo)

    parts = [
        f'<svg viewBox="0 0 {_W} {_H}" class="chart" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_PAD}" y="16" class="chart-title">{escape(title)}</text>',
        f'<text x="2" y="{_PAD}" class="axis">{y_hi:,.0f}{escape(unit)}</text>',
        f'<text x="2" y="{_H - _PAD}" class="axis">{y_lo:,.0f}{escape(unit)}</text>',
        f'<text x="{_PAD}" y="{_H - 8}" class="axis">day {x_lo}</text>',
        f'<text x="{_W - _PAD - 40}" y="{_H - 8}" class="axis">day {x_hi}</text>',
    ]
    if band is not None and band[0] and band[1]:
        outline = [*band[1], *reversed(band[0])]
        coords = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in outline)
        parts.append(f'<polygon points="{coords}" class="band"><title>allowed price band</title></polygon>')
    for day, outcome, label in markers:
        colour = MARKER_COLOURS.get(outcome, "#6b7280")
        parts.append(
            f'<line x1="{x(day):.1f}" x2="{x(day):.1f}" y1="{_PAD}" y2="{_H - _PAD}" stroke="{colour}" '
            f'class="marker"><title>day {day}: {escape(label)}</title></line>'
        )
    legend_x = _PAD + 140
    for i, (name, pts) in enumerate(lines):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in pts)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{legend_x + 80 * i}" y="16" fill="{colour}" class="legend">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text interpolated above went through escape()
