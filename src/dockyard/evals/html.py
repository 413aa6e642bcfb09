"""The report as one self-contained HTML page: inline CSS and SVG charts, no script, no
network (it opens from a file, a CI artifact or an e-mail attachment alike)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from typing import Any

from dockyard.evals.report import comparison_sentence, fmt, variant_label

COLORS = ("#2563eb", "#ea580c", "#16a34a", "#9333ea")
BINS = 10

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#111}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555}.charts{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}
table{border-collapse:collapse;width:100%;margin-top:8px}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.err{color:#b91c1c}.reasons{color:#555;font-size:12px}.cmp{background:#f0f9ff;padding:8px;
border-left:4px solid #2563eb}.legend span{display:inline-block;margin-right:12px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
pre{white-space:pre-wrap;margin:0;font:12px/1.4 ui-monospace,monospace;max-height:12em;
overflow:auto}
"""


def bar_chart(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    width: int = 560,
    height: int = 240,
    y_label: str = "",
    y_format: str = ".2g",
) -> str:
    """Grouped bars: one group per category, one bar per series, as an SVG element."""
    left, bottom, top, right = 56, 48, 12, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for _, vs in series for v in vs if v is not None), default=0.0) or 1.0
    if y_format == ".0f":  # counts: whole numbers on the four grid lines
        peak = max(4.0, math.ceil(peak / 4) * 4)
    group_w = plot_w / max(len(categories), 1)
    bar_w = max(1.0, group_w * 0.8 / max(len(series), 1))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{format(value, y_format)}</text>"
        )
    for i, category in enumerate(categories):
        x0 = left + group_w * i + group_w * 0.1
        for j, (name, values) in enumerate(series):
            given = values[i]
            if given is None:
                continue
            h = plot_h * given / peak
            x = x0 + bar_w * j
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[j % len(COLORS)]}">'
                f"<title>{escape(name)} · {escape(category)}: "
                f"{format(given, y_format)}</title></rect>"
            )
        if len(categories) <= 24:
            parts.append(
                f'<text x="{left + group_w * (i + 0.5):.1f}" y="{height - bottom + 14}" '
                f'font-size="10" text-anchor="middle">{escape(category[:10])}</text>'
            )
    parts.append(
        f'<text x="12" y="{top + plot_h / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.0f})">{escape(y_label)}</text>'
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#9ca3af"/>'
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        'stroke="#9ca3af"/></svg>'
    )
    return "".join(parts)


def score_histogram(report: dict[str, Any]) -> str:
    labels = [f"{b / BINS:.1f}-{(b + 1) / BINS:.1f}" for b in range(BINS)]
    series = []
    for v in report["variants"]:
        counts = [0.0] * BINS
        for item in report["items"]:
            r = item["variants"].get(v["name"])
            if r is not None and r["score"] is not None:
                counts[min(BINS - 1, int(r["score"] * BINS))] += 1
        series.append((v["name"], counts))
    return bar_chart(labels, series, y_label="items", y_format=".0f")


def latency_chart(report: dict[str, Any]) -> str:
    ids = [item["id"] for item in report["items"]]
    series = [
        (
            v["name"],
            [(item["variants"].get(v["name"]) or {}).get("latency_ms") for item in report["items"]],
        )
        for v in report["variants"]
    ]
    return bar_chart(ids, series, y_label="latency ms", y_format=".0f")


def cost_chart(report: dict[str, Any]) -> str:
    names = [v["name"] for v in report["variants"]]
    costs = [v["cost_usd"] for v in report["variants"]]
    tokens = [float(v["tokens"]["input"] + v["tokens"]["output"]) for v in report["variants"]]
    return bar_chart(names, [("cost USD", costs)], width=280, y_label="USD", y_format=".2g") + (
        bar_chart(names, [("tokens", tokens)], width=280, y_label="tokens", y_format=".0f")
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)


