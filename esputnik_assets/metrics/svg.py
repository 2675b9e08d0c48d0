"""Hand-written SVG charts for the KPI dashboard: lines over days, bars by category; no script, no library.

Why not a charting library: the page must open offline, so a library's script would be inlined into every page.
plotly.js is about 3.5 MB minified, Vega-Lite with Vega about 1 MB, ECharts about 1 MB, Chart.js about 200 KB and
uPlot about 50 KB; none is installed (each would be vendored into the package) and this page draws four kinds of
simple chart (lines over 90 days, bars, a histogram) that fit in some 150 lines of SVG. Rendered server-side the
page has no script at all, so it cannot fail in the browser and weighs tens of KB; hovering a point shows its value
through SVG <title>.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 56, 12, 28  # room for the axes' labels
FLAG_COLOUR = "#d62728"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

Format = Callable[[float], str]


def percent(value: float) -> str:
    return f"{value:.1%}"


def number(value: float) -> str:
    return f"{value:,.0f}"


@dataclass(frozen=True)
class Series:
    """One line: a value per day (None = no value that day), drawn dashed for a baseline."""

    name: str
    values: dict[date, float | None]
    colour: str
    dashed: bool = False


def _nice_max(value: float) -> float:
    """An axis top a little above `value`: 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value * 1.05))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value * 1.05)


def _frame(y_max: float, fmt: Format, days: Sequence[date], right: tuple[float, Format] | None = None) -> list[str]:
    """The axes: four horizontal grid lines with their labels, the first and last day (and a right axis)."""
    parts, plot_h = [], HEIGHT - TOP - BOTTOM
    for i in range(5):
        y = TOP + plot_h * (1 - i / 4)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(y_max * i / 4))}</text>')
        if right:
            parts.append(f'<text x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}">{escape(right[1](right[0] * i / 4))}</text>')
    if days:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT - 8}">{days[0].isoformat()}</text>')
        parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{days[-1].isoformat()}</text>')
    return parts


def _x(days: Sequence[date], day: date) -> float:
    span = max((days[-1] - days[0]).days, 1)
    return LEFT + (WIDTH - LEFT - RIGHT) * (day - days[0]).days / span


def _y(value: float, y_max: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - min(value, y_max) / y_max)


def _svg(label: str, parts: Sequence[str]) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )


def _legend(series: Sequence[tuple[str, str, bool]]) -> str:
    items = "".join(
        f'<span class="key"><svg width="18" height="8"><line x1="0" x2="18" y1="4" y2="4" stroke="{c}" '
        f'stroke-width="2"{" stroke-dasharray=&quot;4 3&quot;" if dashed else ""}/></svg>{escape(n)}</span>'
        for n, c, dashed in series
    )
    return f'<div class="legend">{items}</div>'


def _flags(days: Sequence[date], flagged: dict[date, str]) -> list[str]:
    """A red band on each flagged day of the window, its reason as the tooltip."""
    return [
        f'<rect class="flag" x="{_x(days, d) - 3:.1f}" y="{TOP}" width="6" height="{HEIGHT - TOP - BOTTOM}" '
        f'fill="{FLAG_COLOUR}" fill-opacity="0.25"><title>{escape(f"{d}: {why}")}</title></rect>'
        for d, why in sorted(flagged.items())
        if days and days[0] <= d <= days[-1]
    ]


def _line_parts(days: Sequence[date], s: Series, fmt: Format, top: float) -> list[str]:
    """One series as polylines (broken where a value is None), each point of a solid line with its value as tooltip."""
    parts, runs = [], [[]]  # type: ignore[var-annotated]
    for day in days:
        value = s.values.get(day)
        if value is None:
            runs.append([])
            continue
        x, y = _x(days, day), _y(value, top)
        runs[-1].append((x, y))
        if not s.dashed:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{s.colour}">'
                         f'<title>{escape(f"{s.name} {day}: {fmt(value)}")}</title></circle>')  # fmt: skip
    dash = ' stroke-dasharray="4 3"' if s.dashed else ""
    for run in runs:
        if len(run) > 1:
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{s.colour}" stroke-width="1.6"{dash}/>')
    return parts


def line_chart(
    label: str, days: Sequence[date], series: Sequence[Series], fmt: Format, flagged: dict[date, str] | None = None,
    y_max: float | None = None,
) -> str:  # fmt: skip
    """Lines over `days`, flagged days as red bands behind them; above `y_max` a line is clipped (its tooltip still
    tells the value). Dashed lines (baselines) share one legend key."""
    top = y_max or _nice_max(max((v for s in series for v in s.values.values() if v is not None), default=0.0))
    parts = _frame(top, fmt, days) + _flags(days, flagged or {})
    for s in series:
        parts += _line_parts(days, s, fmt, top)
    keys = [(s.name, s.colour, False) for s in series if not s.dashed]
    keys += [("previous 7 days", "#555", True)] if any(s.dashed for s in series) else []
    return _legend(keys) + _svg(label, parts)


def bars_and_line(
    label: str, days: Sequence[date], bars: Series, line: Series, bar_fmt: Format, line_fmt: Format,
    flagged: dict[date, str] | None = None,
) -> str:  # fmt: skip
    """Bars over days on the left axis and a line on the right axis (e.g. revenue and the attributed share)."""
    bar_top = _nice_max(max((v for v in bars.values.values() if v is not None), default=0.0))
    line_top = _nice_max(max((v for v in line.values.values() if v is not None), default=0.0))
    parts = _frame(bar_top, bar_fmt, days, (line_top, line_fmt)) + _flags(days, flagged or {})
    width = max(2.0, (WIDTH - LEFT - RIGHT) / max(len(days), 1) * 0.7)
    for day in days:
        value = bars.values.get(day)
        if value is not None:
            y = _y(value, bar_top)
            parts.append(
                f'<rect x="{_x(days, day) - width / 2:.1f}" y="{y:.1f}" width="{width:.1f}" '
                f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{bars.colour}">'
                f'<title>{escape(f"{bars.name} {day}: {bar_fmt(value)}")}</title></rect>'
            )
    parts += _line_parts(days, line, line_fmt, line_top)
    return _legend([(bars.name, bars.colour, False), (line.name, line.colour, False)]) + _svg(label, parts)


def bar_chart(
    label: str, categories: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]], fmt: Format
) -> str:
    """Horizontal bars: a group per category, a bar per series (name, colour, one value per category)."""
    row_h, bar_h, left = 6 + 10 * len(series), 9, 220
    height = TOP + BOTTOM + row_h * max(len(categories), 1)
    top = _nice_max(max((v for _, _, values in series for v in values), default=0.0))
    parts = []
    for i in range(5):
        x = left + (WIDTH - left - 16) * i / 4
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{height - BOTTOM}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">{escape(fmt(top * i / 4))}</text>')
    for row, category in enumerate(categories):
        y0 = TOP + row * row_h
        parts.append(f'<text x="{left - 6}" y="{y0 + row_h / 2 + 4:.1f}" text-anchor="end">{escape(category)}</text>')
        for k, (name, colour, values) in enumerate(series):
            parts.append(
                f'<rect x="{left}" y="{y0 + 3 + k * 10:.1f}" width="{(WIDTH - left - 16) * values[row] / top:.1f}" '
                f'height="{bar_h}" fill="{colour}"><title>{escape(f"{category}: {name} {fmt(values[row])}")}</title>'
                "</rect>"
            )
    svg = (
        f'<svg viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
        f'aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )
    return _legend([(name, colour, False) for name, colour, _ in series]) + svg
