"""What a run was asked to do, typed: built once from the request, read down to execution.

The routes, crons and the OpenAI-compatible routes each build a :class:`RunSpec`; the
run service reads it to create the run, ``stored()`` gives the ``kwargs`` column as it has
always been written, and an executor (in this process or a worker) reads it back with
``from_stored``, so rows written before this type existed still load. A field is an
attribute: a misspelt name fails type checking instead of reading as ``None``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast, get_args

from dockyard.errors import UnsupportedFieldError

Durability = Literal["sync", "async", "exit"]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]
OnCompletion = Literal["delete", "keep"]
OnDisconnect = Literal["cancel", "continue"]
IfNotExists = Literal["create", "reject"]
# "*" (every node) or node names.
Breakpoints = Literal["*"] | tuple[str, ...]


class RunKwargs(TypedDict, total=False):
    """The stored form (column ``runs.kwargs``, and ``kwargs`` in the API's run shape)."""

    input: Any
    command: dict[str, Any] | None
    stream_mode: list[str]
    stream_subgraphs: bool | None
    config: dict[str, Any] | None
    context: dict[str, Any] | None
    checkpoint: dict[str, Any] | None
    checkpoint_id: str | None
    interrupt_before: str | list[str] | None
    interrupt_after: str | list[str] | None
    on_completion: str | None
    on_disconnect: str | None
    durability: str | None
    after_seconds: float | None
    # Where the run was asked for (observability/origin.py): request id, W3C trace
    # context. Absent for a run of no request; not part of the API's run shape.
    origin: dict[str, str]


@dataclass(frozen=True, slots=True)
class RunCommand:
    """A resume, a state update and/or a goto, as LangGraph's ``Command`` takes them."""

    resume: Any = None
    update: Any = None
    goto: Any = None

    def stored(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class RunSpec:
    assistant_id: str
    input: Any = None
    command: RunCommand | None = None
    stream_mode: tuple[str, ...] = ("values",)
    stream_subgraphs: bool = False
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    config: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None
    checkpoint: Mapping[str, Any] | None = None
    checkpoint_id: str | None = None
    interrupt_before: Breakpoints | None = None
    interrupt_after: Breakpoints | None = None
    webhook: str | None = None
    multitask_strategy: MultitaskStrategy = "enqueue"
    if_not_exists: IfNotExists = "reject"
    on_disconnect: OnDisconnect = "continue"
    on_completion: OnCompletion | None = None
    after_seconds: float | None = None
    durability: Durability | None = None
    strict_resume: bool = False
    origin: Mapping[str, str] | None = None

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_request(cls, body: Mapping[str, Any]) -> RunSpec:
        """From a run request already checked against its schema (a route's body dumped
        without ``None``s, a cron's stored payload). A key this type does not know is a
        programming error, not a client's: the schemas reject unknown fields first."""
        fields = dict(body)
        for name, why in (
            ("feedback_keys", "feedback keys belong to LangSmith, which dockyard does not use"),
            ("langsmith_tracer", "dockyard does not send traces to LangSmith"),
        ):
            if fields.pop(name, None):
                raise UnsupportedFieldError(f"{name}: {why}; remove the field", param=name)
        # Every stream dockyard serves can be resumed (Last-Event-ID), asked for or not.
        fields.pop("stream_resumable", None)
        during = fields.pop("checkpoint_during", None)
        if during is not None and not fields.get("durability"):
            fields["durability"] = "async" if during else "exit"
        unknown = set(fields) - _FIELDS
        if unknown:
            raise TypeError(f"RunSpec has no field(s) {sorted(unknown)}")
        command = fields.get("command")
        if command is not None and not isinstance(command, RunCommand):
            fields["command"] = RunCommand(
                resume=command.get("resume"),
                update=command.get("update"),
                goto=command.get("goto"),
            )
        if "stream_mode" in fields:
            fields["stream_mode"] = _modes(fields["stream_mode"])
        for name in ("interrupt_before", "interrupt_after"):
            fields[name] = _breakpoints(fields.get(name))
        if fields.get("metadata") is None:
            fields.pop("metadata", None)
        for name in ("multitask_strategy", "if_not_exists", "on_disconnect"):
            if fields.get(name) is None:
                fields.pop(name, None)
        for name in ("stream_subgraphs", "strict_resume"):
            fields[name] = bool(fields.get(name))
        return cls(**fields)

    @classmethod
    def from_stored(
        cls,
        kwargs: Mapping[str, Any],
        *,
        assistant_id: str,
        metadata: Mapping[str, Any],
        multitask_strategy: str,
    ) -> RunSpec:
        """A stored run's spec (its row's ``kwargs`` and columns). Only what execution
        reads is stored; what mattered only at creation (webhook, if_not_exists,
        strict_resume) comes back as its default."""
        command = kwargs.get("command")
        return cls(
            assistant_id=assistant_id,
            input=kwargs.get("input"),
            command=RunCommand(
                resume=command.get("resume"),
                update=command.get("update"),
                goto=command.get("goto"),
            )
            if command
            else None,
            stream_mode=_modes(kwargs.get("stream_mode") or ["values"]),
            stream_subgraphs=bool(kwargs.get("stream_subgraphs")),
            metadata=metadata,
            config=kwargs.get("config"),
            context=kwargs.get("context"),
            checkpoint=kwargs.get("checkpoint"),
            checkpoint_id=kwargs.get("checkpoint_id"),
            interrupt_before=_breakpoints(kwargs.get("interrupt_before")),
            interrupt_after=_breakpoints(kwargs.get("interrupt_after")),
            multitask_strategy=_choice(multitask_strategy, MultitaskStrategy, "enqueue"),
            on_disconnect=_choice(kwargs.get("on_disconnect"), OnDisconnect, "continue"),
            on_completion=_choice(kwargs.get("on_completion"), OnCompletion, None),
            after_seconds=kwargs.get("after_seconds"),
            durability=_choice(kwargs.get("durability"), Durability, None),
            origin=kwargs.get("origin"),
        )

    def replace(self, **changes: Any) -> RunSpec:
        return dataclasses.replace(self, **changes)

    # -- reading ----------------------------------------------------------------------------

    def stored(self) -> RunKwargs:
        """The ``kwargs`` column, with the keys and shapes it has always had (and
        ``origin`` when the run has one)."""
        out: RunKwargs = {
            "input": self.input,
            "command": self.command.stored() if self.command is not None else None,
            "stream_mode": list(self.stream_mode),
            "stream_subgraphs": self.stream_subgraphs,
            "config": _plain(self.config),
            "context": _plain(self.context),
            "checkpoint": _plain(self.checkpoint),
            "checkpoint_id": self.checkpoint_id,
            "interrupt_before": _stored_breakpoints(self.interrupt_before),
            "interrupt_after": _stored_breakpoints(self.interrupt_after),
            "on_completion": self.on_completion,
            "on_disconnect": self.on_disconnect,
            "durability": self.durability,
            "after_seconds": self.after_seconds,
        }
        if self.origin:
            out["origin"] = dict(self.origin)
        return out

    @property
    def start_checkpoint_id(self) -> str | None:
        """The checkpoint the run starts from: ``checkpoint_id``, else ``checkpoint``'s."""
        if self.checkpoint_id:
            return self.checkpoint_id
        return (self.checkpoint or {}).get("checkpoint_id") or None

    @property
    def checkpoint_ns(self) -> str | None:
        return (self.checkpoint or {}).get("checkpoint_ns") or None

    @property
    def deletes_thread(self) -> bool:
        """A stateless run whose thread goes when it ends (``on_completion`` ``delete``,
        the default once the service made the run stateless)."""
        return self.on_completion in (None, "delete")

    @property
    def has_breakpoints(self) -> bool:
        return bool(self.interrupt_before or self.interrupt_after)


_FIELDS = frozenset(f.name for f in dataclasses.fields(RunSpec))


def _modes(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _breakpoints(value: Any) -> Breakpoints | None:
    if value is None or value == "*":
        return value  # type: ignore[no-any-return]
    return tuple(value)


def _stored_breakpoints(value: Breakpoints | None) -> str | list[str] | None:
    return list(value) if isinstance(value, tuple) else value


def _plain(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(value) if value is not None else None


def _choice(value: Any, kind: Any, default: Any) -> Any:
    # A row written by an older version may hold a value this one no longer uses.
    return cast(Any, value) if value in get_args(kind) else default