def report_html(report: dict[str, Any]) -> str:
    e = report["experiment"]
    variants = report["variants"]
    legend = "".join(
        f'<span><i class="swatch" style="background:{COLORS[i % len(COLORS)]}"></i>'
        f"{escape(v['name'])}</span>"
        for i, v in enumerate(variants)
    )
    rows = []
    for v in variants:
        rows.append(
            "<tr>"
            f"<td>{escape(v['name'])}</td>"
            f"<td>{escape(variant_label(v))}</td>"
            f'<td class="num">{fmt(v["score"]["mean"])}</td>'
            f'<td class="num">{fmt(v["score"]["median"])}</td>'
            f'<td class="num">{fmt(v["pass_rate"], ".0%")}</td>'
            f'<td class="num">{v["errors"]}</td>'
            f'<td class="num">{fmt(v["latency_ms"]["p50"], ".0f")}</td>'
            f'<td class="num">{fmt(v["latency_ms"]["p95"], ".0f")}</td>'
            f'<td class="num">{v["tokens"]["input"]} / {v["tokens"]["output"]}</td>'
            f'<td class="num">{fmt(v["cost_usd"], ".6f")}</td>'
            + "".join(f'<td class="num">{fmt(x)}</td>' for x in v["scorers"].values())
            + "</tr>"
        )
    scorer_heads = "".join(
        f"<th>{escape(s)}</th>" for s in (variants[0]["scorers"] if variants else {})
    )
    items = []
    for item in report["items"]:
        cells = []
        for v in variants:
            r = item["variants"].get(v["name"]) or {}
            if r.get("error"):
                answer = f'<span class="err">{escape(r["error"])}</span>'
            else:
                answer = f"<pre>{escape(_text(r.get('output') or ''))}</pre>"
            reasons = "<br>".join(escape(x) for x in r.get("reasons") or [])
            cells.append(
                f"<td>{answer}<div class='reasons'>{reasons}</div></td>"
                f'<td class="num">{fmt(r.get("score"))}</td>'
                f'<td class="num">{fmt(r.get("latency_ms"), ".0f")}</td>'
            )
        items.append(
            f"<tr><td>{escape(item['id'])}</td><td><pre>{escape(_text(item['input']))}</pre></td>"
            f"<td><pre>{escape(_text(item['expected'] if item['expected'] is not None else ''))}"
            f"</pre></td>{''.join(cells)}</tr>"
        )
    item_heads = "".join(
        f"<th>{escape(v['name'])} answer</th><th>score</th><th>ms</th>" for v in variants
    )
    comparison = (
        f'<h2>Comparison</h2><p class="cmp">{escape(comparison_sentence(report["comparison"]))}</p>'
        if report["comparison"]
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Evaluation {escape(e["name"])}</title><style>{CSS}</style></head>
<body>
<h1>Evaluation {escape(e["name"])}</h1>
<p class="meta">experiment {escape(e["id"])} · assistant {escape(e["assistant"])} ·
dataset {escape(e["dataset"])} ({e["items"]} items) · {escape(e["created_at"] or "")}</p>
<h2>Summary</h2>
<table><thead><tr><th>variant</th><th>runs with</th><th>mean</th><th>median</th>
<th>pass rate (≥ {e["pass_mark"]})</th><th>errors</th><th>p50 ms</th><th>p95 ms</th>
<th>tokens in / out</th><th>cost USD</th>{scorer_heads}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
{comparison}
<h2>Charts</h2><p class="legend">{legend}</p>
<div class="charts">
<figure><figcaption>Score distribution</figcaption>{score_histogram(report)}</figure>
<figure><figcaption>Latency per item</figcaption>{latency_chart(report)}</figure>
<figure><figcaption>Cost and tokens per variant</figcaption>{cost_chart(report)}</figure>
</div>
<h2>Items</h2>
<table><thead><tr><th>id</th><th>input</th><th>expected</th>{item_heads}</tr></thead>
<tbody>{"".join(items)}</tbody></table>
</body></html>
"""
