"""Connection checks for the PostgreSQL pools that cost nothing under load.

A pool that checks every connection on checkout (SQLAlchemy's ``pool_pre_ping``,
psycopg_pool's ``check_connection``) pays one round trip per checkout: five per run
in the worker layout. A connection that was in use a moment ago is as alive as a
ping could tell, so only one that sat idle longer than ``IDLE_CHECK_SECONDS`` is
pinged. A server restart under load is still handled: the statement that meets a
dead connection fails (it was in flight) and SQLAlchemy then invalidates every
connection checked out before it; psycopg_pool discards a broken connection when
it comes back.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

IDLE_CHECK_SECONDS = 1.0
_RETURNED_AT = "dockyard_returned_at"


def ping_idle_connections(engine: AsyncEngine, idle: float = IDLE_CHECK_SECONDS) -> None:
    """Ping a connection on checkout only when it was idle in the pool for ``idle`` s."""
    sync_engine = engine.sync_engine

    @sa.event.listens_for(sync_engine, "connect")
    def _connected(dbapi_conn: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @sa.event.listens_for(sync_engine, "checkin")
    def _returned(dbapi_conn: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @sa.event.listens_for(sync_engine, "checkout")
    def _check(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get(_RETURNED_AT, 0.0) <= idle:
            return
        try:
            # Runs inside SQLAlchemy's greenlet, like pool_pre_ping does.
            sync_engine.dialect.do_ping(dbapi_conn)
        except Exception as e:
            # The pool drops this connection and checks out another.
            raise sa.exc.DisconnectionError(f"idle connection is dead: {e}") from e


class IdleCheck:
    """``check`` and ``reset`` callbacks for a psycopg_pool pool, with the same rule."""

    def __init__(self, idle: float = IDLE_CHECK_SECONDS) -> None:
        self.idle = idle
        self._returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    async def check(self, conn: Any) -> None:
        if time.monotonic() - self._returned.get(conn, 0.0) <= self.idle:
            return
        from psycopg_pool import AsyncConnectionPool

        await AsyncConnectionPool.check_connection(conn)

    async def reset(self, conn: Any) -> None:
        self._returned[conn] = time.monotonic()
