"""What a LangChain callback handler on a run's config costs the trivial graph.

    .venv/bin/python bench/callback_cost.py [--runs 500] [--rounds 10]

Streams bench/graphs.py's ``trivial`` graph in-process, alternating rounds without and
with dockyard's usage counter (``runtime/usage.py UsageTally``) in the config, and prints
µs per run (min and median over the rounds). The handler ignores chain events, yet its
presence makes LangChain and LangGraph build and dispatch to callback managers for every
node; dockyard adds it to every run (usage and cost of every model call).
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

from dockyard.runtime.usage import Usage, UsageTally


async def _once(with_handler: bool) -> None:
    config: dict[str, Any] = {"configurable": {}}
    if with_handler:
        config["callbacks"] = [UsageTally(Usage())]
    async for _ in trivial.astream({"n": 1}, config, stream_mode=["values"]):  # type: ignore[arg-type]
        pass


async def main(runs: int, rounds: int) -> None:
    for _ in range(200):  # warm up imports and caches
        await _once(False)
    per_run: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for with_handler in (False, True):
            start = time.perf_counter()
            for _ in range(runs):
                await _once(with_handler)
            per_run[with_handler].append((time.perf_counter() - start) / runs * 1e6)
    for with_handler, label in ((False, "no handler"), (True, "UsageTally")):
        samples = per_run[with_handler]
        print(
            f"{label:>10}: min {min(samples):7.0f} µs/run   "
            f"median {statistics.median(samples):7.0f} µs/run"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.rounds))
