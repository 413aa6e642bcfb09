"""Storage protocols: one per concern.

Checkpoints and the key-value store are LangGraph's own protocols
(``BaseCheckpointSaver``, ``BaseStore``); the three below hold dockyard's
records. Every backend passes ``tests/storage/conformance.py``.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal, NotRequired, Protocol, TypedDict

from dockyard.run_spec import MultitaskStrategy, RunKwargs, RunSpec

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
IfExists = Literal["raise", "do_nothing"]
SortOrder = Literal["asc", "desc"]

ACTIVE_RUN_STATUSES: tuple[RunStatus, ...] = ("pending", "running")
FINISHED_RUN_STATUSES: tuple[RunStatus, ...] = ("success", "error", "timeout", "interrupted")


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
    kwargs: RunKwargs  # RunSpec.stored(); read it back with run_spec(run)
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
    cancel_requested: str | None
    webhook: dict[str, Any] | None
    # 0004: what its model calls used and cost (runtime.usage), over all its attempts.
    usage: dict[str, Any] | None


def run_spec(run: Run) -> RunSpec:
    """The run's spec, typed, from its stored row."""
    return RunSpec.from_stored(
        run["kwargs"],
        assistant_id=run["assistant_id"],
        metadata=run["metadata"],
        multitask_strategy=run["multitask_strategy"],
    )


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

    async def delete(self, thread_id: str, *, ledger: Sequence[UsageRecord] = ()) -> bool:
        """Remove the thread and its runs. ``ledger``: usage rows of its last run (a
        stateless run's), written in the same transaction whether or not the thread was
        still there: the spend outlives the thread."""
        ...

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

    async def set_expiry(self, thread_id: str, expires_at: datetime | None) -> None:
        """Move the thread's ttl deadline (its ``updated_at`` stays)."""
        ...


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

    async def claim(
        self,
        limit: int,
        now: datetime,
        *,
        worker_id: str | None = None,
        lease_until: datetime | None = None,
    ) -> builtins.list[Run]:
        """Move up to ``limit`` due pending runs to running, one per thread,
        oldest first, never on a thread that already has a running run; the
        claim is ``worker_id``'s until ``lease_until``."""
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
        worker_id: str | None = None,
        usage: dict[str, Any] | None = None,
        ledger: Sequence[UsageRecord] = (),
    ) -> bool:
        """Set the status; with ``worker_id`` only while that worker holds the run.
        ``usage`` replaces the run's usage when given; the ``ledger`` rows are written
        in the same transaction, only if the run was updated."""
        ...

    async def delete(self, run_id: str, *, only_if: Sequence[RunStatus] | None = None) -> bool:
        """Remove the run; with ``only_if``, only while its status is one of those."""
        ...

    async def requeue_running(self) -> builtins.list[Run]:
        """Runs left running by a dead process go back to pending (one-process mode)."""
        ...

    async def heartbeat(
        self, worker_id: str, run_ids: Sequence[str], lease_until: datetime
    ) -> dict[str, str | None]:
        """Extend the worker's leases; returns the runs it still holds, each with
        the cancel action another process asked for (or None)."""
        ...

    async def requeue_expired(self, now: datetime) -> builtins.list[str]:
        """Running runs whose lease ran out (their worker died) go back to pending."""
        ...

    async def release(
        self,
        run_id: str,
        worker_id: str,
        *,
        usage: dict[str, Any] | None = None,
        ledger: Sequence[UsageRecord] = (),
    ) -> bool:
        """Hand a run back to the queue (a draining worker); False if not held.
        ``usage`` and ``ledger``: what the attempt used so far, as in ``finish``."""
        ...

    async def request_cancel(self, run_id: str, action: str) -> bool:
        """Ask whichever process holds an active run to stop it (interrupt|rollback)."""
        ...

    async def set_webhook(self, run_id: str, webhook: dict[str, Any]) -> None:
        """Store the run's webhook delivery record and touch ``updated_at`` (a delivery
        in progress keeps its run out of ``claim_pending_webhooks``)."""
        ...

    async def claim_pending_webhooks(
        self, older_than: datetime, limit: int = 100
    ) -> builtins.list[Run]:
        """Runs that ended with their webhook still ``pending`` and ``updated_at`` before
        ``older_than`` (their delivery was lost), oldest first; their ``updated_at`` is
        set to now in the same transaction, so concurrent callers never get the same run."""
        ...


