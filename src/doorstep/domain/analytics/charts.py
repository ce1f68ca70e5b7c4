"""Charts as inline SVG, drawn on the server: no script, no asset from anywhere, and only
presentation attributes (no ``style``), so they pass the console's strict CSP and work in a
report opened from disk.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a text value beside every bar, so
a screen reader (and a printout) gets the figures, not just shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH = 640
LABEL_W = 170
VALUE_W = 90
ROW_H = 24
BAR_H = 14
PAD = 8
HEAD = 24  # the visible title's line
INK = "#1F2933"
MUTED = "#52606D"
GRID = "#CBD2D9"
COLOURS = ("#0B6E4F", "#2F5DA8", "#A23B72", "#8A5A00")


def fmt(value: float | None, unit: str) -> str:
    """A figure as shown beside a bar: ``"96.5 %"`` for shares, ``"3.2 min"``, or a dash."""
    if value is None:
        return "–"  # noqa: RUF001 (an en dash: no data)
    if unit == "%":
        return f"{value * 100:.1f} %"
    if unit == "min":
        return f"{value:.1f} min"
    if unit == "km":
        return f"{value:.1f} km"
    return f"{value:g}"


def bar_chart(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float | None]],
    *,
    unit: str = "",
    max_value: float | None = None,
    colour: str = COLOURS[0],
) -> Markup:
    """Horizontal bars, one per ``(label, value)``; ``None`` draws no bar and shows a dash.
    ``unit`` ``"%"`` takes shares in [0, 1] and scales to 100 %. ``chart_id`` must be unique
    in the page (its title's id derives from it)."""
    top = max_value if max_value is not None else 1.0 if unit == "%" else 0.0
    if max_value is None and unit != "%":
        top = max((v for _, v in bars if v is not None), default=0.0)
    top = top or 1.0
    plot_w = WIDTH - LABEL_W - VALUE_W
    height = HEAD + PAD * 2 + ROW_H * max(len(bars), 1)
    parts = [
        f'<svg class="chart" role="img" '
        f'aria-labelledby="{chart_id}-t" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" font-family="system-ui, sans-serif" font-size="12">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<text x="{PAD}" y="{PAD + 12}" font-weight="600" font-size="13" fill="{INK}">'
        f"{escape(title)}</text>",
        f'<line x1="{LABEL_W}" y1="{HEAD + PAD}" x2="{LABEL_W}" y2="{height - PAD}" '
        f'stroke="{GRID}" stroke-width="1"/>',
    ]
    if not bars:
        parts.append(
            f'<text x="{LABEL_W + 8}" y="{HEAD + PAD + ROW_H / 2 + 4}" fill="{MUTED}">'
            "No data</text>"
        )
    for i, (label, value) in enumerate(bars):
        y = HEAD + PAD + i * ROW_H
        short = label if len(label) <= 24 else label[:23] + "…"
        parts.append(
            f'<text x="{LABEL_W - 8}" y="{y + ROW_H / 2 + 4}" text-anchor="end" '
            f'fill="{INK}">{escape(short)}</text>'
        )
        if value is not None:
            w = max(0.0, min(1.0, value / top)) * plot_w
            parts.append(
                f'<rect x="{LABEL_W}" y="{y + (ROW_H - BAR_H) / 2}" width="{w:.1f}" '
                f'height="{BAR_H}" fill="{colour}"/>'
            )
            value_x = LABEL_W + w + 6
        else:
            value_x = LABEL_W + 6
        parts.append(
            f'<text x="{value_x:.1f}" y="{y + ROW_H / 2 + 4}" fill="{INK}">'
            f"{escape(fmt(value, unit))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above is escaped)
