"""policies/rate_limit.py on its own: the GCRA arithmetic on a fake clock, run against the
in-process store and the Redis script alike; Redis callers racing; who a request counts
against; the settings block."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from dockyard.caller import Caller, use
from dockyard.errors import ConfigError, RateLimitedError
from dockyard.policies.rate_limit import (
    Bucket,
    Identity,
    LimitStore,
    MemoryStore,
    RateLimit,
    RateLimiter,
    RedisStore,
    identity,
    identity_of,
)
from dockyard.settings import RateLimitConfig, RateLimits, load_settings
from tests.redis_server import REDIS_URL, fresh_prefix

# The fake clock reads today's Unix time: the Redis script then works on the magnitudes it
# meets in production (microseconds since 2025-01-01, divided by the interval).
EPOCH = 1_765_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


StoreFactory = Callable[[FakeClock], LimitStore]


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    with fresh_prefix() as prefix:
        yield prefix


@pytest.fixture(params=["memory", "redis"])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Each store the limiter runs on, on a fake clock; a fresh key space per test."""
    opened: list[LimitStore] = []
    if request.param == "redis":
        prefix = f"{request.getfixturevalue('redis_prefix')}:{uuid.uuid4().hex[:8]}"

    def factory(clock: FakeClock) -> LimitStore:
        store: LimitStore
        if request.param == "memory":
            store = MemoryStore(clock)
        else:
            store = RedisStore(redis.asyncio.Redis.from_url(REDIS_URL), prefix, clock=clock)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.aclose()


def limiter(store: LimitStore, **config: Any) -> RateLimiter:
    # Built without validation: the config refuses token limits until model calls carry
    # their caller (see test_a_wrong_block_stops_start_up); the token API is tested here.
    tenant = config.pop("tenant", None)
    limits = RateLimits(**tenant) if tenant is not None else None
    return RateLimiter(RateLimitConfig.model_construct(**config, tenant=limits), store)


KEY = Identity.of_key("k1")


async def refused(coro: Any) -> RateLimitedError:
    with pytest.raises(RateLimitedError) as err:
        await coro
    return err.value


async def test_a_burst_of_the_limit_then_one_per_interval(make_store: StoreFactory) -> None:
    clock = FakeClock()
    rl = limiter(make_store(clock), requests_per_minute=5)
    remaining = []
    for _ in range(5):
        d = await rl.check_request(KEY)
        assert d is not None and d.allowed
        remaining.append(d.remaining)
    assert remaining == [4, 3, 2, 1, 0]
    assert d.reset_after == pytest.approx(60)  # full again a minute after the burst

    before = time.time()
    e = await refused(rl.check_request(KEY))
    after = time.time()
    assert e.status_code == 429 and e.code == "rate_limited"
    assert e.retry_after == pytest.approx(12)  # 60 s / 5
    assert (e.limit, e.remaining) == (5, 0)
    assert e.reset_at is not None and before + 59.9 <= e.reset_at <= after + 60
    assert "5 requests per minute for this API key" in e.message and "retry in 12 s" in e.message
    headers = e.headers()
    assert headers["Retry-After"] == "12"
    assert headers["X-RateLimit-Limit"] == "5" and headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Reset"] == str(math.ceil(e.reset_at))

    clock.advance(7)
    e = await refused(rl.check_request(KEY))
    assert e.retry_after == pytest.approx(5)
    assert e.headers()["Retry-After"] == "5"
    clock.advance(5)  # one interval since the burst: room for exactly one
    d = await rl.check_request(KEY)
    assert d is not None and d.remaining == 0
    await refused(rl.check_request(KEY))

    clock.advance(60)  # a quiet minute fills the bucket again
    for expected in (4, 3, 2, 1, 0):
        d = await rl.check_request(KEY)
        assert d is not None and d.remaining == expected


async def test_a_refusal_charges_nothing(make_store: StoreFactory) -> None:
    clock = FakeClock()
    rl = limiter(make_store(clock), requests_per_minute=2)
    await rl.check_request(KEY)
    await rl.check_request(KEY)
    for _ in range(10):
        await refused(rl.check_request(KEY))
    clock.advance(30)  # one interval: had the refusals counted, the bucket would still be full
    assert await rl.check_request(KEY)
    await refused(rl.check_request(KEY))


@pytest.mark.parametrize("limit", [7, 13, 60, 997])
async def test_uneven_intervals_admit_exactly_the_limit(
    make_store: StoreFactory, limit: int
) -> None:
    """60/L s is no whole number of microseconds: float rounding must neither lose the
    last request of a burst nor admit one more."""
    clock = FakeClock()
    rl = limiter(make_store(clock), requests_per_minute=limit)
    for _ in range(limit):
        await rl.check_request(KEY)
    e = await refused(rl.check_request(KEY))
    assert e.retry_after == pytest.approx(60 / limit, abs=1e-5)
    clock.advance(60 / limit)
    await rl.check_request(KEY)
    await refused(rl.check_request(KEY))


