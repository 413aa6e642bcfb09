"""Budget holds in SQL (SQLite and PostgreSQL): atomic across processes through a lock row
per budget line and period.

A hold is one transaction: make sure each line's lock row exists, lock them (an upsert in
name order, so two holders of overlapping lines never deadlock; SQLite: the database's
write lock), then read each line's spend and live holds, and write the hold only if
every line has room. Everything read after the lock sees every hold and settle committed
before it, so two holders never both take the last room.

Spend is a counter on the line's lock row, as in the Redis and memory stores: read from
the usage ledger the first time the line is used in its period, then raised by each
settle in the same transaction that drops the hold, so a cost never counts twice and a
hold costs a few indexed statements however long the ledger grows (summing the ledger
per hold grew with every call: 1.8 ms more per 1,000 rows of the day). A settle lost
with its process leaves that cost out of the counter until the period ends (the ledger
still has it: `dockyard usage` and the next period are right).
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
from dockyard.storage.sql._common import Conn, P, SqlStore
from dockyard.storage.tables import budget_holds, budget_locks, budget_marks, usage_ledger

# How long a hold's row (not its amount) outlives its ttl: a run settled later than its
# hold lasted still finds the budgets it was on.
KEEP_HOLD_RECORD = timedelta(days=2)


_L, _H, _LOCKS = usage_ledger.c, budget_holds.c, budget_locks.c
_SPENT = sa.func.coalesce(sa.func.sum(_L.cost_usd), 0.0)
_KINDS = ("key", "tenant", "anonymous")


def _ledger_sum(kind: str, i: int | str = "") -> Any:
    """The ledger's spend of a kind of scope since ``:since<i>`` (``:ident<i>`` names it)."""
    where = {
        "key": _L.key_id == P(f"ident{i}"),
        "tenant": _L.tenant_id == P(f"ident{i}"),
        "anonymous": _L.key_id.is_(None),
    }[kind]
    return sa.select(_SPENT).where(_L.created_at >= P(f"since{i}"), where).scalar_subquery()


def _held(i: int) -> Any:
    return (
        sa.select(sa.func.coalesce(sa.func.sum(_H.amount_nanos), 0))
        .where(_H.line == P(f"line{i}"), _H.expires_at > P("now"))
        .scalar_subquery()
    )


def _counter(i: int) -> Any:
    return sa.select(_LOCKS.spent_nanos).where(_LOCKS.line == P(f"line{i}")).scalar_subquery()


# Statements are built once with bind parameters (a hold is on every run's admission).
# The (spent counter, held) of every line of a hold in one round trip, per line count:
_ROOM: dict[int, Any] = {}


def _room(n: int) -> Any:
    stmt = _ROOM.get(n)
    if stmt is None:
        stmt = _ROOM[n] = sa.select(*(c for i in range(n) for c in (_counter(i), _held(i))))
    return stmt


_SEED = budget_locks.update().where(_LOCKS.line == P("b_line")).values(spent_nanos=P("b_spent"))
_ADD = (
    budget_locks.update()
    .where(_LOCKS.line == P("b_line"), _LOCKS.spent_nanos.is_not(None))
    .values(spent_nanos=_LOCKS.spent_nanos + P("b_cost"))
    .returning(_LOCKS.spent_nanos)
)
_READ = sa.select(_LOCKS.spent_nanos).where(_LOCKS.line == P("b_line"))


_SPENT_ONLY = {k: sa.select(_ledger_sum(k)) for k in _KINDS}
_INSERT_HOLD = budget_holds.insert()
_LINES_OF = sa.select(_H.scope, _H.period, _H.limit_nanos).where(_H.hold_id == P("hold_id"))
_DROP_HOLD = budget_holds.delete().where(_H.hold_id == P("hold_id"))
_FORGET_HOLDS = budget_holds.delete().where(_H.forget_at < P("now"))
_FORGET_LOCKS = budget_locks.delete().where(_LOCKS.forget_at < P("now"))
_SWEEP_EVERY = timedelta(minutes=1)


def _scope_kind(scope: str) -> tuple[str, str]:
    """(kind, id) of a budget scope: ``key:k1`` → (key, k1); ``anonymous`` → (anonymous, '')."""
    if scope == "anonymous":
        return scope, ""
    kind, _, ident = scope.partition(":")
    if kind not in ("key", "tenant") or not ident:
        raise ValueError(f"not a budget scope: {scope!r}")
    return kind, ident


async def ledger_spent(conn: Conn, scope: str, since: datetime) -> int:
    kind, ident = _scope_kind(scope)
    stmt = _SPENT_ONLY[kind]
    return to_nanos(
        float((await conn.execute(stmt, {"ident": ident, "since": since})).scalar_one())
    )


def _line(row: Any) -> BudgetLine:
    period: Period = row.period
    return BudgetLine(row.scope, period, int(row.limit_nanos))


