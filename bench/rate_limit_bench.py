"""The rate limiter's own cost per check (policies/rate_limit.py): in process and over Redis.

Each sample is one ``RateLimiter.check_request`` (GCRA over a key and a tenant bucket, as a
request with a key and a tenant costs) timed alone with ``perf_counter_ns``; the limit is
high enough that every check is admitted, and the callers rotate over ``--keys`` keys so the
table has the size of a busy server's. Also timed: the same through the ASGI middleware
around an app that answers at once (identity from the headers, the X-RateLimit-* headers
added), against that app alone. Results: docs/perf.md, "Rate limiter".

    .venv/bin/python bench/rate_limit_bench.py --checks 20000 \\
        --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from machine import machine_summary
from starlette.types import Message, Receive, Scope, Send
from stats import percentile

from dockyard.policies.rate_limit import (
    Identity,
    MemoryStore,
    RateLimit,
    RateLimiter,
    RedisStore,
)
from dockyard.settings import RateLimitConfig

CONFIG = RateLimitConfig(requests_per_minute=10**9, tenant={"requests_per_minute": 10**9})


async def timed(call: Callable[[int], Awaitable[object]], n: int, warmup: int) -> list[float]:
    """µs per call, each timed alone."""
    for i in range(warmup):
        await call(i)
    out = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        await call(i)
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


def row(label: str, us: list[float]) -> str:
    p50, p99 = percentile(us, 50), percentile(us, 99)
    assert p50 is not None and p99 is not None
    return f"| {label} | {len(us)} | {p50:.1f} | {p99:.1f} |"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def request_scope(i: int, keys: int) -> Scope:
    return {
        "type": "http",
        "path": "/threads/search",
        "root_path": "",
        "headers": [(b"x-api-key", f"sk-bench-{i % keys}".encode())],
        "client": ("127.0.0.1", 50000),
        "state": {},
    }


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Message) -> None:
    pass


async def measure(label: str, limiter: RateLimiter, args: argparse.Namespace) -> list[str]:
    identities = [Identity.of_key(f"key-{i}", f"tenant-{i % 10}") for i in range(args.keys)]

    async def check(i: int) -> object:
        return await limiter.check_request(identities[i % args.keys])

    middleware = RateLimit(app, limiter=limiter)

    async def through_middleware(i: int) -> None:
        await middleware(request_scope(i, args.keys), receive, discard)

    async def bare(i: int) -> None:
        await app(request_scope(i, args.keys), receive, discard)

    n, w = args.checks, args.warmup
    return [
        row(f"{label}: check_request (key + tenant)", await timed(check, n, w)),
        row(f"{label}: ASGI app with RateLimit", await timed(through_middleware, n, w)),
        row(f"{label}: ASGI app alone", await timed(bare, n, w)),
    ]


async def main(args: argparse.Namespace) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine_summary()}; load average {load}")
    print("| what | checks | p50 µs | p99 µs |\n|---|---|---|---|")
    memory = RateLimiter(CONFIG, MemoryStore())
    for line in await measure("in process", memory, args):
        print(line)
    if args.redis_url:
        from redis.asyncio import Redis

        prefix = f"dockyard-bench-{uuid.uuid4().hex[:8]}"
        client = Redis.from_url(args.redis_url, protocol=2)
        try:
            for line in await measure(
                "Redis", RateLimiter(CONFIG, RedisStore(client, prefix)), args
            ):
                print(line)

            async def ping(i: int) -> object:
                return await client.ping()

            # The floor under any Redis check: one round trip of the same client.
            print(row("Redis: PING round trip", await timed(ping, args.checks, args.warmup)))
        finally:
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
            if keys:
                await client.delete(*keys)
            await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=20_000, help="timed checks per row")
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--keys", type=int, default=1_000, help="distinct callers")
    parser.add_argument("--redis-url", help="also measure over this Redis")
    asyncio.run(main(parser.parse_args()))
