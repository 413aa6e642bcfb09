"""The PostgreSQL backend: dockyard's tables (same Alembic migrations), LangGraph's
Postgres checkpointer and store, all on psycopg 3 connection pools.

``open`` is the backend's one entry point; ``storage.database`` calls it. The optional
packages (psycopg, psycopg_pool, LangGraph's Postgres checkpointer and store) are
imported when it runs, never when this package is imported, so a plain install without
the ``postgres`` extra imports it and serves SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from dockyard.extras import require_extra
from dockyard.settings import Settings
from dockyard.storage.common import Storage, migrate
from dockyard.storage.postgres.checkpoints import PostgresCheckpointAdmin
from dockyard.storage.postgres.pool import IdleCheck, ping_idle_connections
from dockyard.storage.postgres.store import open_postgres_store

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

__all__ = ["open"]


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` (what users and libpq write) → SQLAlchemy's psycopg 3 dialect."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def libpq_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgresql+") else url


# Advisory lock key: any constant unlikely to collide with an application's.
_SETUP_TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(6868227920127252833)")
_SETUP_UNLOCK = sa.text("SELECT pg_advisory_unlock(6868227920127252833)")


async def _setup_lock(conn: AsyncConnection) -> None:
    """Take the set-up lock, polling outside any transaction.

    LangGraph's migrations run CREATE INDEX CONCURRENTLY, which waits for every
    open transaction to end, so neither the holder nor the waiters may sit in
    one (a blocking pg_advisory_lock call would deadlock with it).
    """
    await conn.execution_options(isolation_level="AUTOCOMMIT")
    while not (await conn.execute(_SETUP_TRY_LOCK)).scalar_one():  # noqa: ASYNC110
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def open(settings: Settings) -> AsyncIterator[Storage]:
    require_extra("postgres", "database_url (PostgreSQL)")
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    from dockyard.storage.postgres.direct import DirectPg
    from dockyard.storage.sql import (
        SqlAssistants,
        SqlCrons,
        SqlEvals,
        SqlKeys,
        SqlPrompts,
        SqlRollouts,
        SqlRuns,
        SqlThreads,
        SqlUsage,
    )

    assert settings.database_url is not None
    size = settings.database_pool_size
    overflow = settings.database_max_overflow
    recycle = settings.database_pool_recycle_seconds
    engine = create_async_engine(
        sqlalchemy_url(settings.database_url),
        pool_size=size,
        max_overflow=size if overflow is None else overflow,
        pool_timeout=settings.database_pool_timeout,
        pool_recycle=-1 if recycle is None else int(recycle),
    )
    ping_idle_connections(engine)
    idle_check = IdleCheck()
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        libpq_url(settings.database_url),
        min_size=1,
        max_size=size + (overflow or 0),
        # psycopg_pool's own default (an hour) unless recycling is asked for.
        max_lifetime=3600.0 if recycle is None else recycle,
        open=False,
        kwargs={
            "autocommit": True,
            # psycopg prepares a query on its 5th execution on a connection.
            "prepare_threshold": 5 if settings.database_prepared_statements else None,
            "row_factory": dict_row,
        },
        check=idle_check.check,
        reset=idle_check.reset,
        # While the server is away a request fails after this long (503), not 30 s.
        timeout=settings.database_pool_timeout,
    )
    try:
        await pool.open(wait=True, timeout=30)
        checkpointer = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        direct = DirectPg(pool)
        # API and worker processes often start together on a fresh database:
        # one at a time creates the tables, the others then find them done.
        async with engine.connect() as lock:
            await _setup_lock(lock)
            try:
                await migrate(engine)
                await checkpointer.setup()
                store = await open_postgres_store(pool, settings)
            finally:
                await lock.execute(_SETUP_UNLOCK)
        if settings.store.ttl.sweep_interval_minutes:
            await store.start_ttl_sweeper()
        try:
            yield Storage(
                engine=engine,
                assistants=SqlAssistants(engine, direct=direct),
                threads=SqlThreads(engine, direct),
                runs=SqlRuns(engine, direct),
                crons=SqlCrons(engine),
                checkpointer=checkpointer,
                checkpoint_admin=PostgresCheckpointAdmin(pool),
                store=store,
                backend="postgres",
                usage=SqlUsage(engine),
                keys=SqlKeys(engine),
                prompts=SqlPrompts(engine),
                evals=SqlEvals(engine),
                rollouts=SqlRollouts(engine),
            )
        finally:
            with contextlib.suppress(Exception):
                await store.stop_ttl_sweeper()
    finally:
        await pool.close()
        await engine.dispose()
