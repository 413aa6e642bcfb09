"""Budget holds in SQL (SQLite and PostgreSQL): atomic across processes through a lock row
per budget line and period.

A hold is one transaction: make sure each line's lock row exists, lock them (PostgreSQL:
``SELECT … FOR UPDATE`` in name order, so two holders of overlapping lines never
deadlock; SQLite: an UPDATE, which takes the database's write lock), then read the
ledger's spend and the live holds of each line, and write the hold only if every line
has room. Everything read after the lock sees every hold and every ledger row committed
before it (READ COMMITTED takes a fresh snapshot per statement; SQLite's writer reads
the last commit), so two holders never both take the last room.

Spend is the ledger (written in the same transaction as a run's outcome); a hold stops
counting as soon as its run's ledger rows are there, so a cost never counts twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dockyard.storage.budgets import (
    BudgetLine,
    Crossing,
    Period,
    Shortfall,
    period_end,
    period_start,
    to_nanos,
)
from dockyard.storage.sql._common import Conn, SqlStore
from dockyard.storage.tables import budget_holds, budget_locks, budget_marks, usage_ledger

# How long a hold's row (not its amount) outlives its ttl: a run settled later than its
# hold lasted still finds the budgets it was on.
KEEP_HOLD_RECORD = timedelta(days=2)


def scope_filter(scope: str) -> sa.ColumnElement[bool]:
    """The ledger rows of one budget scope."""
    c = usage_ledger.c
    kind, _, ident = scope.partition(":")
    if kind == "key":
        return c.key_id == ident
    if kind == "tenant":
        return c.tenant_id == ident
    if scope == "anonymous":
        return c.key_id.is_(None)
    raise ValueError(f"not a budget scope: {scope!r}")


async def ledger_spent(conn: Conn, scope: str, since: datetime) -> int:
    c = usage_ledger.c
    q = sa.select(sa.func.coalesce(sa.func.sum(c.cost_usd), 0.0)).where(
        c.created_at >= since, scope_filter(scope)
    )
    return to_nanos(float((await conn.execute(q)).scalar_one()))


# A hold whose run (or gateway call) has its ledger rows is spent, not held: the rows
# are committed with the run's outcome, the settle comes after, and in between the cost
# would count twice (refusing a request that fits).
_in_ledger = (
    sa.select(usage_ledger.c.run_id).where(usage_ledger.c.run_id == budget_holds.c.hold_id).exists()
)


class SqlBudgets(SqlStore):
    """``BudgetStore`` on dockyard's database (storage/budgets.py)."""

    def _insert(self, table: sa.Table) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    async def _lock(self, conn: Conn, names: Sequence[str], forget_at: datetime) -> None:
        ins = self._insert(budget_locks).on_conflict_do_nothing(index_elements=["line"])
        await conn.execute(ins, [{"line": n, "takes": 0, "forget_at": forget_at} for n in names])
        locks = budget_locks.c
        if self.dialect == "postgresql":
            await conn.execute(
                sa.select(locks.line)
                .where(locks.line.in_(names))
                .order_by(locks.line)
                .with_for_update()
            )
        else:
            await conn.execute(
                budget_locks.update().where(locks.line.in_(names)).values(takes=locks.takes + 1)
            )

    async def hold(
        self,
        hold_id: str,
        lines: Sequence[BudgetLine],
        amount: int,
        *,
        now: datetime,
        ttl: float,
    ) -> Shortfall | None:
        names = {line.name(now): line for line in lines}
        ordered = sorted(names)
        forget_at = max(period_end(line.period, now) for line in lines) + KEEP_HOLD_RECORD
        h = budget_holds.c
        async with self.engine.begin() as conn:
            await self._lock(conn, ordered, forget_at)
            taken = await conn.execute(sa.select(h.line).where(h.hold_id == hold_id).limit(1))
            if taken.first() is not None:
                raise ValueError(f"hold {hold_id!r} exists")
            for name in ordered:
                line = names[name]
                spent = await ledger_spent(conn, line.scope, period_start(line.period, now))
                held_q = sa.select(sa.func.coalesce(sa.func.sum(h.amount_nanos), 0)).where(
                    h.line == name, h.expires_at > now, ~_in_ledger
                )
                held = int((await conn.execute(held_q)).scalar_one())
                if spent + held + amount > line.limit:
                    return Shortfall(line, spent, held)
            expires_at = now + timedelta(seconds=ttl)
            keep = max(expires_at + KEEP_HOLD_RECORD, forget_at)
            await conn.execute(
                budget_holds.insert(),
                [
                    {
                        "hold_id": hold_id,
                        "line": name,
                        "scope": names[name].scope,
                        "period": names[name].period,
                        "limit_nanos": names[name].limit,
                        "amount_nanos": amount,
                        "expires_at": expires_at,
                        "forget_at": keep,
                    }
                    for name in ordered
                ],
            )
        return None

    async def settle(
        self, hold_id: str, cost: int, *, now: datetime, thresholds: Sequence[float]
    ) -> list[Crossing]:
        # The ledger already holds the cost: the hold only has to go.
        h = budget_holds.c
        out: list[Crossing] = []
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(h.scope, h.period, h.limit_nanos).where(h.hold_id == hold_id)
                )
            ).all()
            if not rows:
                return []
            await conn.execute(budget_holds.delete().where(h.hold_id == hold_id))
            for row in rows:
                period: Period = row.period
                line = BudgetLine(row.scope, period, int(row.limit_nanos))
                out += await self._crossings(conn, line, now, thresholds)
            # Rows of past periods and long-settled holds: nothing reads them any more.
            await conn.execute(budget_holds.delete().where(h.forget_at < now))
            await conn.execute(budget_locks.delete().where(budget_locks.c.forget_at < now))
        return out

    async def _crossings(
        self, conn: Conn, line: BudgetLine, now: datetime, thresholds: Sequence[float]
    ) -> list[Crossing]:
        start = period_start(line.period, now)
        spent = await ledger_spent(conn, line.scope, start)
        reached = [t for t in thresholds if spent >= t * line.limit]
        if not reached:
            return []
        name = line.name(now)
        # RETURNING, not rowcount: the PostgreSQL driver may not report one.
        ins = (
            self._insert(budget_marks)
            .on_conflict_do_nothing(index_elements=["line", "threshold"])
            .returning(budget_marks.c.line)
        )
        out = []
        for t in reached:
            done = await conn.execute(ins, {"line": name, "threshold": t, "created_at": now})
            if done.first() is not None:
                out.append(Crossing(line, t, spent, start))
        return out

    async def release(self, hold_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(budget_holds.delete().where(budget_holds.c.hold_id == hold_id))

    async def spent(self, line: BudgetLine, now: datetime) -> int:
        async with self.engine.connect() as conn:
            return await ledger_spent(conn, line.scope, period_start(line.period, now))

    async def ledger(self, scope: str, since: datetime) -> int:
        """The ledger's spend of ``scope`` since ``since`` (the Redis store seeds from it)."""
        async with self.engine.connect() as conn:
            return await ledger_spent(conn, scope, since)

    async def aclose(self) -> None:
        return None