class SqlBudgets(SqlStore):
    """``BudgetStore`` on dockyard's database (storage/budgets.py)."""

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self._insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        # RETURNING, not rowcount: the PostgreSQL driver may not report one.
        self._insert_mark = (
            self._insert(budget_marks)
            .on_conflict_do_nothing(index_elements=["line", "threshold"])
            .returning(budget_marks.c.line)
        )
        self._swept_at: datetime | None = None
        self._locks: dict[int, Any] = {}

    def _lock_stmt(self, n: int) -> Any:
        stmt = self._locks.get(n)
        if stmt is None:  # built once per line count, with bind parameters
            forget = P("b_forget_at", type_=budget_locks.c.forget_at.type)
            rows = [{"line": P(f"b_name{i}"), "takes": 0, "forget_at": forget} for i in range(n)]
            stmt = self._locks[n] = (
                self._insert(budget_locks)
                .values(rows)
                .on_conflict_do_update(index_elements=["line"], set_={"takes": _LOCKS.takes + 1})
            )
        return stmt

    async def _lock(self, conn: Conn, names: Sequence[str], forget_at: datetime) -> None:
        """Create or update each line's lock row, which takes its lock to the end of the
        transaction: PostgreSQL's row locks, in the order given (by name: two holders of
        overlapping lines never deadlock); SQLite's write lock on the database."""
        params: dict[str, Any] = {f"b_name{i}": name for i, name in enumerate(names)}
        params["b_forget_at"] = forget_at
        await conn.execute(self._lock_stmt(len(names)), params)

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
        params: dict[str, Any] = {"now": now}
        for i, name in enumerate(ordered):
            params[f"line{i}"] = name
        expires_at = now + timedelta(seconds=ttl)
        keep = max(expires_at + KEEP_HOLD_RECORD, forget_at)
        rows = [
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
        ]
        try:
            async with self.engine.begin() as conn:
                await self._lock(conn, ordered, forget_at)
                room = (await conn.execute(_room(len(ordered)), params)).one()
                for i, name in enumerate(ordered):
                    spent = room[2 * i]
                    if spent is None:  # the line's first use in its period
                        spent = await self._seed(conn, names[name], now)
                    spent, held = int(spent), int(room[2 * i + 1])
                    if spent + held + amount > names[name].limit:
                        return Shortfall(names[name], spent, held)
                await conn.execute(_INSERT_HOLD, rows)
        except sa.exc.IntegrityError:
            raise ValueError(f"hold {hold_id!r} exists") from None
        return None

    async def _seed(self, conn: Conn, line: BudgetLine, now: datetime) -> int:
        """The line's counter from the ledger, the first time it is used in its period
        (its lock row is locked by the caller's transaction)."""
        spent = await ledger_spent(conn, line.scope, period_start(line.period, now))
        await conn.execute(_SEED, {"b_line": line.name(now), "b_spent": spent})
        return spent

    async def settle(
        self, hold_id: str, cost: int, *, now: datetime, thresholds: Sequence[float]
    ) -> list[Crossing]:
        # The hold goes and its cost joins the spend of the period holding `now` (where
        # its ledger rows are), in one transaction.
        out: list[Crossing] = []
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_LINES_OF, {"hold_id": hold_id})).all()
            if not rows:
                return []
            await conn.execute(_DROP_HOLD, {"hold_id": hold_id})
            # In name order, as holds lock them: the UPDATE takes the row's lock.
            for line in sorted((_line(row) for row in rows), key=lambda x: x.name(now)):
                added = (
                    await conn.execute(_ADD, {"b_line": line.name(now), "b_cost": cost})
                ).first()
                if added is not None:
                    spent = int(added[0])
                else:
                    # No counter yet (a hold of an earlier period): the ledger has the cost.
                    forget_at = period_end(line.period, now) + KEEP_HOLD_RECORD
                    await self._lock(conn, [line.name(now)], forget_at)
                    spent = await self._seed(conn, line, now)
                out += await self._crossings(conn, line, now, thresholds, spent)
            if self._swept_at is None or now - self._swept_at > _SWEEP_EVERY:
                # Rows of past periods and long-settled holds: nothing reads them any more.
                self._swept_at = now
                await conn.execute(_FORGET_HOLDS, {"now": now})
                await conn.execute(_FORGET_LOCKS, {"now": now})
        return out

    async def _crossings(
        self,
        conn: Conn,
        line: BudgetLine,
        now: datetime,
        thresholds: Sequence[float],
        spent: int,
    ) -> list[Crossing]:
        start = period_start(line.period, now)
        out = []
        for t in thresholds:
            if spent < t * line.limit:
                continue
            mark = {"line": line.name(now), "threshold": t, "created_at": now}
            if (await conn.execute(self._insert_mark, mark)).first() is not None:
                out.append(Crossing(line, t, spent, start))
        return out

    async def release(self, hold_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(_DROP_HOLD, {"hold_id": hold_id})

    async def spent(self, line: BudgetLine, now: datetime) -> int:
        async with self.engine.connect() as conn:
            counter = (await conn.execute(_READ, {"b_line": line.name(now)})).scalar()
            if counter is not None:
                return int(counter)
            return await ledger_spent(conn, line.scope, period_start(line.period, now))

    async def lines(self, hold_id: str) -> list[BudgetLine]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_LINES_OF, {"hold_id": hold_id})).all()
        return [_line(row) for row in rows]

    async def ledger(self, scope: str, since: datetime) -> int:
        """The ledger's spend of ``scope`` since ``since`` (the Redis store seeds from it)."""
        async with self.engine.connect() as conn:
            return await ledger_spent(conn, scope, since)

    async def aclose(self) -> None:
        return None
