"""Chat turns on agent threads, shared by /v1/chat/completions and /chat: messages in,
threads and runs, resuming interrupts, and the outcome of a run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from dockyard.api.deps import DockyardProcess
from dockyard.api.openai_schemas import ChatMessageIn
from dockyard.errors import (
    AgentRunError,
    AgentTimeoutError,
    ConflictError,
    DockyardError,
    NotFoundError,
    PolicyError,
)
from dockyard.policies import tenancy
from dockyard.run_spec import RunCommand, RunSpec
from dockyard.runtime.serde import dumps
from dockyard.storage.base import Assistant, Run, Thread


def text_of(content: Any) -> str:
    """The text of a LangChain message content (a string or a list of content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and part.get("type") == "text":
                out.append(str(part.get("text") or ""))
        return "".join(out)
    return ""


def to_langchain(msg: ChatMessageIn) -> dict[str, Any]:
    """One OpenAI message as a LangChain message dict (what ``add_messages`` accepts).

    Each gets a fresh id, so the run's own messages can be told apart from the input."""
    out: dict[str, Any] = {"role": msg.role, "id": str(uuid.uuid4())}
    content = msg.content
    if msg.role != "user" and isinstance(content, list):
        content = text_of(content)
    out["content"] = content if content is not None else ""
    if msg.name is not None:
        out["name"] = msg.name
    if msg.tool_calls:
        out["tool_calls"] = [tc.model_dump() for tc in msg.tool_calls]
    if msg.tool_call_id is not None:
        out["tool_call_id"] = msg.tool_call_id
    return out


def new_messages(messages: Sequence[ChatMessageIn]) -> list[ChatMessageIn]:
    """The messages after the last assistant message (all of them when there is none)."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    return list(messages[last + 1 :])


def state_messages(values: Any) -> list[dict[str, Any]]:
    msgs = values.get("messages") if isinstance(values, dict) else None
    return [m for m in msgs if isinstance(m, dict)] if isinstance(msgs, list) else []


def pending_interrupts(thread: Thread) -> list[dict[str, Any]]:
    if thread["status"] != "interrupted":
        return []
    out: list[dict[str, Any]] = []
    for items in (thread["interrupts"] or {}).values():
        out.extend(i for i in items if isinstance(i, dict))
    return out


def resume_value(text: str) -> Any:
    """A reply to an interrupt: the JSON it holds when it is an object or array, else the text."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return orjson.loads(stripped)  # bounded depth, unlike json.loads
        except ValueError:
            pass
    return text


def resume_command(thread: Thread, text: str) -> dict[str, Any]:
    pending = pending_interrupts(thread)
    if len(pending) > 1:
        raise ConflictError(
            f"thread {thread['thread_id']} waits on {len(pending)} interrupts at once; resume "
            "them through the Agent Server API (POST /threads/{id}/runs with command.resume "
            "keyed by interrupt id)",
            code="multiple_interrupts",
        )
    return {"resume": resume_value(text)}


# -- threads and runs -----------------------------------------------------------------------


async def resolve_model(rt: DockyardProcess, model: str) -> Assistant:
    try:
        return await rt.runs.resolve_assistant(model)
    except NotFoundError:
        raise NotFoundError(
            f"model {model!r} not found: name an assistant id or one of the graphs "
            f"({', '.join(rt.registry.names)}); GET /v1/models lists them",
            code="model_not_found",
            param="model",
        ) from None


def _thread_graph(thread: Thread) -> str | None:
    graph = thread["graph_id"] or thread["metadata"].get("graph_id")
    return str(graph) if graph else None


async def find_thread(rt: DockyardProcess, thread_id: str, assistant: Assistant) -> Thread | None:
    """The thread, which must belong to the assistant's graph; None when it does not exist
    yet: ``start_run(..., new_thread=metadata)`` creates it once the request passed the
    run's checks, so a refused request leaves no thread behind."""
    graph_id = assistant["graph_id"]
    thread = await rt.storage.threads.get(thread_id)
    if thread is None:
        return None
    if not tenancy.visible(thread["metadata"]):
        raise NotFoundError(f"thread {thread_id} not found", code="thread_not_found")
    existing = _thread_graph(thread)
    if existing is not None and existing != graph_id:
        raise ConflictError(
            f"thread {thread_id} belongs to graph {existing!r}, not {graph_id!r}; use a new "
            "thread for another graph",
            code="thread_graph_mismatch",
        )
    return thread


async def start_run(
    rt: DockyardProcess,
    assistant: Assistant,
    thread_id: str | None,
    *,
    graph_input: dict[str, Any] | None = None,
    command: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    stream: bool = False,
    new_thread: dict[str, Any] | None = None,
) -> Run:
    """``new_thread``: the metadata of ``thread_id`` when ``find_thread`` found none."""
    spec = RunSpec(
        assistant_id=assistant["assistant_id"],
        stream_mode=("messages-tuple",) if stream else ("values",),
        metadata=metadata or {},
        config=config,
        command=RunCommand(**command) if command is not None else None,
        input=graph_input if command is None else None,
    )
    return await rt.runs.create(thread_id, spec, thread_metadata=new_thread)


@dataclass
class Outcome:
    run_id: str
    thread_id: str
    values: Any = None
    error: dict[str, Any] | None = None
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)  # AI messages the run added

    @property
    def reply(self) -> dict[str, Any] | None:
        return self.added[-1] if self.added else None

    @property
    def text(self) -> str:
        return text_of(self.reply["content"]) if self.reply else ""

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        calls = self.reply.get("tool_calls") if self.reply else None
        return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []

    @property
    def finish_reason(self) -> str:
        if self.interrupts:
            return "interrupt"
        if self.tool_calls:
            return "tool_calls"
        meta = (self.reply or {}).get("response_metadata") or {}
        reason = meta.get("finish_reason") or meta.get("stop_reason")
        # OpenAI's reasons, and Anthropic's stop_reason for the same endings.
        if reason in ("length", "max_tokens", "model_context_window_exceeded"):
            return "length"
        if reason in ("content_filter", "refusal"):
            return "content_filter"
        return "stop"

    @property
    def usage(self) -> dict[str, int] | None:
        reported = [m["usage_metadata"] for m in self.added if m.get("usage_metadata")]
        if not reported:
            return None
        prompt = sum(int(u.get("input_tokens") or 0) for u in reported)
        completion = sum(int(u.get("output_tokens") or 0) for u in reported)
        total = sum(int(u.get("total_tokens") or 0) for u in reported) or prompt + completion
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}

    def raise_for_error(self) -> None:
        if self.error is None:
            return
        refusal = PolicyError.from_run_error(
            self.error, run_id=self.run_id, thread_id=self.thread_id
        )
        if refusal is not None:  # a policy's refusal answers as itself, not as a failure
            raise refusal
        kind = str(self.error.get("error") or "Error")
        cls = AgentTimeoutError if kind == "TimeoutError" else AgentRunError
        detail = str(self.error.get("message") or "")
        raise cls(
            f"the agent failed: {kind}: {detail}" if detail else f"the agent failed: {kind}",
            run_id=self.run_id,
            thread_id=self.thread_id,
        )


