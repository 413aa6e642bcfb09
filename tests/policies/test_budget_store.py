"""The budget stores' conformance suite: one spec run against the in-process store, the
database (SQLite, PostgreSQL) and Redis. Each backend gives two handles on one shared
state (two engines on one database, two Redis clients), as two processes hold them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from dockyard.policies.budget_redis import RedisBudgets
from dockyard.policies.budget_store import MemoryBudgets
from dockyard.settings import load_settings
from dockyard.storage.base import UsageRecord
from dockyard.storage.budgets import (
    NANOS,
    BudgetLine,
    BudgetStore,
    period_end,
    period_start,
    to_nanos,
)
from dockyard.storage.database import Storage, open_storage
from dockyard.storage.sql.budgets import SqlBudgets
from tests.pg import fresh_database
from tests.redis_server import REDIS_URL, fresh_prefix

# Noon today (UTC): the periods are today and this month, and Redis's expiry times, which
# follow the periods, lie in the future.
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
CENT = NANOS // 100
SHARES = (0.8, 0.95)


@dataclass
class Backend:
    a: BudgetStore
    b: BudgetStore  # another process's handle on the same state
    storage: Storage  # whose ledger the store reads

    async def spend(self, scope: str, usd: float, at: datetime = NOW) -> None:
        """A run's cost, in the ledger as a settling run writes it."""
        await self.storage.usage.record([ledger_row(str(uuid.uuid4()), scope, usd, at)])


def ledger_row(run_id: str, scope: str, usd: float, at: datetime = NOW) -> UsageRecord:
    kind, _, ident = scope.partition(":")
    return UsageRecord(
        run_id=run_id,
        assistant_id="asst",
        tenant_id=ident if kind == "tenant" else None,
        key_id=ident if kind == "key" else None,
        model="m",
        day=at.date(),
        created_at=at,
        calls=1,
        input_tokens=1,
        output_tokens=1,
        cached_input_tokens=0,
        cache_write_tokens=0,
        cost_usd=usd,
    )


async def _sqlite(tmp_path: Path) -> tuple[Storage, Storage, AsyncExitStack]:
    stack = AsyncExitStack()
    config = tmp_path / "dockyard.yaml"
    config.write_text("graphs: {}\n")
    settings = load_settings(config, data_dir=tmp_path / "data")
    one = await stack.enter_async_context(open_storage(settings))
    two = await stack.enter_async_context(open_storage(settings))
    return one, two, stack


@asynccontextmanager
async def memory_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    one, _, stack = await _sqlite(tmp_path)
    async with stack:
        store = MemoryBudgets(SqlBudgets(one.engine).ledger)
        yield Backend(store, store, one)


@asynccontextmanager
async def sqlite_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    one, two, stack = await _sqlite(tmp_path)
    async with stack:
        yield Backend(SqlBudgets(one.engine), SqlBudgets(two.engine), one)


@asynccontextmanager
async def postgres_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    config = tmp_path / "dockyard.yaml"
    config.write_text("graphs: {}\n")
    async with fresh_database() as url:
        settings = load_settings(config, database_url=url, database_pool_size=4)
        async with open_storage(settings) as one, open_storage(settings) as two:
            yield Backend(SqlBudgets(one.engine), SqlBudgets(two.engine), one)


@asynccontextmanager
async def redis_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    one, _, stack = await _sqlite(tmp_path)
    with fresh_prefix() as prefix:
        async with stack:
            ledger = SqlBudgets(one.engine).ledger
            a = RedisBudgets(redis.asyncio.Redis.from_url(REDIS_URL), prefix, ledger, owns=True)
            b = RedisBudgets(redis.asyncio.Redis.from_url(REDIS_URL), prefix, ledger, owns=True)
            try:
                yield Backend(a, b, one)
            finally:
                await a.aclose()
                await b.aclose()


FACTORIES: dict[str, Callable[[Path], Any]] = {
    "memory": memory_backend,
    "sqlite": sqlite_backend,
    "postgres": postgres_backend,
    "redis": redis_backend,
}


