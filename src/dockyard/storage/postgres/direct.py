"""The per-run statements on PostgreSQL, executed by psycopg without SQLAlchemy's asyncio layer.

The statements are still built with SQLAlchemy Core (and compiled by its psycopg
dialect, once each); only their execution goes straight to a psycopg pool. Measured
on this project's 2-core machine (``SELECT 1``, one process): 560-1100 µs of CPU per
statement through ``AsyncEngine`` (greenlet hops, result processing, transaction
bookkeeping), 250 µs through a psycopg pool. A worker-layout run executes 3-5 such
statements, and the layout is CPU-bound, so this is the difference in throughput.

Only single statements on autocommit connections go this way; transactions,
searches and admin work stay on the engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement as Executable

_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class _Plan:
    sql: str
    defaults: dict[str, Any]  # values of the binds the statement carries itself
    json: frozenset[str]  # binds that take a JSON document
    names: frozenset[str]


def _plan(stmt: Executable, columns: tuple[str, ...] | None) -> _Plan:
    # columns: an UPDATE/INSERT without .values() sets these (SQLAlchemy takes them
    # from the parameters' keys; here they are part of the plan's key).
    compiled = cast(
        SQLCompiler,
        stmt.compile(dialect=_DIALECT, column_keys=list(columns) if columns else None),
    )
    if compiled.positiontup:
        raise TypeError("direct statements need named parameters")
    sql = str(compiled)
    if "POSTCOMPILE" in sql:
        raise TypeError("direct statements cannot use expanding IN parameters")
    binds = compiled.binds
    defaults = {name: b.value for name, b in binds.items() if not b.required and b.callable is None}
    json = frozenset(name for name, b in binds.items() if isinstance(b.type, sa.JSON))
    return _Plan(sql, defaults, json, frozenset(binds))


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    # The server answers in its session time zone; dockyard's rows carry UTC.
    for k, v in row.items():
        if type(v) is datetime:
            row[k] = v.astimezone(UTC)
    return row


class DirectPg:
    """Execute SQLAlchemy Core statements on a psycopg pool of autocommit connections."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool
        # Keyed by id() but holding the statement too, so an id is never reused;
        # statements are module constants, so this stays small.
        self._plans: dict[tuple[int, tuple[str, ...] | None], tuple[Executable, _Plan]] = {}

    def _params(
        self, stmt: Executable, params: dict[str, Any], columns: tuple[str, ...] | None
    ) -> tuple[str, dict[str, Any]]:
        key = (id(stmt), columns)
        entry = self._plans.get(key)
        if entry is None:
            entry = self._plans[key] = (stmt, _plan(stmt, columns))
        plan = entry[1]
        values = {**plan.defaults, **params}
        missing = plan.names - values.keys()
        if missing:
            raise TypeError(f"missing parameters: {', '.join(sorted(missing))}")
        for name in plan.json:
            v = values[name]
            if v is not None:
                values[name] = Jsonb(v)
        return plan.sql, values

    @contextlib.asynccontextmanager
    async def _cursor(
        self, stmt: Executable, params: dict[str, Any], columns: tuple[str, ...] | None
    ) -> AsyncIterator[psycopg.AsyncCursor[Any]]:
        """A cursor that has executed ``stmt``; constraint violations surface as
        SQLAlchemy's IntegrityError, as on the engine path."""
        sql, values = self._params(stmt, params, columns)
        try:
            async with self.pool.connection() as conn, conn.cursor() as cur:
                await cur.execute(sql, values)
                yield cur
        except psycopg.IntegrityError as e:
            raise sa.exc.IntegrityError(sql, None, e) from e

    async def fetch(
        self,
        stmt: Executable,
        params: dict[str, Any],
        columns: tuple[str, ...] | None = None,
    ) -> list[dict[str, Any]]:
        async with self._cursor(stmt, params, columns) as cur:
            return [_utc(r) for r in await cur.fetchall()]

    async def execute(
        self,
        stmt: Executable,
        params: dict[str, Any],
        columns: tuple[str, ...] | None = None,
    ) -> int:
        """Run a statement without result rows; the number of rows it touched."""
        async with self._cursor(stmt, params, columns) as cur:
            return int(cur.rowcount)
