"""What dockyard needs from checkpoints beyond LangGraph's saver protocol.

LangGraph's ``BaseCheckpointSaver`` reads and writes; rolling a thread back
(multitask ``rollback``) and copying a thread need backend-specific deletes, which
each backend package implements (``sqlite.checkpoints``, ``postgres.checkpoints``).
"""

from __future__ import annotations

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
