"""Server-side inline SVG charts with an accessible <title>/<desc>. No JavaScript."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe


def bar_chart(
    items: Sequence[tuple[str, float]], *, title: str, unit: str = "", width: int = 480, css_class: str = "bar"
) -> SafeString:
    """Horizontal bars, one row per (label, value)."""
    row, label_w, pad = 24, 150, 50
    height = max(row * len(items), row)
    top = max((v for _, v in items), default=0) or 1
    bar_space = width - label_w - pad
    desc = "; ".join(f"{label}: {value:g}{unit}" for label, value in items) or "no data"
    parts = [
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="svg-t-{id(items)} svg-d-{id(items)}">',
        f'<title id="svg-t-{id(items)}">{escape(title)}</title><desc id="svg-d-{id(items)}">{escape(desc)}</desc>',
    ]
    for index, (label, value) in enumerate(items):
        y = index * row
        w = max(bar_space * value / top, 1 if value else 0)
        parts.append(f'<text x="0" y="{y + 16}">{escape(str(label))[:24]}</text>')
        parts.append(f'<rect class="{css_class}" x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" rx="3"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 16}">{value:g}{escape(unit)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def sparkline(values: Sequence[float], *, title: str, width: int = 240, height: int = 40) -> SafeString:
    n = len(values)
    top = max(values, default=0) or 1
    if n < 2:
        points = f"0,{height} {width},{height}"
    else:
        step = width / (n - 1)
        points = " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values))
    desc = ", ".join(f"{v:g}" for v in values) or "no data"
    return mark_safe(
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title><desc>{escape(desc)}</desc>'
        f'<polyline fill="none" stroke="#1d4ed8" stroke-width="2" points="{points}"/></svg>'
    )
