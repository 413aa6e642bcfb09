"""Request bodies. Unknown fields are refused (422), never dropped silently."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dockyard.errors import InvalidRequestError
from dockyard.runtime.translate import STREAM_MODES


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


IfExists = Literal["raise", "do_nothing"]
SortOrder = Literal["asc", "desc"]

# Column widths of the own tables: longer values would fail on PostgreSQL.
Id = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(max_length=255)]

STATE_FIELDS = (
    "values",
    "next",
    "tasks",
    "checkpoint",
    "metadata",
    "created_at",
    "parent_checkpoint",
    "interrupts",
)


def _state_select_error(select: list[str] | None) -> str | None:
    bad = [f for f in select or [] if f not in STATE_FIELDS and not f.startswith("values.")]
    if not bad:
        return None
    return f"unknown field(s) {bad}; use any of {list(STATE_FIELDS)} or 'values.<key>'"


def check_state_select(select: list[str] | None) -> list[str] | None:
    """``select`` of a query string (the body's is checked by the models below)."""
    error = _state_select_error(select)
    if error:
        raise InvalidRequestError(f"select: {error}", param="select")
    return select


def _valid_state_select(select: list[str] | None) -> list[str] | None:
    error = _state_select_error(select)
    if error:
        raise ValueError(error)
    return select


class AssistantCreate(Strict):
    graph_id: str
    assistant_id: Id | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    if_exists: IfExists = "raise"
    name: Name | None = None
    description: str | None = None


class AssistantUpdate(Strict):
    graph_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: Name | None = None
    description: str | None = None


class AssistantSearch(Strict):
    metadata: dict[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None


class AssistantCount(Strict):
    metadata: dict[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None


class AssistantVersions(Strict):
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class AssistantLatest(Strict):
    version: int = Field(ge=1)


class TTL(Strict):
    # On expiry: delete the thread, or keep it with only its newest checkpoint.
    strategy: Literal["delete", "keep_latest"] = "delete"
    ttl: float = Field(gt=0, description="minutes")


class ThreadCreate(Strict):
    thread_id: Id | None = None
    metadata: dict[str, Any] | None = None
    if_exists: IfExists = "raise"
    supersteps: list[dict[str, Any]] | None = None
    graph_id: str | None = None
    ttl: TTL | None = None


class ThreadUpdate(Strict):
    metadata: dict[str, Any] | None = None
    ttl: TTL | None = None


ThreadStatusQ = Literal["idle", "busy", "interrupted", "error"]


class ThreadSearch(Strict):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = None
    status: ThreadStatusQ | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] | None = None
    sort_order: SortOrder | None = None
    select: list[str] | None = None
    extract: dict[str, str] | None = None


class ThreadCount(Strict):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: ThreadStatusQ | None = None


class ThreadPrune(Strict):
    thread_ids: list[str]
    strategy: Literal["delete", "keep_latest"] = "delete"


class CheckpointRef(Strict):
    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoint_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class StateUpdate(Strict):
    values: dict[str, Any] | list[Any] | None = None
    as_node: str | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = None


class StateAtCheckpoint(Strict):
    checkpoint: CheckpointRef
    subgraphs: bool = False
    select: list[str] | None = None

    @field_validator("select")
    @classmethod
    def _select(cls, v: list[str] | None) -> list[str] | None:
        return _valid_state_select(v)


class HistoryQuery(Strict):
    limit: int = Field(default=10, ge=1, le=1000)
    before: CheckpointRef | str | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None
    select: list[str] | None = None

    @field_validator("select")
    @classmethod
    def _select(cls, v: list[str] | None) -> list[str] | None:
        return _valid_state_select(v)


class CommandBody(Strict):
    resume: Any = None
    update: dict[str, Any] | list[Any] | None = None
    goto: str | list[str] | dict[str, Any] | list[dict[str, Any]] | None = None


class RunCreate(Strict):
    assistant_id: str
    input: Any = None
    command: CommandBody | None = None
    stream_mode: str | list[str] = Field(default_factory=lambda: ["values"])
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = None
    checkpoint_during: bool | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    feedback_keys: list[str] | None = None
    webhook: str | None = None
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] | None = None
    after_seconds: float | None = Field(default=None, ge=0, le=366 * 86400)
    durability: Literal["sync", "async", "exit"] | None = None
    strict_resume: bool | None = None
    langsmith_tracer: dict[str, Any] | None = None

    @field_validator("stream_mode")
    @classmethod
    def _modes(cls, v: str | list[str]) -> list[str]:
        modes = [v] if isinstance(v, str) else list(v)
        bad = [m for m in modes if m not in STREAM_MODES]
        if bad:
            raise ValueError(f"unknown stream_mode {bad}; use any of {list(STREAM_MODES)}")
        return list(dict.fromkeys(modes))

    @model_validator(mode="after")
    def _exclusive(self) -> RunCreate:
        if self.input is not None and self.command is not None:
            raise ValueError("send either input or command, not both")
        return self


class RunBatchItem(RunCreate):
    pass


class RunsCancel(Strict):
    thread_id: str | None = None
    run_ids: list[str] | None = None
    status: Literal["pending", "running", "all"] | None = None


class StoreItemPut(Strict):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    ttl: float | None = Field(default=None, gt=0)


class StoreItemDelete(Strict):
    namespace: list[str]
    key: str


class StoreSearch(Strict):
    namespace_prefix: list[str] = Field(default_factory=list)
    filter: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    query: str | None = None
    refresh_ttl: bool | None = None


class StoreNamespaces(Strict):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(default=None, ge=1)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