async def test_keys_and_tenants_are_counted_apart_and_together(make_store: StoreFactory) -> None:
    clock = FakeClock()
    rl = limiter(make_store(clock), requests_per_minute=2, tenant={"requests_per_minute": 3})
    a, b = Identity.of_key("a", "acme"), Identity.of_key("b", "acme")
    other = Identity.of_key("c", "globex")
    await rl.check_request(a)
    d = await rl.check_request(a)
    # Reported by the bucket with the least room: the key's (0 left), not the tenant's (1).
    assert d is not None and (d.bucket.label, d.remaining) == ("this API key", 0)
    e = await refused(rl.check_request(a))
    assert "for this API key" in e.message and e.limit == 2

    await rl.check_request(b)  # the tenant's third
    e = await refused(rl.check_request(b))  # b has room, its tenant has none
    assert "3 requests per minute for tenant 'acme'" in e.message and e.limit == 3
    assert e.retry_after == pytest.approx(20)

    for _ in range(2):  # another tenant is untouched
        await rl.check_request(other)

    clock.advance(20)  # the tenant frees one; b's refused request was not charged to b
    d = await rl.check_request(b)
    assert d is not None and d.remaining == 0
    await refused(rl.check_request(b))


async def test_a_keys_own_limits_replace_the_defaults(make_store: StoreFactory) -> None:
    clock = FakeClock()
    rl = limiter(make_store(clock), requests_per_minute=100, tokens_per_minute=1000)
    strict = Identity.of_key("strict", limits=RateLimits(requests_per_minute=1))
    await rl.check_request(strict)
    e = await refused(rl.check_request(strict))
    assert e.limit == 1 and e.retry_after == pytest.approx(60)
    d = await rl.check_tokens(strict, 1000)  # its token limit is still the default
    assert d is not None and d.bucket.limit == 1000


async def test_tokens_are_checked_before_and_charged_after(make_store: StoreFactory) -> None:
    clock = FakeClock()
    rl = limiter(make_store(clock), tokens_per_minute=1000)
    assert await rl.check_request(KEY) is None  # no request limit configured

    d = await rl.check_tokens(KEY, 900)
    assert d is not None and d.allowed and d.remaining == 1000  # a check charges nothing
    d = await rl.consume_tokens(KEY, 900)
    assert d is not None and d.remaining == 100 and d.allowed
    await rl.check_tokens(KEY, 100)
    e = await refused(rl.check_tokens(KEY, 200))
    assert e.retry_after == pytest.approx(6)  # 100 tokens drain in 6 s at 1000/min
    assert "1000 tokens per minute for this API key" in e.message

    # Usage already happened: charged past the limit, and later calls wait it out.
    d = await rl.consume_tokens(KEY, 500)
    assert d is not None and not d.allowed and d.remaining == 0
    assert d.retry_after == pytest.approx(24.06)  # 400 over + the next token, at 16.7/s
    e = await refused(rl.check_tokens(KEY))
    assert e.retry_after == pytest.approx(24.06)
    clock.advance(24.06)
    assert await rl.check_tokens(KEY)

    e = await refused(rl.check_tokens(Identity.of_key("fresh"), 1001))
    assert e.retry_after is None  # more than a minute's worth never fits: no Retry-After
    assert "over the rate limit" in e.message and "Retry-After" not in e.headers()
    with pytest.raises(ValueError, match=">= 0"):
        await rl.consume_tokens(KEY, -1)


async def test_nothing_applies_without_a_limit_of_the_kind(make_store: StoreFactory) -> None:
    rl = limiter(make_store(FakeClock()), requests_per_minute=1)
    assert await rl.check_tokens(KEY, 10**9) is None
    assert await rl.consume_tokens(KEY, 10**9) is None
    tenant_only = limiter(make_store(FakeClock()), tenant={"tokens_per_minute": 10})
    assert await tenant_only.check_request(Identity.of_key("x", "t")) is None
    assert await tenant_only.check_tokens(Identity.of_key("x")) is None  # no tenant: no bucket
    await refused(tenant_only.check_tokens(Identity.of_key("x", "t"), 11))


# -- Redis: one script, atomic across clients ----------------------------------------------


async def test_racing_clients_never_over_admit(redis_prefix: str) -> None:
    """Four clients (as four processes would) race 200 requests at a limit of 25."""
    clock = FakeClock()
    prefix = f"{redis_prefix}:race"
    stores = [
        RedisStore(redis.asyncio.Redis.from_url(REDIS_URL), prefix, clock=clock) for _ in range(4)
    ]
    limiters = [limiter(s, requests_per_minute=25) for s in stores]

    async def one(i: int) -> bool:
        try:
            await limiters[i % 4].check_request(KEY)
        except RateLimitedError:
            return False
        return True

    try:
        results = await asyncio.gather(*(one(i) for i in range(200)))
        assert sum(results) == 25
    finally:
        for s in stores:
            await s.aclose()


