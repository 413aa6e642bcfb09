"""What dockyard needs from checkpoints beyond LangGraph's saver protocol.

LangGraph's ``BaseCheckpointSaver`` reads and writes; rolling a thread back
(multitask ``rollback``) and copying a thread need backend-specific deletes.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointMetadata


class CheckpointAdmin(Protocol):
    async def delete_run(self, thread_id: str, run_id: str) -> None:
        """Remove the checkpoints (and their writes) that run ``run_id`` made."""
        ...

    async def keep_latest(self, thread_id: str) -> None:
        """Remove every checkpoint of the thread but the newest (per namespace)."""
        ...

    async def ping(self) -> None: ...


class SqliteCheckpointAdmin:
    def __init__(self, conn: sqlite3.Connection) -> None:
        # The inline checkpointer's connection: statements run in the event loop.
        self.conn = conn

    async def delete_run(self, thread_id: str, run_id: str) -> None:
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


async def copy_thread(
    saver: BaseCheckpointSaver[Any], source_thread_id: str, target_thread_id: str
) -> None:
    """Copy every checkpoint (all namespaces) and pending write of a thread, oldest first."""
    tuples = [t async for t in saver.alist({"configurable": {"thread_id": source_thread_id}})]
    for tup in reversed(tuples):
        conf = tup.config["configurable"]
        ns = conf.get("checkpoint_ns", "")
        parent = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
        target: dict[str, Any] = {
            "configurable": {"thread_id": target_thread_id, "checkpoint_ns": ns}
        }
        if parent is not None:
            target["configurable"]["checkpoint_id"] = parent
        new_versions = dict(tup.checkpoint.get("channel_versions", {}))
        metadata = cast(CheckpointMetadata, {**tup.metadata, "thread_id": target_thread_id})
        saved = await saver.aput(
            cast(RunnableConfig, target), tup.checkpoint, metadata, new_versions
        )
        if tup.pending_writes:
            by_task: dict[str, list[tuple[str, Any]]] = {}
            for task_id, channel, value in tup.pending_writes:
                by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                await saver.aput_writes(saved, writes, task_id)