class UsageRecord(TypedDict):
    """One row of the usage ledger: what one run attempt's calls of one model used,
    counted against the tenant and key the run was made with (None: an open server)."""

    run_id: str
    assistant_id: str
    tenant_id: str | None
    key_id: str | None
    model: str
    day: date  # UTC
    created_at: datetime
    calls: int
    input_tokens: int  # including the cached ones
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    cost_usd: float | None  # None: the model has no price
    # "<rollout>:<stable|candidate>" for a run a rollout assigned (docs/rollouts.md).
    variant: NotRequired[str | None]


UsageGroup = Literal["model", "assistant", "tenant", "key", "variant"]


class UsageSummary(TypedDict):
    """The ledger summed per UTC day and group (``group`` None: no tenant / key)."""

    day: date
    group: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    cost_usd: float | None  # over the priced calls; None when none was priced
    unpriced_calls: int


class UsageStore(Protocol):
    """The usage ledger: written when runs settle (``RunStore.finish(ledger=...)``) and
    by ``record``; read by ``dockyard usage`` and budgets."""

    async def record(self, rows: Sequence[UsageRecord]) -> None: ...

    async def summary(
        self, *, by: UsageGroup, since: datetime | None = None, tenant_id: str | None = None
    ) -> builtins.list[UsageSummary]:
        """Per day and group, oldest day first, rows created at or after ``since``
        (of one tenant when ``tenant_id`` is given)."""
        ...

    async def spent(
        self,
        since: datetime,
        *,
        tenant_id: str | None = None,
        key_id: str | None = None,
        assistant_id: str | None = None,
    ) -> float:
        """USD of the priced calls recorded at or after ``since`` (filters: None = any)."""
        ...


