"""What a rollout costs a run, and how long a rollback takes to reach new runs
(docs/rollouts.md; docs/perf.md, "Rollouts").

    .venv/bin/python bench/rollout_bench.py [--runs 20000] [--trials 5]

Assignment (in process): ``rollouts.assign`` for a new run's spec, as the run service's
admission calls it, timed over ``--runs`` specs of distinct users: with no rollout in the
process, with a rollout on another assistant, and on the run's own assistant (hash,
metadata, ``configurable``).

Rollback (a live server on SQLite, the test project of tests/rollouts/, the rollout
checked every 0.2 s): five low candidate scores are written, then the time until the
rollout is ``rolled_back`` in the database and until a new run of a named candidate user
is served the stable prompt, ``--trials`` times (the rollout is started again between
trials). The checking process's own board is refreshed at once; any other process sees the
state at its next one-second refresh.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_summary  # noqa: E402

from dockyard.rollouts import RolloutBoard, assign  # noqa: E402
from dockyard.run_spec import RunSpec  # noqa: E402
from dockyard.settings import RolloutConfig  # noqa: E402
from dockyard.storage.rollouts import RolloutRecord  # noqa: E402


def assignment(runs: int) -> list[tuple[str, float]]:
    definition = RolloutConfig.model_validate(
        {"assistant": "support", "candidate": {"prompt": "ticket-summary@4"}, "share": 0.5}
    ).model_dump(mode="json")
    board = RolloutBoard(store=None)  # type: ignore[arg-type]
    board.install([RolloutRecord("r", "support", definition, "config", "active", None, None)])
    empty = RolloutBoard(store=None)  # type: ignore[arg-type]
    specs = [RunSpec(assistant_id="a", metadata={"user_id": f"u{i}"}) for i in range(runs)]
    out = []
    for name, b, target in (
        ("no rollout", empty, "support"),
        ("a rollout on another assistant", board, "billing"),
        ("a rollout on the run's assistant", board, "support"),
    ):
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for spec in specs:
                assign(b, spec, target, "graph", None)
            best = min(best, (time.perf_counter() - t) / runs * 1e6)
        out.append((name, best))
    return out


def rollback(trials: int) -> list[tuple[float, float]]:
    from langgraph_sdk import get_client
    from tests.conftest import LiveServer

    from dockyard.prompts import Draft
    from dockyard.storage.sql.alerts import SqlAlerts

    config = ROOT / "tests" / "rollouts" / "project" / "dockyard.yaml"
    live = LiveServer(Path(tempfile.mkdtemp()), config=config).start()
    rt = live.app.state.runtime
    draft = Draft(
        name="ticket-summary", kind="text", template="TL;DR {{ ticket }}", sample={"ticket": "x"}
    )
    live.run(rt.prompts.push(draft, author="bench"))
    alerts = SqlAlerts(rt.storage.engine)
    [aid] = live.run(alerts.assistant_ids("summarize"))

    async def measure() -> list[tuple[float, float]]:
        async with get_client(url=live.url) as client:

            async def used() -> Any:
                values: Any = await client.runs.wait(
                    None,
                    "summarize",
                    input={"messages": [{"role": "user", "content": "x"}]},
                    metadata={"user_id": "vip"},
                )
                return values["used"]

            times = []
            for _ in range(trials):
                record = await rt.storage.rollouts.get("summary-v2")
                await rt.storage.rollouts.start(
                    record.name, record.assistant, record.definition, "config", datetime.now(UTC)
                )
                while await used() != "ticket-summary@2":
                    await asyncio.sleep(0.01)
                t0 = time.monotonic()
                now = datetime.now(UTC)
                for _ in range(5):
                    await alerts.record_quality(
                        str(uuid.uuid4()), aid, 0.1, now, variant="candidate"
                    )
                while (await rt.storage.rollouts.get("summary-v2")).state != "rolled_back":
                    await asyncio.sleep(0.005)
                t1 = time.monotonic()
                while await used() != "ticket-summary@1":
                    await asyncio.sleep(0.005)
                times.append((t1 - t0, time.monotonic() - t0))
            return times

    try:
        return asyncio.run_coroutine_threadsafe(measure(), live.loop).result(300)
    finally:
        live.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    print(machine_summary(), "\n")
    print("| assignment | µs per run (best of 5) |\n|---|---:|")
    for name, us in assignment(args.runs):
        print(f"| {name} | {us:.2f} |")
    times = rollback(args.trials)
    decided = [t[0] for t in times]
    served = [t[1] for t in times]
    print("\n| rollback, from the low scores written | median s | max s |\n|---|---:|---:|")
    print(f"| rollout rolled_back | {statistics.median(decided):.2f} | {max(decided):.2f} |")
    print(f"| a new run served stable | {statistics.median(served):.2f} | {max(served):.2f} |")


if __name__ == "__main__":
    main()