@pytest.fixture(params=sorted(FACTORIES))
async def be(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async with FACTORIES[request.param](tmp_path) as backend:
        yield backend


def key_daily(limit_usd: float = 0.05, key: str = "k1") -> BudgetLine:
    return BudgetLine(f"key:{key}", "daily", to_nanos(limit_usd))


async def hold(
    store: BudgetStore,
    line: BudgetLine | list[BudgetLine],
    amount: int = CENT,
    hold_id: str | None = None,
    now: datetime = NOW,
    ttl: float = 600,
) -> Any:
    lines = line if isinstance(line, list) else [line]
    return await store.hold(hold_id or str(uuid.uuid4()), lines, amount, now=now, ttl=ttl)


async def test_holds_up_to_the_limit_exactly_then_refuses_naming_the_line(be: Backend) -> None:
    line = key_daily(0.05)
    for _ in range(5):  # 5 x 0.01 is exactly 0.05 in nano-dollars (not in floats)
        assert await hold(be.a, line) is None
    short = await hold(be.b, line)
    assert short is not None
    assert (short.line, short.spent, short.held) == (line, 0, 5 * CENT)


async def test_ledger_spend_counts_against_the_limit(be: Backend) -> None:
    await be.spend("key:k1", 0.03)
    await be.spend("key:other", 1.0)  # another key's spend is not this one's
    await be.spend("tenant:k1", 1.0)  # nor a tenant's of the same name
    line = key_daily(0.05)
    assert await be.a.spent(line, NOW) == 3 * CENT
    assert await hold(be.a, line, 2 * CENT) is None
    short = await hold(be.a, line, 1)
    assert short is not None and (short.spent, short.held) == (3 * CENT, 2 * CENT)


async def test_yesterdays_and_last_months_spend_do_not_count(be: Backend) -> None:
    start = period_start("monthly", NOW)
    await be.spend("key:k1", 1.0, at=start - timedelta(seconds=1))  # last month
    await be.spend("key:k1", 0.5, at=period_start("daily", NOW) - timedelta(seconds=1))
    daily, monthly = key_daily(0.05), BudgetLine("key:k1", "monthly", to_nanos(10))
    assert await be.a.spent(daily, NOW) == 0
    expected = 0 if start == period_start("daily", NOW) else to_nanos(0.5)
    assert await be.a.spent(monthly, NOW) == expected
    assert await hold(be.a, [daily, monthly], 5 * CENT) is None


async def test_a_hold_and_its_settle_become_spend(be: Backend) -> None:
    line = key_daily(0.05)
    assert await hold(be.a, line, 2 * CENT, hold_id="r1") is None
    await be.spend("key:k1", 0.04)  # the run cost more than it held
    await be.b.settle("r1", 4 * CENT, now=NOW, thresholds=())
    assert await be.a.spent(line, NOW) == 4 * CENT
    assert await hold(be.a, line, CENT) is None  # 0.04 + 0.01: the hold is gone
    assert await hold(be.a, line, 1) is not None


async def test_a_hold_knows_its_lines_until_it_is_settled(be: Backend) -> None:
    lines = [key_daily(0.05), BudgetLine("tenant:acme", "monthly", to_nanos(1))]
    assert await hold(be.a, lines, hold_id="r1") is None
    assert sorted(await be.b.lines("r1"), key=lambda x: x.scope) == lines
    assert await be.b.lines("nobody") == []
    await be.spend("key:k1", 0.01)
    await be.a.settle("r1", CENT, now=NOW, thresholds=())
    assert await be.b.lines("r1") == []


async def test_release_frees_the_room_and_settling_nothing_is_harmless(be: Backend) -> None:
    line = key_daily(0.05)
    assert await hold(be.a, line, 5 * CENT, hold_id="r1") is None
    assert await hold(be.a, line, 1) is not None
    await be.b.release("r1")
    await be.b.release("r1")
    assert await hold(be.a, line, 5 * CENT) is None
    assert await be.a.settle("nobody", CENT, now=NOW, thresholds=SHARES) == []


async def test_a_hold_id_is_taken_once(be: Backend) -> None:
    assert await hold(be.a, key_daily(), hold_id="r1") is None
    with pytest.raises(ValueError, match="exists"):
        await hold(be.b, key_daily(), hold_id="r1")


async def test_an_unsettled_hold_expires(be: Backend) -> None:
    line = key_daily(0.05)
    assert await hold(be.a, line, 5 * CENT, ttl=60) is None
    assert await hold(be.a, line, 1, now=NOW + timedelta(seconds=59)) is not None
    assert await hold(be.b, line, 5 * CENT, now=NOW + timedelta(seconds=61)) is None


async def test_a_settle_after_the_hold_expired_still_counts(be: Backend) -> None:
    line = key_daily(0.05)
    assert await hold(be.a, line, CENT, hold_id="slow", ttl=60) is None
    later = NOW + timedelta(minutes=5)
    await be.spend("key:k1", 0.045, at=later)
    crossed = await be.b.settle("slow", to_nanos(0.045), now=later, thresholds=SHARES)
    assert [c.threshold for c in crossed] == [0.8]
    assert await be.a.spent(line, later) == to_nanos(0.045)


async def test_every_line_must_have_room_and_none_is_held_otherwise(be: Backend) -> None:
    key = key_daily(1.0)
    tenant = BudgetLine("tenant:acme", "daily", to_nanos(0.05))
    await be.spend("tenant:acme", 0.04)
    short = await hold(be.a, [key, tenant], 2 * CENT)
    assert short is not None and short.line == tenant and short.spent == 4 * CENT
    # Nothing was held on the key's line either.
    assert await hold(be.a, key, to_nanos(1.0)) is None


async def test_a_new_day_starts_afresh(be: Backend) -> None:
    line = key_daily(0.05)
    assert await hold(be.a, line, 5 * CENT, ttl=7 * 86400) is None
    await be.spend("key:k1", 0.05)
    tomorrow = period_end("daily", NOW) + timedelta(hours=1)
    assert await be.a.spent(line, tomorrow) == 0
    assert await hold(be.b, line, 5 * CENT, now=tomorrow) is None


async def test_thresholds_are_crossed_once_across_processes(be: Backend) -> None:
    line = key_daily(1.0)
    out = []
    for i, usd in enumerate((0.5, 0.35, 0.05, 0.07)):  # 0.5, 0.85, 0.9, 0.97
        assert await hold(be.a, line, CENT, hold_id=f"r{i}") is None
        await be.spend("key:k1", usd)
        store = be.a if i % 2 else be.b
        out.append(
            [
                (c.threshold, c.spent)
                for c in await store.settle(f"r{i}", to_nanos(usd), now=NOW, thresholds=SHARES)
            ]
        )
    assert out == [[], [(0.8, to_nanos(0.85))], [], [(0.95, to_nanos(0.97))]]


async def test_concurrent_holds_from_two_processes_never_overspend(be: Backend) -> None:
    line = key_daily(0.05)
    tenant = BudgetLine("tenant:acme", "daily", to_nanos(10))
    results = await asyncio.gather(
        *(hold([be.a, be.b][i % 2], [line, tenant], CENT) for i in range(20))
    )
    assert sum(r is None for r in results) == 5


async def test_a_hold_whose_cost_is_in_the_ledger_counts_once(be: Backend) -> None:
    """Between a run's ledger commit and its settle the cost is not counted twice: the
    SQL store sees the run's rows, the counters move only at the settle."""
    line = key_daily(0.05)
    for i in range(5):
        assert await hold(be.a, line, CENT, hold_id=f"run-{i}") is None
    if isinstance(be.a, SqlBudgets):
        await be.storage.usage.record([ledger_row("run-0", "key:k1", 0.01)])
    assert await hold(be.b, line, 1) is not None  # still exactly full, not over
    await be.a.release("run-1")
    assert await hold(be.b, line, CENT) is None  # one cent of room, not zero