def _is_ai(msg: dict[str, Any]) -> bool:
    return msg.get("type") in ("ai", "AIMessageChunk", "AIMessage")


async def follow(
    rt: DockyardProcess, run: Run, known_ids: set[str]
) -> AsyncIterator[str | Outcome]:
    """Follow a run: text deltas of its AI message chunks (stream runs), then its Outcome.

    ``known_ids`` are the ids of messages that were in the state before the run or in its
    input; the AI messages in the final state with other ids are the ones the run added."""
    out = Outcome(run["run_id"], run["thread_id"])
    result: Any = ...
    current: str | None = None
    sent_text = False
    async for ev in rt.runs.events(run):
        if ev.event == "__result__":
            result = orjson.loads(ev.data)
        elif ev.event == "error":
            out.error = orjson.loads(ev.data)
        elif ev.event == "messages":
            msg, _meta = orjson.loads(ev.data)
            if not isinstance(msg, dict) or not _is_ai(msg) or msg.get("id") in known_ids:
                continue
            text = text_of(msg.get("content"))
            if not text:
                continue
            if current is not None and msg.get("id") != current and sent_text:
                text = "\n\n" + text
            current = msg.get("id")
            sent_text = True
            yield text
    if out.error is None:
        if result is ...:
            # The stream closed without an outcome: the server is shutting down and the
            # run will resume from its checkpoint when it starts again.
            raise DockyardError(
                f"run {run['run_id']} did not finish: the server is stopping; it resumes on "
                f"restart (GET /threads/{run['thread_id']}/runs/{run['run_id']}/join)",
                code="run_incomplete",
            )
        row = await rt.runs.find_run(run["run_id"])
        if row is not None and row["status"] == "interrupted":
            raise ConflictError(
                f"run {run['run_id']} was cancelled before it finished ({row['cancel_reason']})",
                code="run_cancelled",
            )
        out.values = result
        if isinstance(result, dict):
            raw = result.get("__interrupt__") or []
            out.interrupts = [i for i in raw if isinstance(i, dict)]
        out.added = [
            m for m in state_messages(result) if _is_ai(m) and m.get("id") not in known_ids
        ]
    yield out


async def outcome_of(rt: DockyardProcess, run: Run, known_ids: set[str]) -> Outcome:
    async for item in follow(rt, run, known_ids):
        if isinstance(item, Outcome):
            return item
    raise AssertionError("follow() ends with an Outcome")  # pragma: no cover


def interrupt_text(interrupts: list[dict[str, Any]]) -> str:
    parts = []
    for i in interrupts:
        value = i.get("value")
        parts.append(value if isinstance(value, str) else dumps(value).decode())
    return "\n".join(parts)


# -- /v1/models -----------------------------------------------------------------------------
