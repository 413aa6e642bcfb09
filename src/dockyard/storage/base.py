"""Storage protocols: one per concern.

Checkpoints and the key-value store are LangGraph's own protocols
(``BaseCheckpointSaver``, ``BaseStore``); the three below hold dockyard's
records. Every backend passes ``tests/storage/conformance.py``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, TypedDict

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]
IfExists = Literal["raise", "do_nothing"]
SortOrder = Literal["asc", "desc"]

ACTIVE_RUN_STATUSES: tuple[RunStatus, ...] = ("pending", "running")


class Assistant(TypedDict):
    assistant_id: str
    graph_id: str
    name: str
    description: str | None
    config: dict[str, Any]
    context: dict[str, Any]
    metadata: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class Thread(TypedDict):
    thread_id: str
    status: ThreadStatus
    metadata: dict[str, Any]
    values: Any
    interrupts: dict[str, Any]
    graph_id: str | None
    ttl: dict[str, Any] | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Run(TypedDict):
    run_id: str
    thread_id: str
    assistant_id: str
    status: RunStatus
    metadata: dict[str, Any]
    multitask_strategy: MultitaskStrategy
    kwargs: dict[str, Any]
    temporary: bool
    attempts: int
    error: dict[str, Any] | None
    cancel_reason: str | None
    not_before: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime
    worker_id: str | None
    lease_expires_at: datetime | None
    webhook: dict[str, Any] | None


class AssistantStore(Protocol):
    async def create(
        self,
        *,
        assistant_id: str,
        graph_id: str,
        config: dict[str, Any],
        context: dict[str, Any],
        metadata: dict[str, Any],
        name: str,
        description: str | None,
        if_exists: IfExists,
    ) -> Assistant: ...

    async def get(self, assistant_id: str) -> Assistant | None: ...

    async def update(
        self,
        assistant_id: str,
        *,
        graph_id: str | None = None,
        config: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> Assistant: ...

    async def delete(self, assistant_id: str) -> bool: ...

    async def search(
        self,
        *,
        graph_id: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: SortOrder | None = None,
    ) -> list[Assistant]: ...

    async def count(
        self,
        *,
        graph_id: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int: ...

    async def versions(
        self,
        assistant_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[dict[str, Any]]: ...

    async def set_latest(self, assistant_id: str, version: int) -> Assistant: ...


class ThreadStore(Protocol):
    async def create(
        self,
        *,
        thread_id: str,
        metadata: dict[str, Any],
        if_exists: IfExists,
        ttl: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
        graph_id: str | None = None,
    ) -> Thread: ...

    async def get(self, thread_id: str) -> Thread | None: ...

    async def update(
        self,
        thread_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        ttl: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> Thread: ...

    async def set_state(
        self,
        thread_id: str,
        *,
        status: ThreadStatus | None = None,
        values: Any = ...,
        interrupts: dict[str, Any] | None = None,
        graph_id: str | None = None,
    ) -> None: ...

    async def delete(self, thread_id: str) -> bool: ...

    async def search(
        self,
        *,
        ids: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: SortOrder | None = None,
    ) -> list[Thread]: ...

    async def count(
        self,
        *,
        ids: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        status: ThreadStatus | None = None,
    ) -> int: ...

    async def expired(self, now: datetime, limit: int = 100) -> list[str]: ...


class RunStore(Protocol):
    async def create(
        self,
        run: Run,
        *,
        reject_if_busy: bool,
        create_thread: Thread | None,
        graph_id: str,
    ) -> tuple[Run, builtins.list[Run]]:
        """Insert ``run`` atomically with the thread's busy check.

        Returns the new run and the runs that were already pending or running
        on the thread (the caller interrupts or rolls them back as the
        multitask strategy says). Raises ConflictError when ``reject_if_busy``
        and the thread has an active run; NotFoundError when the thread is
        missing and ``create_thread`` is None.
        """
        ...

    async def get(self, run_id: str, thread_id: str | None = None) -> Run | None: ...

    async def list(
        self,
        thread_id: str,
        *,
        limit: int = 10,
        offset: int = 0,
        status: RunStatus | None = None,
    ) -> builtins.list[Run]: ...

    async def active(self, thread_id: str) -> builtins.list[Run]: ...

    async def with_status(
        self, statuses: Sequence[RunStatus], limit: int = 1000
    ) -> builtins.list[Run]: ...

    async def claim(self, limit: int, now: datetime) -> builtins.list[Run]:
        """Move up to ``limit`` due pending runs to running, one per thread,
        oldest first, never on a thread that already has a running run."""
        ...

    async def next_due(self) -> datetime | None: ...

    async def finish(
        self,
        run_id: str,
        *,
        status: RunStatus,
        error: dict[str, Any] | None = None,
        cancel_reason: str | None = None,
        only_if: Sequence[RunStatus] | None = None,
    ) -> bool: ...

    async def delete(self, run_id: str) -> bool: ...

    async def requeue_running(self) -> builtins.list[Run]:
        """Runs left running by a dead process go back to pending."""
        ...
