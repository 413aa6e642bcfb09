"""What the metrics handler costs a run: ``observability/run_metrics.py CallMetrics``
beside the usage tally, on the trivial graph in-process (no server, no I/O).

    .venv/bin/python bench/metrics_cost.py [--runs 500] [--rounds 10]

Alternates rounds of: the usage tally alone (what every run has), the tally and the
metrics handler, and prints µs per run (min and median over the rounds), A/B in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from graphs import trivial

from dockyard.observability.metrics import install
from dockyard.observability.run_metrics import CallLabels, CallMetrics
from dockyard.runtime.usage import Usage, UsageTally

METRICS = install(None)


def _handlers(kind: str) -> list[Any]:
    usage = Usage()
    out: list[Any] = [UsageTally(usage)]
    if kind == "tally+metrics":
        out.append(CallMetrics(METRICS, usage, CallLabels("", "trivial")))
    return out


async def _once(kind: str) -> None:
    config: dict[str, Any] = {"configurable": {}, "callbacks": _handlers(kind)}
    async for _ in trivial.astream({"n": 1}, config, stream_mode=["values"]):  # type: ignore[arg-type]
        pass


async def main(runs: int, rounds: int) -> None:
    kinds = ("tally", "tally+metrics")
    for _ in range(200):  # warm up imports and caches
        await _once("tally")
    per_run: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for kind in kinds:
            start = time.perf_counter()
            for _ in range(runs):
                await _once(kind)
            per_run[kind].append((time.perf_counter() - start) / runs * 1e6)
    for kind in kinds:
        samples = per_run[kind]
        print(
            f"{kind:>14}: min {min(samples):7.0f} µs/run   "
            f"median {statistics.median(samples):7.0f} µs/run"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.rounds))
