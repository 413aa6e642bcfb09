"""A dependency-free SVG bar chart of latency percentiles per scenario."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

SERIES: tuple[tuple[str, str], ...] = (
    ("p50", "#4c78a8"),
    ("p95", "#f58518"),
    ("p99", "#e45756"),
)


@dataclass(frozen=True, slots=True)
class ChartRow:
    """One scenario: its label and its p50/p95/p99 latency in milliseconds (None = no data)."""

    label: str
    p50: float | None
    p95: float | None
    p99: float | None

    def values(self) -> tuple[float | None, float | None, float | None]:
        return (self.p50, self.p95, self.p99)


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A 1/2/5 x 10^k tick step giving about ``target_ticks`` ticks over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(target_ticks, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * mag:
            return float(mult * mag)
    return float(10 * mag)  # pragma: no cover - loop always returns


def render_svg(rows: Sequence[ChartRow], title: str = "Latency percentiles (ms)") -> str:
    """Horizontal grouped bars: one group per row, one bar per percentile."""
    bar_h, bar_gap, group_gap = 12, 2, 14
    label_w, plot_w, right_pad = 260, 520, 60
    top, bottom = 56, 40
    group_h = len(SERIES) * (bar_h + bar_gap) - bar_gap
    plot_h = max(len(rows), 1) * (group_h + group_gap)
    width = label_w + plot_w + right_pad
    height = top + plot_h + bottom

    vmax = max((v for r in rows for v in r.values() if v is not None), default=0.0)
    step = nice_step(vmax)
    axis_max = max(step, math.ceil(vmax / step) * step)

    def x(value: float) -> float:
        return label_w + plot_w * value / axis_max

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2:.1f}" y="20" text-anchor="middle" font-size="14" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    # legend
    lx = label_w
    for name, color in SERIES:
        out.append(f'<rect class="legend" x="{lx}" y="30" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{lx + 14}" y="39">{name}</text>')
        lx += 60
    # grid + ticks
    n_ticks = round(axis_max / step)
    for i in range(n_ticks + 1):
        v = i * step
        gx = x(v)
        out.append(
            f'<line x1="{gx:.1f}" y1="{top - 4}" x2="{gx:.1f}" y2="{top + plot_h}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{gx:.1f}" y="{top + plot_h + 14}" text-anchor="middle">{v:g}</text>')
    out.append(
        f'<text x="{label_w + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">'
        "milliseconds</text>"
    )
    # bars
    for gi, row in enumerate(rows):
        gy = top + gi * (group_h + group_gap)
        out.append(
            f'<text x="{label_w - 8}" y="{gy + group_h / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(row.label)}</text>'
        )
        for si, ((name, color), value) in enumerate(zip(SERIES, row.values(), strict=True)):
            by = gy + si * (bar_h + bar_gap)
            if value is None:
                continue
            bw = x(value) - label_w
            out.append(
                f'<rect class="bar" data-series="{name}" data-value="{value:.3f}" '
                f'x="{label_w}" y="{by}" width="{bw:.2f}" height="{bar_h}" fill="{color}">'
                f"<title>{escape(row.label)} {name}: {value:.1f} ms</title></rect>"
            )
            out.append(
                f'<text x="{label_w + bw + 4:.1f}" y="{by + bar_h - 2}" font-size="10">'
                f"{value:.0f}</text>"
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(path: Path | str, rows: Sequence[ChartRow], title: str | None = None) -> Path:
    """Render and write the chart; returns the path written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    svg = render_svg(rows) if title is None else render_svg(rows, title)
    target.write_text(svg, encoding="utf-8")
    return target
