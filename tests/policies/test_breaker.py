"""The circuit breaker's states, the same in this process's memory and in Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.policies.breaker import (
    BreakerOpenError,
    BreakerStore,
    CircuitBreaker,
    MemoryBreakerStore,
)
from dockyard.policies.breaker_redis import RedisBreakerStore
from dockyard.settings import BreakerConfig
from tests.redis_server import REDIS_URL, fresh_prefix

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[BreakerStore]:
    if request.param == "memory":
        yield MemoryBreakerStore()
        return
    with fresh_prefix() as prefix:
        yield RedisBreakerStore(REDIS_URL, prefix)


def breaker(store: BreakerStore, clock: Clock, **config: float) -> CircuitBreaker:
    settings = {"failures": 3, "cooldown_seconds": 10} | config
    return CircuitBreaker("openai:gpt-test", BreakerConfig(**settings), store, clock)


def fail(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        b.report(ok=False, probe=b.acquire())


def test_opens_after_consecutive_failures_only(store: BreakerStore) -> None:
    clock = Clock()
    b = breaker(store, clock)

    fail(b, 2)
    b.report(ok=True, probe=b.acquire())  # a success in between starts the count over
    fail(b, 2)
    assert b.acquire() is False  # closed: a plain call

    fail(b)
    with pytest.raises(BreakerOpenError) as refused:
        b.acquire()
    assert refused.value.retry_in == pytest.approx(10)
    clock.now += 4
    with pytest.raises(BreakerOpenError) as refused:
        b.acquire()
    assert refused.value.retry_in == pytest.approx(6)


def test_half_open_lets_one_probe_through(store: BreakerStore) -> None:
    clock = Clock()
    b = breaker(store, clock)
    fail(b, 3)

    clock.now += 10
    assert b.acquire() is True  # the probe
    with pytest.raises(BreakerOpenError):
        b.acquire()  # the others wait for its outcome
    b.report(ok=True, probe=True)
    assert b.acquire() is False and b.acquire() is False  # closed again
    fail(b, 2)
    b.acquire()  # the count started over when it closed


def test_a_failed_probe_opens_it_for_another_cooldown(store: BreakerStore) -> None:
    clock = Clock()
    b = breaker(store, clock)
    fail(b, 3)
    clock.now += 10

    assert b.acquire() is True
    b.report(ok=False, probe=True)
    with pytest.raises(BreakerOpenError) as refused:
        b.acquire()
    assert refused.value.retry_in == pytest.approx(10)


def test_a_lost_probe_frees_its_place_after_a_cooldown(store: BreakerStore) -> None:
    clock = Clock()
    b = breaker(store, clock)
    fail(b, 3)
    clock.now += 10
    assert b.acquire() is True  # this probe never reports (its process died)

    clock.now += 9
    with pytest.raises(BreakerOpenError):
        b.acquire()
    clock.now += 1
    assert b.acquire() is True


def test_outcomes_of_calls_started_before_it_opened_do_not_close_it(store: BreakerStore) -> None:
    clock = Clock()
    b = breaker(store, clock)
    fail(b, 3)

    b.report(ok=True, probe=False)
    with pytest.raises(BreakerOpenError):
        b.acquire()


def test_opens_on_the_failure_rate_of_the_window(store: BreakerStore) -> None:
    clock = Clock()
    b = breaker(store, clock, failures=100, failure_rate=0.5, window_seconds=60, min_calls=4)

    for ok in (True, False, True):
        b.report(ok=ok, probe=b.acquire())
    b.acquire()  # 1 of 3 failed, and fewer than min_calls: closed
    fail(b)  # 2 of 4 failed
    with pytest.raises(BreakerOpenError):
        b.acquire()


def test_the_window_starts_over(store: BreakerStore) -> None:
    clock = Clock()
    b = breaker(store, clock, failures=100, failure_rate=0.5, window_seconds=60, min_calls=4)

    for ok in (False, False, True, True, True):
        b.report(ok=ok, probe=b.acquire())
    clock.now += 60  # a new window: the two failures are forgotten
    fail(b)
    b.report(ok=True, probe=b.acquire())
    b.report(ok=True, probe=b.acquire())
    b.report(ok=True, probe=b.acquire())
    b.acquire()  # 1 of 4


async def test_the_async_steps_match(store: BreakerStore) -> None:
    clock = Clock()
    b = breaker(store, clock)
    for _ in range(3):
        await b.areport(ok=False, probe=await b.aacquire())
    with pytest.raises(BreakerOpenError):
        await b.aacquire()
    clock.now += 10
    assert await b.aacquire() is True
    await b.areport(ok=True, probe=True)
    assert await b.aacquire() is False
    if isinstance(store, RedisBreakerStore):
        await store.aclose()


async def test_open_breakers_are_listed(store: BreakerStore) -> None:
    """What the breaker_open alert reads: every open (or half-open) breaker, by key."""
    clock = Clock()
    b = breaker(store, clock)
    other = CircuitBreaker("anthropic:claude-test", BreakerConfig(failures=3), store, clock)
    assert await store.aopen() == {}
    for _ in range(3):
        await b.areport(ok=False, probe=await b.aacquire())
    await other.areport(ok=False, probe=await other.aacquire())  # one failure: closed
    assert await store.aopen() == {"openai:gpt-test": clock.now + 10}
    clock.now += 10
    assert await b.aacquire() is True  # half-open: still listed until the probe succeeds
    assert list(await store.aopen()) == ["openai:gpt-test"]
    await b.areport(ok=True, probe=True)
    assert await store.aopen() == {}
    if isinstance(store, RedisBreakerStore):
        await store.aclose()


def test_an_unreachable_store_lets_calls_through(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisBreakerStore("redis://127.0.0.1:1/0", "nowhere")
    b = breaker(store, Clock())

    assert b.acquire() is False
    b.report(ok=False, probe=False)
    assert "unreachable" in caplog.text


SCRIPT = """
import sys
from dockyard.policies.breaker import CircuitBreaker
from dockyard.policies.breaker_redis import RedisBreakerStore
from dockyard.settings import BreakerConfig

store = RedisBreakerStore(sys.argv[1], sys.argv[2])
b = CircuitBreaker("openai:gpt-test", BreakerConfig(failures=2, cooldown_seconds=600), store)
for _ in range(2):
    b.report(ok=False, probe=b.acquire())
"""


def test_a_breaker_opened_by_one_process_is_open_in_another() -> None:
    with fresh_prefix() as prefix:
        here = CircuitBreaker(
            "openai:gpt-test",
            BreakerConfig(failures=2, cooldown_seconds=600),
            RedisBreakerStore(REDIS_URL, prefix),
        )
        assert here.acquire() is False
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        subprocess.run(
            [sys.executable, "-c", SCRIPT, REDIS_URL, prefix], check=True, env=env, timeout=60
        )

        with pytest.raises(BreakerOpenError) as refused:
            here.acquire()
        assert 590 < refused.value.retry_in <= 600
