"""Budget holds in this process's memory: the reference ``BudgetStore`` (storage/budgets.py),
for one process without a database to share (tests, embedding). dockyard's server uses
the database (storage/sql/budgets.py) or Redis (policies/budget_redis.py).

Like the Redis store, it keeps each line's spend as a counter: read from the ledger the
first time a line is used in a period, then raised by each settle. A settle that finds
no counter reads the ledger (which has its cost by then) rather than add to nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from dockyard.storage.budgets import (
    BudgetLine,
    Crossing,
    Ledger,
    Shortfall,
    parse_name,
    period_start,
)


class MemoryBudgets:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._spent: dict[str, int] = {}  # line name -> spend this period
        self._holds: dict[
            str, dict[str, tuple[int, datetime]]
        ] = {}  # name -> id -> (amount, until)
        self._records: dict[str, dict[str, int]] = {}  # hold id -> {line name: limit}
        self._marks: set[tuple[str, float]] = set()
        self._lock = asyncio.Lock()

    async def _seed(self, line: BudgetLine, now: datetime) -> int:
        name = line.name(now)
        if name not in self._spent:
            self._spent[name] = await self._ledger(line.scope, period_start(line.period, now))
        return self._spent[name]

    async def hold(
        self,
        hold_id: str,
        lines: Sequence[BudgetLine],
        amount: int,
        *,
        now: datetime,
        ttl: float,
    ) -> Shortfall | None:
        async with self._lock:
            if hold_id in self._records:
                raise ValueError(f"hold {hold_id!r} exists")
            for line in lines:
                spent = await self._seed(line, now)
                holds = self._holds.setdefault(line.name(now), {})
                for gone in [h for h, (_, until) in holds.items() if until <= now]:
                    del holds[gone]
                held = sum(a for a, _ in holds.values())
                if spent + held + amount > line.limit:
                    return Shortfall(line, spent, held)
            until = now + timedelta(seconds=ttl)
            for line in lines:
                self._holds[line.name(now)][hold_id] = (amount, until)
            self._records[hold_id] = {line.name(now): line.limit for line in lines}
            return None

    async def settle(
        self, hold_id: str, cost: int, *, now: datetime, thresholds: Sequence[float]
    ) -> list[Crossing]:
        async with self._lock:
            record = self._records.pop(hold_id, None)
            if record is None:
                return []
            out = []
            for name, limit in record.items():
                self._holds.get(name, {}).pop(hold_id, None)
                scope, period, _ = parse_name(name)
                line = BudgetLine(scope, period, limit)
                current = line.name(now)
                if current in self._spent:
                    self._spent[current] += cost
                spent = await self._seed(line, now)  # the ledger has the cost already
                for t in thresholds:
                    if spent >= t * limit and (current, t) not in self._marks:
                        self._marks.add((current, t))
                        out.append(Crossing(line, t, spent, period_start(period, now)))
            return out

    async def release(self, hold_id: str) -> None:
        async with self._lock:
            for name in self._records.pop(hold_id, {}):
                self._holds.get(name, {}).pop(hold_id, None)

    async def spent(self, line: BudgetLine, now: datetime) -> int:
        async with self._lock:
            return await self._seed(line, now)

    async def lines(self, hold_id: str) -> list[BudgetLine]:
        out = []
        for name, limit in self._records.get(hold_id, {}).items():
            scope, period, _ = parse_name(name)
            out.append(BudgetLine(scope, period, limit))
        return out

    async def aclose(self) -> None:
        self._holds.clear()
        self._records.clear()
