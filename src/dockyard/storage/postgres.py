"""The PostgreSQL backend: dockyard's tables (same Alembic migrations), LangGraph's
Postgres checkpointer and store, all on psycopg 3 connection pools."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import create_async_engine

from dockyard.errors import ConfigError
from dockyard.settings import Settings
from dockyard.storage.checkpoints import WriteKeys

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from dockyard.storage.database import Storage


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
    """LangGraph's Postgres store compares ``$gt``/``$lt`` filter values as text
    (so 100 < 3); numbers are compared as numbers here, as on the SQLite store."""

    class NumericFilterStore(store_cls):  # type: ignore[misc, valid-type]
        def _get_filter_condition(self, key: str, op: str, value: Any) -> tuple[str, list[Any]]:
            if op in _COMPARE and isinstance(value, int | float) and not isinstance(value, bool):
                return (
                    f"(jsonb_typeof(value->%s) = 'number' AND "
                    f"(value->>%s)::numeric {_COMPARE[op]} %s)",
                    [key, key, value],
                )
            result: tuple[str, list[Any]] = super()._get_filter_condition(key, op, value)
            return result

    return NumericFilterStore


@contextlib.asynccontextmanager
async def open_postgres(settings: Settings) -> AsyncIterator[Storage]:
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from langgraph.store.postgres.aio import AsyncPostgresStore
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool
    except ImportError:
        raise ConfigError(
            'database_url: PostgreSQL needs the postgres extra: pip install "dockyard[postgres]"'
        ) from None
    from dockyard.storage.database import Storage, migrate
    from dockyard.storage.sql import SqlAssistants, SqlRuns, SqlThreads

    assert settings.database_url is not None
    size = settings.database_pool_size
    engine = create_async_engine(
        sqlalchemy_url(settings.database_url),
        pool_size=size,
        max_overflow=size,
        pool_pre_ping=True,  # a restarted server's dead connections are replaced
    )
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        libpq_url(settings.database_url),
        min_size=1,
        max_size=size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
        check=AsyncConnectionPool.check_connection,
    )
    try:
        await migrate(engine)
        await pool.open(wait=True, timeout=30)
        checkpointer = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        await checkpointer.setup()
        ttl = settings.store.ttl.model_dump(exclude_none=True)
        if settings.store.index is not None:
            raise ConfigError(
                "store.index on PostgreSQL needs pgvector; this build does not set it up yet "
                "(remove store.index, or use the SQLite default)"
            )
        store = _numeric_filters(AsyncPostgresStore)(pool, ttl=ttl)  # type: ignore[arg-type]
        await store.setup()
        if settings.store.ttl.sweep_interval_minutes:
            await store.start_ttl_sweeper()
        try:
            yield Storage(
                engine=engine,
                assistants=SqlAssistants(engine),
                threads=SqlThreads(engine),
                runs=SqlRuns(engine),
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
