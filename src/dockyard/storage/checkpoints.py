"""What dockyard needs from checkpoints beyond LangGraph's saver protocol.

LangGraph's ``BaseCheckpointSaver`` reads and writes; rolling a thread back
(multitask ``rollback``) and copying a thread need backend-specific deletes.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Protocol, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointMetadata

WriteKeys = tuple[str | None, frozenset[tuple[str, int]]]
"""The thread's newest root checkpoint id and the (task_id, idx) of its pending writes."""


class CheckpointAdmin(Protocol):
    async def pending_write_keys(self, thread_id: str) -> WriteKeys:
        """What a run starts from, so a rollback can put it back exactly."""
        ...

    async def delete_run(self, thread_id: str, run_id: str, start: WriteKeys | None) -> None:
        """Remove the checkpoints (and their writes) that run ``run_id`` made, and the
        pending writes it added to the checkpoint it started from (``start``)."""
        ...

    async def keep_latest(self, thread_id: str) -> None:
        """Remove every checkpoint of the thread but the newest (per namespace)."""
        ...

    async def ping(self) -> None: ...


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
