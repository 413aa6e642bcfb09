"""Chart latency against offered load from ``agent_server_bench.py --rate R --json F`` runs.

    python bench/rate_chart.py /tmp/r100.json /tmp/r150.json --scenario stream \\
        --metric first_event --out docs/perf-rate.svg

One bar group per run, labelled with its rate (runs sorted by rate; several runs at one
rate are kept side by side, so the spread between repeats shows).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from chart import ChartRow, write_svg

METRICS = ("first_event", "latency", "first_data")


def rows_of(runs: list[dict[str, Any]], scenario: str, metric: str) -> list[ChartRow]:
    """One row per run's scenario whose name contains ``scenario``, by rate then file order.
    Runs made with different ``--client`` kinds say theirs in their labels."""
    found: list[tuple[float, int, ChartRow]] = []
    kinds = {run["meta"]["spec"].get("client", "sdk") for run in runs}
    for order, run in enumerate(runs):
        rate = run["meta"]["spec"].get("rate")
        client = f", {run['meta']['spec'].get('client', 'sdk')} client" if len(kinds) > 1 else ""
        if rate is None:
            raise ValueError("a run without --rate (closed loop) has no offered load to chart")
        for sc in run["scenarios"]:
            if scenario not in sc["name"]:
                continue
            p = sc["summary"][metric]
            ms = [None if p[k] is None else p[k] * 1000.0 for k in ("p50", "p95", "p99")]
            label = f"{rate:g}/s offered, {sc['summary']['runs_per_s']:.0f}/s done{client}"
            found.append((float(rate), order, ChartRow(label, *ms)))
    return [row for _, _, row in sorted(found, key=lambda t: (t[0], t[1]))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="rate_chart", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="--json files of --rate runs")
    p.add_argument("--scenario", default="", help="only scenarios whose name contains this")
    p.add_argument("--metric", choices=METRICS, default="first_event")
    p.add_argument("--title", default=None)
    p.add_argument("--out", type=Path, required=True, help="SVG to write")
    args = p.parse_args(argv)
    runs = [json.loads(f.read_text()) for f in args.runs]
    try:
        rows = rows_of(runs, args.scenario, args.metric)
    except ValueError as exc:
        p.error(str(exc))
    if not rows:
        p.error(f"no scenario matches {args.scenario!r}")
    names = sorted(
        {sc["name"] for run in runs for sc in run["scenarios"] if args.scenario in sc["name"]}
    )
    what = args.metric.replace("_", " ")
    title = args.title or f"{', '.join(names)}: {what} (ms) by offered load (runs/s)"
    print(write_svg(args.out, rows, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
