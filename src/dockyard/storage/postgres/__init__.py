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
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from dockyard.extras import require_extra
from dockyard.settings import Settings
from dockyard.storage.checkpoints import WriteKeys
from dockyard.storage.common import Storage, index_config, migrate
from dockyard.storage.postgres.pool import IdleCheck, ping_idle_connections

if TYPE_CHECKING:
    from langgraph.store.postgres.aio import AsyncPostgresStore
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("dockyard.storage")

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


class PostgresCheckpointAdmin:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    async def pending_write_keys(self, thread_id: str) -> WriteKeys:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT MAX(checkpoint_id) AS id FROM checkpoints "
                "WHERE thread_id = %s AND checkpoint_ns = ''",
                (thread_id,),
            )
            row = await cur.fetchone()
            checkpoint_id = row["id"] if row else None
            if checkpoint_id is None:
                return None, frozenset()
            cur = await conn.execute(
                "SELECT task_id, idx FROM checkpoint_writes WHERE thread_id = %s "
                "AND checkpoint_ns = '' AND checkpoint_id = %s",
                (thread_id, checkpoint_id),
            )
            keys = frozenset((r["task_id"], r["idx"]) for r in await cur.fetchall())
        return checkpoint_id, keys

    async def delete_run(self, thread_id: str, run_id: str, start: WriteKeys | None) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            if start is not None and start[0] is not None:
                start_id, keep = start
                cur = await conn.execute(
                    "SELECT task_id, idx FROM checkpoint_writes WHERE thread_id = %s "
                    "AND checkpoint_ns = '' AND checkpoint_id = %s",
                    (thread_id, start_id),
                )
                for r in await cur.fetchall():
                    if (r["task_id"], r["idx"]) not in keep:
                        await conn.execute(
                            "DELETE FROM checkpoint_writes WHERE thread_id = %s "
                            "AND checkpoint_ns = '' AND checkpoint_id = %s AND task_id = %s "
                            "AND idx = %s",
                            (thread_id, start_id, r["task_id"], r["idx"]),
                        )
            ids = (
                "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s "
                "AND metadata->>'run_id' = %s"
            )
            for table in ("checkpoint_writes", "checkpoints"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_id IN ({ids})",
                    (thread_id, thread_id, run_id),
                )

    async def keep_latest(self, thread_id: str) -> None:
        latest = (
            "SELECT checkpoint_ns, MAX(checkpoint_id) FROM checkpoints WHERE thread_id = %s "
            "GROUP BY checkpoint_ns"
        )
        async with self.pool.connection() as conn, conn.transaction():
            for table in ("checkpoint_writes", "checkpoints"):
                await conn.execute(
                    f"DELETE FROM {table} WHERE thread_id = %s AND "
                    f"(checkpoint_ns, checkpoint_id) NOT IN ({latest})",
                    (thread_id, thread_id),
                )

    async def ping(self) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")


_COMPARE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _numeric_filters(store_cls: Any) -> Any:
    """LangGraph's Postgres store compares ``$gt``/``$lt`` filter values as text, of
    any JSON type (so 100 < 3, and 5 < "b"); here numbers compare as numbers and
    strings as strings (by code point, whatever the database's collation), each with
    values of its own type only, as on the SQLite store (storage.sqlite.store)."""

    class NumericFilterStore(store_cls):  # type: ignore[misc, valid-type]
        def _get_filter_condition(self, key: str, op: str, value: Any) -> tuple[str, list[Any]]:
            if op in _COMPARE and isinstance(value, int | float) and not isinstance(value, bool):
                return (
                    f"(jsonb_typeof(value->%s) = 'number' AND "
                    f"(value->>%s)::numeric {_COMPARE[op]} %s)",
                    [key, key, value],
                )
            if op in _COMPARE and isinstance(value, str):
                return (
                    f"(jsonb_typeof(value->%s) = 'string' AND "
                    f'(value->>%s) COLLATE "C" {_COMPARE[op]} %s)',
                    [key, key, value],
                )
            result: tuple[str, list[Any]] = super()._get_filter_condition(key, op, value)
            return result

    return NumericFilterStore


def build_store(
    pool: AsyncConnectionPool[Any], settings: Settings, *, pgvector: bool
) -> AsyncPostgresStore:
    """The store for these settings: LangGraph's own (with its pgvector index when
    ``store.index`` is set and pgvector is usable), else dockyard's exact-scan fallback."""
    from langgraph.store.postgres.aio import AsyncPostgresStore

    from dockyard.storage.postgres.vector import ExactScanPostgresStore

    ttl = settings.store.ttl.model_dump(exclude_none=True)
    index = index_config(settings)
    base = AsyncPostgresStore if index is None or pgvector else ExactScanPostgresStore
    store: AsyncPostgresStore = _numeric_filters(base)(pool, index=index, ttl=ttl)
    return store


async def open_postgres_store(
    pool: AsyncConnectionPool[Any], settings: Settings
) -> AsyncPostgresStore:
    from dockyard.storage.postgres.vector import (
        ENABLE_HINT,
        adopt_fallback_vectors,
        detect_pgvector,
    )

    index = settings.store.index
    if index is None:
        store = build_store(pool, settings, pgvector=False)
        await store.setup()
        return store
    status = await detect_pgvector(pool)
    store = build_store(pool, settings, pgvector=status.available)
    await store.setup()
    if status.available:
        try:
            copied = await adopt_fallback_vectors(pool, index.dims)
        except Exception as e:  # the store works without the old vectors; say what to do
            log.warning(
                "store.index: could not copy the vectors of dockyard's exact-scan fallback "
                "(table dockyard_store_vectors) into pgvector's store_vectors: %s; items put "
                "before pgvector was enabled are not found by semantic search until put again",
                e,
            )
        else:
            if copied:
                log.info("store.index: copied %d fallback vectors into pgvector", copied)
        log.info("store.index: semantic search uses pgvector (%s)", status.detail)
    else:
        log.warning(
            "store.index: %s; semantic search uses dockyard's exact-scan fallback, which "
            "compares the query with every stored vector under the searched namespace "
            "(cost grows with items x dims; no index); %s",
            status.detail,
            ENABLE_HINT,
        )
    return store


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
    from dockyard.storage.sql import SqlAssistants, SqlCrons, SqlRuns, SqlThreads

    assert settings.database_url is not None
    size = settings.database_pool_size
    engine = create_async_engine(
        sqlalchemy_url(settings.database_url),
        pool_size=size,
        max_overflow=size,
        pool_timeout=settings.database_pool_timeout,
    )
    ping_idle_connections(engine)
    idle_check = IdleCheck()
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        libpq_url(settings.database_url),
        min_size=1,
        max_size=size,
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
            )
        finally:
            with contextlib.suppress(Exception):
                await store.stop_ttl_sweeper()
    finally:
        await pool.close()
        await engine.dispose()