async def test_on_redis_clock_the_limit_holds_and_buckets_expire(redis_prefix: str) -> None:
    prefix = f"{redis_prefix}:clock"
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    rl = limiter(RedisStore(client, prefix), requests_per_minute=20)  # one per 3 s

    async def one() -> bool:
        try:
            await rl.check_request(KEY)
        except RateLimitedError:
            return False
        return True

    try:
        started = time.monotonic()
        admitted = sum(await asyncio.gather(*(one() for _ in range(60))))
        refills = math.floor((time.monotonic() - started) / 3)
        assert 20 <= admitted <= 20 + refills
        [key] = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        assert key == f"{prefix}:ratelimit:requests:20:key:k1".encode()
        assert 0 < await client.pttl(key) <= 60_000  # gone once the bucket is full again
    finally:
        await rl.aclose()


# -- who a request counts against ---------------------------------------------------------


def scope(headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("10.1.2.3", 5555),
    }


def test_the_callers_key_counts_with_its_own_limits() -> None:
    who = Caller("key_42", "acme", policies={"rate_limit": {"requests_per_minute": 3}})
    with use(who):
        got = identity_of(scope({"x-api-key": "dk_secret"}))
    assert got == Identity("key:key_42", "acme", RateLimits(requests_per_minute=3))
    assert identity(Caller("key_7", "acme")) == Identity("key:key_7", "acme", None)


def test_without_a_key_the_client_address_counts() -> None:
    assert identity_of(scope({"x-api-key": "sk-not-a-dockyard-key"})).subject == "addr:10.1.2.3"
    assert identity_of({"type": "http", "headers": []}).subject == "addr:unknown"
    assert identity(Caller(None, None), scope()).subject == "addr:10.1.2.3"


async def test_the_middleware_limits_by_the_caller_auth_sets() -> None:
    """What the auth middleware does, wrapped around this one: set the request's caller.
    Probes and docs are not counted, under a mount prefix too."""

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hi")

    routes = [Route("/x", hello), Route("/ok", hello), Route("/docs", hello)]
    rl = limiter(MemoryStore(FakeClock()), requests_per_minute=1)
    limited = RateLimit(Starlette(routes=routes), limiter=rl)

    async def auth(scope: Scope, receive: Receive, send: Send) -> None:
        key = dict(scope["headers"]).get(b"x-key", b"").decode()
        with use(Caller(key, "t")):
            await limited(scope, receive, send)

    transport = httpx.ASGITransport(app=auth, root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as h:
        r = await h.get("/api/x", headers={"x-key": "a"})
        assert r.text == "hi" and r.headers["x-ratelimit-remaining"] == "0"
        with pytest.raises(RateLimitedError):  # the app's CatchAll answers it
            await h.get("/api/x", headers={"x-key": "a"})
        assert (await h.get("/api/x", headers={"x-key": "b"})).status_code == 200
        for path in ("/api/ok", "/api/docs"):
            r = await h.get(path, headers={"x-key": "a"})
            assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers


async def test_memory_store_forgets_full_buckets() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    buckets = [Bucket(f"requests:key:{i}", 60, "x") for i in range(1500)]
    for b in buckets[:1000]:
        await store.update([b], 1, "take")
    clock.advance(2)  # every bucket has drained: full, the same as absent
    for b in buckets[1000:]:
        await store.update([b], 1, "take")
    assert len(store._tats) == 500  # the first thousand went when the table reached 1024
    assert (await store.update([buckets[0]], 1, "peek")).tats == [2.0]  # cells of 1 s


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"requests_per_minute": 0}, "policies.rate_limit.requests_per_minute = 0"),
        ({"tokens_per_minute": -5}, "policies.rate_limit.tokens_per_minute = -5"),
        ({"requests_per_minut": 60}, "policies.rate_limit.requests_per_minut = 60: unknown key"),
        ({"requests_per_minute": 60, "tenant": {"rpm": 1}}, "tenant.rpm = 1: unknown key"),
        ({}, "policies.rate_limit sets no limit"),
        ({"requests_per_minute": 60, "tenant": {}}, "policies.rate_limit.tenant sets no limit"),
    ],
)
def test_a_wrong_block_stops_start_up(tmp_path: Path, block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="invalid configuration") as err:
        load_settings(None, project_dir=tmp_path, policies={"rate_limit": block})
    assert message in str(err.value)


def test_the_block_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.yaml"
    config.write_text(
        "policies:\n  rate_limit:\n    requests_per_minute: 60\n"
        "    tenant: {requests_per_minute: 600}\n"
    )
    s = load_settings(config)
    assert s.policies.rate_limit == RateLimitConfig(
        requests_per_minute=60, tenant={"requests_per_minute": 600}
    )
    assert isinstance(RateLimiter.from_settings(s), RateLimiter)
    assert RateLimiter.from_settings(load_settings(None, project_dir=tmp_path / "x")) is None
