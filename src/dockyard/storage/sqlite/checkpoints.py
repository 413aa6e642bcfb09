"""SQLite checkpoints: LangGraph's saver run inline in the event loop, and the deletes
behind rollback (``storage.checkpoints.CheckpointAdmin``)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.sqlite import SqliteSaver

from dockyard.storage.checkpoints import WriteKeys


class InlineSqliteSaver(SqliteSaver):
    """LangGraph's SQLite checkpointer with its async methods run inline."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def aget_delta_channel_history(self, *args: Any, **kwargs: Any) -> Any:
        return self.get_delta_channel_history(*args, **kwargs)


def sqlite_connect(path: str) -> sqlite3.Connection:
    # Default isolation: SqliteSaver's commit() then ends one transaction per call.
    conn = sqlite3.connect(path, check_same_thread=False)
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA busy_timeout=30000",
    ):
        conn.execute(pragma)
    return conn


class SqliteCheckpointAdmin:
    def __init__(self, conn: sqlite3.Connection) -> None:
        # The inline checkpointer's connection: statements run in the event loop.
        self.conn = conn

    async def pending_write_keys(self, thread_id: str) -> WriteKeys:
        row = self.conn.execute(
            "SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ''",
            (thread_id,),
        ).fetchone()
        checkpoint_id = row[0] if row else None
        if checkpoint_id is None:
            return None, frozenset()
        keys = self.conn.execute(
            "SELECT task_id, idx FROM writes WHERE thread_id = ? AND checkpoint_ns = '' "
            "AND checkpoint_id = ?",
            (thread_id, checkpoint_id),
        ).fetchall()
        return checkpoint_id, frozenset((t, i) for t, i in keys)

    async def delete_run(self, thread_id: str, run_id: str, start: WriteKeys | None) -> None:
        if start is not None and start[0] is not None:
            # A resumed or continued run leaves its resume value and finished
            # tasks as pending writes on the checkpoint it started from.
            start_id, keep = start
            added = [
                (t, i)
                for t, i in self.conn.execute(
                    "SELECT task_id, idx FROM writes WHERE thread_id = ? AND checkpoint_ns = '' "
                    "AND checkpoint_id = ?",
                    (thread_id, start_id),
                ).fetchall()
                if (t, i) not in keep
            ]
            self.conn.executemany(
                "DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = '' "
                "AND checkpoint_id = ? AND task_id = ? AND idx = ?",
                [(thread_id, start_id, t, i) for t, i in added],
            )
        # LangGraph copies config["metadata"] (where dockyard puts run_id) into
        # every checkpoint's metadata.
        ids = (
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? "
            "AND json_extract(CAST(metadata AS TEXT), '$.run_id') = ?"
        )
        self.conn.execute(
            f"DELETE FROM writes WHERE thread_id = ? AND checkpoint_id IN ({ids})",
            (thread_id, thread_id, run_id),
        )
        self.conn.execute(
            f"DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id IN ({ids})",
            (thread_id, thread_id, run_id),
        )
        self.conn.commit()

    async def keep_latest(self, thread_id: str) -> None:
        latest = (
            "SELECT checkpoint_ns, MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ? "
            "GROUP BY checkpoint_ns"
        )
        for table in ("writes", "checkpoints"):
            self.conn.execute(
                f"DELETE FROM {table} WHERE thread_id = ? AND "
                f"(checkpoint_ns, checkpoint_id) NOT IN ({latest})",
                (thread_id, thread_id),
            )
        self.conn.commit()

    async def ping(self) -> None:
        self.conn.execute("SELECT 1").fetchone()
