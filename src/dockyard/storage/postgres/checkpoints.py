"""PostgreSQL checkpoints: the deletes behind rollback on LangGraph's Postgres tables
(``storage.checkpoints.CheckpointAdmin``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard.storage.checkpoints import WriteKeys

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool


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
