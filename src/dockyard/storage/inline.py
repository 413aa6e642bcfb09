"""SQLite without thread hops: the same async interface, executed inline.

An embedded SQLite statement takes tens of microseconds; handing it to a driver
thread and back through a busy event loop (aiosqlite) costs a millisecond or
more, several times per transaction. So for SQLite dockyard runs each
transaction synchronously in the event loop: ``InlineEngine`` looks like
SQLAlchemy's ``AsyncEngine`` to the SQL backend, but nothing it awaits ever
suspends, which also makes every transaction atomic with respect to other
coroutines. PostgreSQL uses the real ``AsyncEngine`` with the same code.

The shared SQL stores (``storage.sql``) and ``Storage`` are typed against this
engine, so it is shared rather than part of ``storage.sqlite``, which opens it (the
inline checkpointer is ``storage.sqlite.checkpoints``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


class InlineConnection:
    def __init__(self, conn: sa.Connection) -> None:
        self.sync_connection = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> sa.CursorResult[Any]:
        return self.sync_connection.execute(statement, parameters)

    async def run_sync(self, fn: Callable[[sa.Connection], T]) -> T:
        return fn(self.sync_connection)


class InlineEngine:
    def __init__(self, engine: sa.Engine) -> None:
        self.sync_engine = engine
        self.dialect = engine.dialect

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[InlineConnection]:
        with self.sync_engine.begin() as conn:
            yield InlineConnection(conn)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[InlineConnection]:
        with self.sync_engine.connect() as conn:
            yield InlineConnection(conn)

    async def dispose(self) -> None:
        self.sync_engine.dispose()
