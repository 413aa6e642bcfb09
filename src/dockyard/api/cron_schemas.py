"""Cron request bodies, as langgraph-sdk's crons client sends them.

Unknown fields are refused (422); schedule and timezone are checked by the route
(``storage.schedule``) so that their errors carry their own ``code``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from dockyard.api.schemas import Id, SortOrder, Strict
from dockyard.runtime.translate import STREAM_MODES

OnRunCompleted = Literal["delete", "keep"]

# The fields a firing passes on to its run; everything else describes the cron.
RUN_FIELDS = frozenset(
    {
        "input",
        "config",
        "context",
        "checkpoint_during",
        "interrupt_before",
        "interrupt_after",
        "webhook",
        "multitask_strategy",
        "stream_mode",
        "stream_subgraphs",
        "stream_resumable",
        "durability",
    }
)

CronField = Literal[
    "cron_id",
    "assistant_id",
    "thread_id",
    "end_time",
    "schedule",
    "timezone",
    "created_at",
    "updated_at",
    "user_id",
    "payload",
    "next_run_date",
    "metadata",
    "now",
    "on_run_completed",
    "enabled",
]
CronSortBy = Literal[
    "cron_id", "assistant_id", "thread_id", "created_at", "updated_at", "next_run_date", "end_time"
]


class _CronRun(Strict):
    """The run each firing creates; the same shapes POST /threads/{id}/runs takes."""

    input: Any = None
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    webhook: str | None = None
    stream_mode: str | list[str] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    on_run_completed: OnRunCompleted | None = None
    schedule: str | None = None
    timezone: str | None = None
    end_time: datetime | None = None
    enabled: bool | None = None

    @field_validator("stream_mode")
    @classmethod
    def _modes(cls, v: str | list[str] | None) -> list[str] | None:
        if v is None:
            return None
        modes = [v] if isinstance(v, str) else list(v)
        bad = [m for m in modes if m not in STREAM_MODES]
        if bad:
            raise ValueError(f"unknown stream_mode {bad}; use any of {list(STREAM_MODES)}")
        return list(dict.fromkeys(modes))

    @field_validator("end_time")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        # A time without an offset is read as UTC, the zone next_run_date is given in.
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v

    def run_fields(self) -> dict[str, Any]:
        return self.model_dump(include=set(RUN_FIELDS), exclude_none=True)


class CronCreate(_CronRun):
    assistant_id: str
    schedule: str
    checkpoint_during: bool | None = None
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] | None = None


class CronUpdate(_CronRun):
    pass


class CronSearch(Strict):
    assistant_id: str | None = None
    thread_id: Id | None = None
    enabled: bool | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: CronSortBy | None = None
    sort_order: SortOrder | None = None
    select: list[CronField] | None = None


class CronCount(Strict):
    assistant_id: str | None = None
    thread_id: Id | None = None
    metadata: dict[str, Any] | None = None
