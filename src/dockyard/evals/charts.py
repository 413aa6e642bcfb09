"""The report's charts as PNG files, drawn by matplotlib (the ``evals`` extra) with the
Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dockyard.evals.html import BINS, COLORS
from dockyard.extras import require_extra


def write_pngs(report: dict[str, Any], out: Path) -> list[Path]:
    """``scores.png``, ``latency.png`` and ``cost.png`` in ``out``; ``ConfigError`` naming
    the extra to install when matplotlib is missing."""
    require_extra("evals", "PNG charts of an eval report (--png)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v["name"] for v in report["variants"]]
    written: list[Path] = []

    fig, ax = plt.subplots(figsize=(7, 3.5))
    scores = [
        [
            item["variants"][name]["score"]
            for item in report["items"]
            if name in item["variants"] and item["variants"][name]["score"] is not None
        ]
        for name in variants
    ]
    ax.hist(scores, bins=BINS, range=(0, 1), label=variants, color=COLORS[: len(variants)])
    ax.set_xlabel("score")
    ax.set_ylabel("items")
    ax.set_title("Score distribution")
    ax.legend()
    written.append(_save(fig, out / "scores.png", plt))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ids = [item["id"] for item in report["items"]]
    width = 0.8 / max(len(variants), 1)
    for j, name in enumerate(variants):
        values = [
            (item["variants"].get(name) or {}).get("latency_ms") or 0 for item in report["items"]
        ]
        ax.bar(
            [i + j * width for i in range(len(ids))],
            values,
            width,
            label=name,
            color=COLORS[j % len(COLORS)],
        )
    ax.set_xticks(
        [i + width * (len(variants) - 1) / 2 for i in range(len(ids))], ids, rotation=45, fontsize=7
    )
    ax.set_ylabel("latency ms")
    ax.set_title("Latency per item")
    ax.legend()
    written.append(_save(fig, out / "latency.png", plt))

    fig, ax = plt.subplots(figsize=(4, 3.5))
    costs = [v["cost_usd"] or 0.0 for v in report["variants"]]
    ax.bar(variants, costs, color=COLORS[: len(variants)])
    ax.set_ylabel("USD")
    ax.set_title("Cost per variant")
    written.append(_save(fig, out / "cost.png", plt))
    return written


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