class ApiKey(TypedDict):
    """An API key as stored: never the key itself, only its sha256 (``key_hash``)."""

    key_id: str
    key_hash: str
    prefix: str  # the key's first characters, to tell keys apart in lists
    tenant: str
    name: str | None
    scopes: builtins.list[str]
    policies: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class KeyStore(Protocol):
    async def create(self, key: ApiKey) -> ApiKey: ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or expired too (the caller decides)."""
        ...

    async def list(
        self, *, tenant: str | None = None, include_revoked: bool = False
    ) -> builtins.list[ApiKey]:
        """Oldest first."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the key revoked (once: a second call keeps the first time). None when
        there is no such key."""
        ...

    async def count(self) -> int:
        """Keys that are neither revoked nor expired."""
        ...


OnRunCompleted = Literal["delete", "keep"]


class Cron(TypedDict):
    cron_id: str
    assistant_id: str
    thread_id: str | None
    schedule: str
    timezone: str | None
    payload: dict[str, Any]
    metadata: dict[str, Any]
    enabled: bool
    end_time: datetime | None
    next_run_date: datetime | None
    on_run_completed: OnRunCompleted | None
    user_id: str | None
    created_at: datetime
    updated_at: datetime


class CronStore(Protocol):
    async def create(self, cron: Cron) -> Cron:
        """Insert ``cron`` as given; its ``next_run_date`` is the caller's to compute."""
        ...

    async def get(self, cron_id: str) -> Cron | None: ...

    async def update(
        self,
        cron_id: str,
        *,
        now: datetime,
        schedule: str | None = None,
        timezone: str | None = None,
        end_time: datetime | None = None,
        clear_end_time: bool = False,
        enabled: bool | None = None,
        payload: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        on_run_completed: OnRunCompleted | None = None,
    ) -> Cron:
        """Change the given fields (``payload`` replaces, ``metadata`` merges). A new
        schedule, timezone, end time or enabled flag recomputes ``next_run_date`` as
        the first firing after ``now``. Raises NotFoundError when the cron is missing."""
        ...

    async def delete(self, cron_id: str) -> bool: ...

    async def search(
        self,
        *,
        assistant_id: str | None = None,
        thread_id: str | None = None,
        enabled: bool | None = None,
        metadata: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str | None = None,
        sort_order: SortOrder | None = None,
    ) -> builtins.list[Cron]: ...

    async def count(
        self,
        *,
        assistant_id: str | None = None,
        thread_id: str | None = None,
        enabled: bool | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int: ...

    async def claim(self, now: datetime, limit: int = 100) -> builtins.list[Cron]:
        """Take up to ``limit`` due crons (enabled, ``next_run_date <= now``, end time
        not passed) and advance each one's ``next_run_date`` past ``now``, in one
        transaction: of any number of concurrent callers, exactly one gets each
        firing. Returns the crons as they were when due."""
        ...

    def firing(
        self, now: datetime, limit: int = 100
    ) -> contextlib.AbstractAsyncContextManager[builtins.list[Cron]]:
        """``claim`` whose advance happens when the block exits without an error,
        after the caller created the firings' runs: a caller that dies in between
        leaves the firings due for the next one (exactly once with run ids derived
        from the slot, which a second creation finds taken)."""
        ...


# -- evaluation (dockyard eval) --------------------------------------------------------

EvalStatus = Literal["running", "done", "failed"]


class EvalExperiment(TypedDict):
    """One ``dockyard eval``: a dataset run through an assistant under one or two
    variants (``[{"name": "A", "prompt": {...} | None, "model": str | None}, ...]``)."""

    experiment_id: str
    name: str
    assistant: str
    dataset: str
    dataset_hash: str
    items: int
    variants: builtins.list[dict[str, Any]]
    scorers: builtins.list[dict[str, Any]]
    status: EvalStatus
    summary: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None


class EvalResult(TypedDict):
    """One dataset item's outcome under one variant."""

    experiment_id: str
    variant: str
    item_id: str
    position: int  # the item's place in the dataset
    input: Any
    expected: Any
    output: str | None
    score: float | None
    parts: dict[str, float]
    reasons: builtins.list[str]
    latency_ms: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    run_id: str | None
    thread_id: str | None
    error: str | None
    created_at: datetime


class RunExample(TypedDict):
    """A finished run, for a dataset made from past runs: the input it was created with
    and its thread's values when it was that thread's last run."""

    run_id: str
    thread_id: str
    assistant_id: str
    metadata: dict[str, Any]
    input: Any
    output: Any
    created_at: datetime


class EvalStore(Protocol):
    async def create(self, experiment: EvalExperiment) -> EvalExperiment:
        """Insert it as given; ConflictError when its id is taken."""
        ...

    async def add_results(self, rows: Sequence[EvalResult]) -> None:
        """Insert results; a row for an (experiment, variant, item) already stored
        replaces it (an item run again)."""
        ...

    async def finish(
        self,
        experiment_id: str,
        *,
        status: EvalStatus,
        summary: dict[str, Any] | None,
        finished_at: datetime,
    ) -> EvalExperiment:
        """Set its outcome; NotFoundError when there is no such experiment."""
        ...

    async def get(self, experiment_id: str) -> EvalExperiment | None: ...

    async def list(
        self, *, assistant: str | None = None, limit: int = 20, offset: int = 0
    ) -> builtins.list[EvalExperiment]:
        """Newest first."""
        ...

    async def results(
        self, experiment_id: str, *, variant: str | None = None
    ) -> builtins.list[EvalResult]:
        """By variant, then in dataset order."""
        ...

    async def delete(self, experiment_id: str) -> bool:
        """The experiment and its results; False when there was none."""
        ...

    async def run_examples(
        self,
        *,
        assistant_ids: Sequence[str] | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[RunExample]:
        """Successful runs that were their thread's last run (so the thread's values are
        what they produced), newest first, created at or after ``since``."""
        ...
