"""A budget's own cost per request (policies/budget.py): one hold at admission and one
settle at the end, on each store the server uses.

Each sample is one ``Budgets.hold`` (a key's daily budget and its tenant's, as a request
with a key and a tenant holds) or one ``Budgets.settle`` timed alone with
``perf_counter_ns``, over ``--keys`` keys in 10 tenants; limits high enough that every hold
fits, each run's ledger row written between its hold and its settle (untimed), as a
settling run writes it. Results: docs/perf.md, "Budgets".

    .venv/bin/python bench/budget_bench.py --requests 5000 \\
        --postgres-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from machine import machine_summary
from stats import percentile

from dockyard.policies.budget import Budgets
from dockyard.settings import BudgetConfig, load_settings
from dockyard.storage.base import UsageRecord
from dockyard.storage.budgets import BudgetStore
from dockyard.storage.database import Storage, open_storage
from dockyard.storage.sql.budgets import SqlBudgets

CONFIG = BudgetConfig(daily_usd=10**6, tenant={"daily_usd": 10**7}, reserve_usd=0.01)


def row(label: str, us: list[float]) -> str:
    p50, p99 = percentile(us, 50), percentile(us, 99)
    assert p50 is not None and p99 is not None
    return f"| {label} | {len(us)} | {p50:.1f} | {p99:.1f} |"


def ledger_row(run_id: str, key: str, tenant: str) -> UsageRecord:
    now = datetime.now(UTC)
    return UsageRecord(
        run_id=run_id,
        assistant_id="bench",
        tenant_id=tenant,
        key_id=key,
        model="m",
        day=now.date(),
        created_at=now,
        calls=1,
        input_tokens=1000,
        output_tokens=250,
        cached_input_tokens=0,
        cache_write_tokens=0,
        cost_usd=0.01,
    )


async def measure(
    label: str, store: BudgetStore, storage: Storage, args: argparse.Namespace
) -> list[str]:
    budgets = Budgets(CONFIG, store)
    holds, settles = [], []
    for i in range(args.warmup + args.requests):
        key, tenant = f"key-{i % args.keys}", f"tenant-{i % 10}"
        run_id = str(uuid.uuid4())
        t0 = time.perf_counter_ns()
        await budgets.hold(run_id, 10**7, tenant=tenant, key_id=key)
        t1 = time.perf_counter_ns()
        await storage.usage.record([ledger_row(run_id, key, tenant)])
        t2 = time.perf_counter_ns()
        await budgets.settle(run_id, 0.01)
        t3 = time.perf_counter_ns()
        if i >= args.warmup:
            holds.append((t1 - t0) / 1000)
            settles.append((t3 - t2) / 1000)
    return [row(f"{label}: hold (key + tenant)", holds), row(f"{label}: settle", settles)]


async def main(args: argparse.Namespace) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine_summary()}; load average {load}")
    print("| what | requests | p50 µs | p99 µs |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "dockyard.yaml"
        config.write_text("graphs: {}\n")
        async with AsyncExitStack() as stack:
            sqlite = await stack.enter_async_context(
                open_storage(load_settings(config, data_dir=Path(tmp) / "data"))
            )
            for line in await measure("SQLite", SqlBudgets(sqlite.engine), sqlite, args):
                print(line)
            if args.redis_url:
                from redis.asyncio import Redis

                from dockyard.policies.budget_redis import RedisBudgets

                prefix = f"dockyard-bench-{uuid.uuid4().hex[:8]}"
                client = Redis.from_url(args.redis_url, protocol=2)
                store = RedisBudgets(client, prefix, SqlBudgets(sqlite.engine).ledger)
                try:
                    for line in await measure("Redis (ledger on SQLite)", store, sqlite, args):
                        print(line)
                finally:
                    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
                    if keys:
                        await client.delete(*keys)
                    await client.aclose()
            if args.postgres_url:
                name = f"dockyard_bench_{uuid.uuid4().hex[:8]}"
                admin = await psycopg.AsyncConnection.connect(args.postgres_url, autocommit=True)
                await admin.execute(f'CREATE DATABASE "{name}"')
                try:
                    url = f"{args.postgres_url.rpartition('/')[0]}/{name}"
                    async with open_storage(load_settings(config, database_url=url)) as pg:
                        for line in await measure("PostgreSQL", SqlBudgets(pg.engine), pg, args):
                            print(line)
                finally:
                    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=5_000, help="timed holds per store")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--keys", type=int, default=1_000, help="distinct API keys")
    parser.add_argument("--postgres-url", help="also measure on this PostgreSQL server")
    parser.add_argument("--redis-url", help="also measure over this Redis")
    asyncio.run(main(parser.parse_args()))
