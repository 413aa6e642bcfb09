"""What one alert evaluation costs: the shipped rules over N run outcomes in the window,
on SQLite and PostgreSQL, and what recording outcomes costs per run.

    .venv/bin/python bench/alerts_bench.py --outcomes 1000 10000 50000 [--postgres URL]

Prints, per backend and N: the time to record N outcomes (in batches of 200, as the run
observer writes them) and the median of 5 evaluations (no alert sent: no notifiers).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dockyard.observability.alerts import AlertEvaluator
from dockyard.settings import AlertsConfig, load_settings
from dockyard.storage.alerts import EndedRun
from dockyard.storage.database import open_storage
from dockyard.storage.sql.alerts import SqlAlerts


async def one(label: str, settings_kw: dict[str, object], n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "dockyard.yaml"
        config.write_text("graphs: {}\n")
        settings = load_settings(config, data_dir=Path(tmp) / "data", **settings_kw)
        async with open_storage(settings) as storage:
            store = SqlAlerts(storage.engine)
            now = datetime.now(UTC)
            rows = [
                EndedRun(
                    str(uuid.uuid4()),
                    "a1",
                    "error" if i % 20 == 0 else "success",
                    now - timedelta(seconds=600 * i / n + 2),
                    now - timedelta(seconds=600 * i / n),
                )
                for i in range(n)
            ]
            t = time.perf_counter()
            for i in range(0, n, 200):
                await store.record_outcomes(rows[i : i + 200])
            record = time.perf_counter() - t
            ev = AlertEvaluator(AlertsConfig(enabled=True), store, [], holder="bench")
            times = []
            for _ in range(5):
                t = time.perf_counter()
                await ev.evaluate(datetime.now(UTC))
                times.append(time.perf_counter() - t)
            print(
                f"{label:10} N={n:>6}: record {record * 1e6 / n:7.1f} us/run, "
                f"evaluate (shipped rules) median {statistics.median(times) * 1000:7.1f} ms"
            )


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--outcomes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--postgres", default=None, help="a database URL to use (it gets tables)")
    a = p.parse_args()
    for n in a.outcomes:
        await one("sqlite", {}, n)
        if a.postgres:
            await one("postgres", {"database_url": a.postgres}, n)


if __name__ == "__main__":
    asyncio.run(main())
