"""The OpenAI Chat Completions API in front of any assistant: /v1/models, /v1/chat/completions.

``model`` names an assistant (its id) or a graph (its default assistant). The request's
``messages`` become the graph input ``{"messages": [...]}``; the reply is the last AI
message the run added to the state.

Conversation state
    Without an ``X-Thread-Id`` header a call is a stateless run: the full history in
    ``messages`` goes in and nothing is kept. With the header the run goes on that thread
    (created when missing); once the thread holds messages only the request's messages
    after its last assistant message are sent, since the earlier ones are already there.

Interrupts (a graph waiting for human approval)
    ``finish_reason`` is ``"interrupt"`` and the completion carries a ``dockyard``
    extension ``{"thread_id", "run_id", "interrupts": [{"id", "value"}]}``. When the run
    added no AI text, the message content is the interrupt value(s) as text, so a plain
    chat UI shows the question. On a thread, the next request's one new user message
    resumes the interrupt (``Command(resume=...)``): its text, or the JSON it holds when it
    is a JSON object or array.

Streaming
    Content deltas are the AI message chunks of the run as they stream (tool and human
    messages are not sent; the text of successive AI messages is separated by a blank
    line). Tool calls the agent already ran are not sent as ``tool_calls`` deltas, since a
    client must not run them again; only the final message's unexecuted tool calls are.

Usage
    The sum of ``usage_metadata`` over the AI messages the run added. When none of them
    reports usage, ``usage`` is null rather than made-up zeros.

Errors use OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``; an agent
that fails answers 502 ``agent_failed`` (504 ``agent_timeout``) with the run's error.
Request fields dockyard does not honour (sampling settings, ``tools``, ``n`` > 1, ...)
are refused with 422 naming the field, never ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import anyio
import orjson
from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dockyard.api.deps import Runtime, RuntimeDep
from dockyard.api.responses import json_response, sse_response
from dockyard.errors import (
    ConflictError,
    DockyardError,
    InvalidRequestError,
    NotFoundError,
    UnsupportedFieldError,
)
from dockyard.runtime.serde import dumps
from dockyard.storage.base import ACTIVE_RUN_STATUSES, Assistant, Run, Thread

log = logging.getLogger("dockyard.api.openai")

THREAD_HEADER = "X-Thread-Id"
RUN_HEADER = "X-Run-Id"
_THREAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")

# -- errors ---------------------------------------------------------------------------------


class AgentRunError(DockyardError):
    """The graph itself failed: the request was fine, the agent was not."""

    status_code = 502
    default_code = "agent_failed"

    def __init__(self, message: str, *, run_id: str, thread_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.thread_id = thread_id

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "run_id": self.run_id, "thread_id": self.thread_id}


class AgentTimeoutError(AgentRunError):
    """The graph ran past ``runs.timeout_seconds``."""

    status_code = 504
    default_code = "agent_timeout"


# Request fields OpenAI defines that dockyard refuses, and why.
_MODEL_SETTING = (
    "model settings belong to the assistant's configuration, not to a request; "
    "create an assistant with the settings you need"
)
_UNSUPPORTED: dict[str, str] = {
    **{
        f: "the agent brings its own tools; define them in the graph"
        for f in ("tools", "tool_choice", "functions", "function_call", "parallel_tool_calls")
    },
    **{
        f: _MODEL_SETTING
        for f in (
            "temperature",
            "top_p",
            "max_tokens",
            "max_completion_tokens",
            "frequency_penalty",
            "presence_penalty",
            "stop",
            "seed",
            "logit_bias",
            "reasoning_effort",
            "verbosity",
            "modalities",
            "audio",
            "prediction",
            "service_tier",
            "web_search_options",
        )
    },
    "n": "only one choice per request (n=1) is produced",
    "logprobs": "log probabilities are not available from an agent run",
    "top_logprobs": "log probabilities are not available from an agent run",
    "response_format": "the reply's format is defined by the graph",
    "store": "stored completions are an OpenAI platform feature; use X-Thread-Id for state",
    "prompt_cache_key": "response caching is configured per assistant",
    "safety_identifier": "not supported; use `user`",
}


def openai_error(
    status: int,
    message: str,
    code: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    if code in ("agent_failed", "agent_timeout"):
        kind = "agent_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    out = dict(headers or {})
    if status != 503:
        # The OpenAI SDKs retry 409 and 5xx: a failed agent run is not worth rerunning
        # blindly (its tools may have acted), and the rest will not change on a retry.
        out["x-should-retry"] = "false"
    return json_response(body, status_code=status, headers=out)


def _error_from(exc: DockyardError) -> Response:
    code = "model_not_found" if exc.code == "assistant_not_found" else exc.code
    param = "model" if code == "model_not_found" else exc.param
    headers: dict[str, str] = {}
    if isinstance(exc, AgentRunError):
        headers = {THREAD_HEADER: exc.thread_id, RUN_HEADER: exc.run_id}
    return openai_error(exc.status_code, exc.message, code, param, headers)


def _validation_error(exc: RequestValidationError) -> Response:
    problems: list[tuple[str, str, str]] = []  # (param, message, code)
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        param = ".".join(loc)
        if e.get("type") == "json_invalid":
            where = f" at character {loc[-1]}" if loc else ""
            problems.append(("", f"the body is not valid JSON{where}", "invalid_request"))
        elif e.get("type") == "extra_forbidden":
            why = _UNSUPPORTED.get(param, "not a field dockyard accepts here")
            problems.append(
                (param, f"{param} is not supported: {why}; remove it", "unsupported_field")
            )
        else:
            msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append((param, f"{param or 'body'}: {msg}", "invalid_request"))
    if not problems:
        return openai_error(422, "invalid request body", "invalid_request")
    message = "invalid request: " + "; ".join(p[1] for p in problems)
    return openai_error(422, message, problems[0][2], problems[0][0] or None)


class OpenAIRoute(APIRoute):
    """Errors of this route family in OpenAI's shape, which the OpenAI SDKs parse."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _validation_error(exc)
            except DockyardError as exc:
                return _error_from(exc)
            except Exception as exc:
                log.exception("unhandled error in %s: %s", request.url.path, exc)
                return openai_error(
                    500, "internal error; the server log has the details", "internal_error"
                )

        return run


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)

# -- request bodies -------------------------------------------------------------------------

_PART_TYPES = ("text", "image_url", "input_audio", "file")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FunctionCallIn(_Strict):
    name: str = Field(min_length=1)
    arguments: str

    @field_validator("arguments")
    @classmethod
    def _json_object(cls, v: str) -> str:
        try:
            parsed = json.loads(v or "{}")
        except ValueError:
            raise ValueError("must be a JSON object encoded as a string") from None
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object encoded as a string")
        return v or "{}"


class ToolCallIn(_Strict):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None

    @field_validator("content")
    @classmethod
    def _parts(cls, v: str | list[dict[str, Any]] | None) -> Any:
        if isinstance(v, list):
            for i, part in enumerate(v):
                kind = part.get("type")
                if kind not in _PART_TYPES:
                    raise ValueError(
                        f"part {i}: type {kind!r} is not supported; use one of {list(_PART_TYPES)}"
                    )
                if kind == "text" and not isinstance(part.get("text"), str):
                    raise ValueError(f"part {i}: a text part needs a string `text`")
        return v

    @model_validator(mode="after")
    def _by_role(self) -> ChatMessageIn:
        if self.role == "tool":
            if not self.tool_call_id:
                raise ValueError("a tool message needs `tool_call_id`")
        elif self.tool_call_id is not None:
            raise ValueError("`tool_call_id` belongs to tool messages only")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("`tool_calls` belongs to assistant messages only")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("`content` is required (null only on an assistant tool call)")
        if (
            isinstance(self.content, list)
            and self.role != "user"
            and any(p.get("type") != "text" for p in self.content)
        ):
            raise ValueError(f"a {self.role} message takes text parts only")
        return self


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatCompletionRequest(_Strict):
    model: str = Field(min_length=1)
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = None
    n: int | None = None

    @model_validator(mode="after")
    def _checks(self) -> ChatCompletionRequest:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed with stream: true")
        return self


# -- graph input ----------------------------------------------------------------------------


def _text_of(content: Any) -> str:
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
        content = _text_of(content)
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
            return json.loads(stripped)
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


async def resolve_model(rt: Runtime, model: str) -> Assistant:
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


async def open_thread(
    rt: Runtime, thread_id: str, assistant: Assistant, metadata: dict[str, Any]
) -> Thread:
    """The thread, created with ``metadata`` when missing; it must belong to the same graph."""
    graph_id = assistant["graph_id"]
    thread = await rt.storage.threads.get(thread_id)
    if thread is None:
        minutes = rt.settings.threads.default_ttl_minutes
        thread = await rt.storage.threads.create(
            thread_id=thread_id,
            metadata={**metadata, "graph_id": graph_id},
            if_exists="do_nothing",
            ttl={"strategy": "delete", "ttl": minutes} if minutes else None,
            expires_at=datetime.now(UTC) + timedelta(minutes=minutes) if minutes else None,
            graph_id=graph_id,
        )
    existing = _thread_graph(thread)
    if existing is not None and existing != graph_id:
        raise ConflictError(
            f"thread {thread_id} belongs to graph {existing!r}, not {graph_id!r}; use a new "
            "thread for another graph",
            code="thread_graph_mismatch",
        )
    return thread


async def start_run(
    rt: Runtime,
    assistant: Assistant,
    thread_id: str | None,
    *,
    graph_input: dict[str, Any] | None = None,
    command: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    stream: bool = False,
) -> Run:
    payload: dict[str, Any] = {
        "assistant_id": assistant["assistant_id"],
        "stream_mode": ["messages-tuple"] if stream else ["values"],
        "metadata": metadata or {},
    }
    if command is not None:
        payload["command"] = command
    else:
        payload["input"] = graph_input
    return await rt.runs.create(thread_id, payload)


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
        return _text_of(self.reply["content"]) if self.reply else ""

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
        if reason in ("length", "max_tokens"):
            return "length"
        if reason == "content_filter":
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


async def follow(rt: Runtime, run: Run, known_ids: set[str]) -> AsyncIterator[str | Outcome]:
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
            text = _text_of(msg.get("content"))
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
        row = await rt.storage.runs.get(run["run_id"])
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


async def outcome_of(rt: Runtime, run: Run, known_ids: set[str]) -> Outcome:
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


def _model_obj(model_id: str, created: datetime, a: Assistant) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": int(created.timestamp()),
        "owned_by": "dockyard",
        "dockyard": {
            "assistant_id": a["assistant_id"],
            "graph_id": a["graph_id"],
            "name": a["name"],
        },
    }


async def _all_assistants(rt: Runtime) -> list[Assistant]:
    out: list[Assistant] = []
    page = 1000
    while True:
        batch = await rt.storage.assistants.search(
            limit=page, offset=len(out), sort_by="created_at", sort_order="asc"
        )
        out.extend(batch)
        if len(batch) < page:
            return out


@router.get("/models")
async def list_models(rt: RuntimeDep) -> Response:
    """Every graph (by name, its default assistant) and every assistant created over the API
    (by id). A graph's default assistant is listed once, under the graph's name."""
    assistants = await _all_assistants(rt)
    data: list[dict[str, Any]] = []
    for a in assistants:
        is_default = a["metadata"].get("created_by") == "system" and a["name"] == a["graph_id"]
        if is_default and a["graph_id"] in rt.registry:
            data.append(_model_obj(a["graph_id"], a["created_at"], a))
    for a in assistants:
        if a["metadata"].get("created_by") != "system" and a["graph_id"] in rt.registry:
            data.append(_model_obj(a["assistant_id"], a["created_at"], a))
    return json_response({"object": "list", "data": data})


@router.get("/models/{model_id}")
async def get_model(model_id: str, rt: RuntimeDep) -> Response:
    a = await resolve_model(rt, model_id)
    return json_response(_model_obj(model_id, a["created_at"], a))


# -- /v1/chat/completions -------------------------------------------------------------------


@dataclass
class _Turn:
    assistant: Assistant
    thread_id: str | None
    graph_input: dict[str, Any] | None
    command: dict[str, Any] | None
    known_ids: set[str]
    metadata: dict[str, Any]


async def _plan(rt: Runtime, body: ChatCompletionRequest, thread_id: str | None) -> _Turn:
    if body.n is not None and body.n != 1:
        raise UnsupportedFieldError(f"n is not supported: {_UNSUPPORTED['n']}", param="n")
    assistant = await resolve_model(rt, body.model)
    metadata: dict[str, Any] = dict(body.metadata or {})
    if body.user is not None:
        metadata["user"] = body.user
    messages = list(body.messages)
    known: set[str] = set()
    command: dict[str, Any] | None = None
    if thread_id is not None:
        if not _THREAD_ID_RE.match(thread_id):
            raise InvalidRequestError(
                f"{THREAD_HEADER}: {thread_id!r} is not a thread id (1-64 letters, digits, "
                "'.', '_', ':' or '-')",
                param=THREAD_HEADER,
            )
        thread = await open_thread(rt, thread_id, assistant, {"created_by": "openai_compat"})
        in_state = state_messages(thread["values"])
        known = {str(m["id"]) for m in in_state if m.get("id")}
        if in_state or pending_interrupts(thread):
            messages = new_messages(messages)
            if not messages:
                raise InvalidRequestError(
                    "messages: nothing new to send; the thread already has everything up to "
                    "the last assistant message",
                    param="messages",
                )
        if pending_interrupts(thread):
            if len(messages) != 1 or messages[0].role != "user":
                raise ConflictError(
                    f"thread {thread_id} is waiting on an interrupt; answer it with exactly "
                    "one new user message",
                    code="thread_interrupted",
                )
            command = resume_command(thread, _text_of(messages[0].content))
    graph_input: dict[str, Any] | None = None
    if command is None:
        lc = [to_langchain(m) for m in messages]
        known |= {m["id"] for m in lc}
        graph_input = {"messages": lc}
    return _Turn(assistant, thread_id, graph_input, command, known, metadata)


def _headers(run: Run) -> dict[str, str]:
    return {THREAD_HEADER: run["thread_id"], RUN_HEADER: run["run_id"]}


def _assistant_message(out: Outcome) -> dict[str, Any]:
    content: str | None = out.text
    if not content and out.interrupts:
        content = interrupt_text(out.interrupts)
    msg: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if out.tool_calls:
        msg["tool_calls"] = _openai_tool_calls(out.tool_calls)
        msg["content"] = content or None
    return msg


def _openai_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": c.get("id") or "",
            "type": "function",
            "function": {
                "name": c.get("name") or "",
                "arguments": dumps(c.get("args") or {}).decode(),
            },
        }
        for c in calls
    ]


def _extension(out: Outcome) -> dict[str, Any]:
    ext: dict[str, Any] = {"thread_id": out.thread_id, "run_id": out.run_id}
    if out.interrupts:
        ext["interrupts"] = out.interrupts
    return ext


@router.post("/chat/completions")
async def chat_completions(
    body: ChatCompletionRequest,
    rt: RuntimeDep,
    x_thread_id: str | None = Header(None, alias=THREAD_HEADER),
) -> Response:
    turn = await _plan(rt, body, x_thread_id)
    run = await start_run(
        rt,
        turn.assistant,
        turn.thread_id,
        graph_input=turn.graph_input,
        command=turn.command,
        metadata=turn.metadata,
        stream=body.stream,
    )
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_response(
            _stream(rt, run, body.model, turn.known_ids, include_usage), headers=_headers(run)
        )
    out = await outcome_of(rt, run, turn.known_ids)
    out.raise_for_error()
    completion = {
        "id": f"chatcmpl-{run['run_id']}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": _assistant_message(out),
                "finish_reason": out.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": out.usage,
        "system_fingerprint": None,
        "dockyard": _extension(out),
    }
    return json_response(completion, headers=_headers(run))


def _sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


_DONE = b"data: [DONE]\n\n"
_KEEPALIVE = b": keep-alive\n\n"  # an SSE comment: clients skip it

HEARTBEAT_SECONDS = 10.0
"""Quiet spells longer than this get a keep-alive comment, so proxies keep an idle stream
open while the agent runs tools. On servers that report a gone client only when a write
fails (ASGI spec 2.4), it is also the write that notices and cancels the run."""


async def _with_heartbeat(it: AsyncIterator[str | Outcome]) -> AsyncIterator[str | Outcome | None]:
    """``it``'s items, with ``None`` after every ``HEARTBEAT_SECONDS`` without one."""

    async def pull() -> str | Outcome:
        return await anext(it)

    nxt: asyncio.Task[str | Outcome] = asyncio.ensure_future(pull())
    try:
        while True:
            done, _ = await asyncio.wait({nxt}, timeout=HEARTBEAT_SECONDS)
            if not done:
                yield None
                continue
            try:
                item = nxt.result()
            except StopAsyncIteration:
                return
            yield item
            nxt = asyncio.ensure_future(pull())
    finally:
        nxt.cancel()


def _stream_error(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, AgentRunError):
        kind = "agent_error"
    elif isinstance(exc, DockyardError):
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    else:
        log.exception("unhandled error while streaming: %s", exc)
        kind = "server_error"
    if isinstance(exc, DockyardError):
        return {"message": exc.message, "type": kind, "param": exc.param, "code": exc.code}
    return {
        "message": "internal error; the server log has the details",
        "type": kind,
        "param": None,
        "code": "internal_error",
    }


async def _stream(
    rt: Runtime, run: Run, model: str, known_ids: set[str], include_usage: bool
) -> AsyncIterator[bytes]:
    created = int(time.time())
    base: dict[str, Any] = {
        "id": f"chatcmpl-{run['run_id']}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _sse({**base, "choices": [choice], **extra})

    finished = False
    try:
        yield chunk({"role": "assistant", "content": ""})
        sent_text = False
        out: Outcome | None = None
        try:
            async for item in _with_heartbeat(follow(rt, run, known_ids)):
                if item is None:
                    yield _KEEPALIVE
                elif isinstance(item, Outcome):
                    out = item
                else:
                    sent_text = True
                    yield chunk({"content": item})
            assert out is not None
            out.raise_for_error()
        except Exception as exc:
            yield _sse({"error": _stream_error(exc)})
            yield _DONE
            finished = True
            return
        if out.interrupts and not sent_text:
            yield chunk({"content": interrupt_text(out.interrupts)})
        elif out.text and not sent_text:
            yield chunk({"content": out.text})  # a graph whose messages did not stream
        if out.tool_calls:
            calls = [{"index": i, **c} for i, c in enumerate(_openai_tool_calls(out.tool_calls))]
            yield chunk({"tool_calls": calls})
        yield chunk({}, out.finish_reason, dockyard=_extension(out))
        if include_usage:
            yield _sse({**base, "choices": [], "usage": out.usage})
        yield _DONE
        finished = True
    finally:
        if not finished:
            # The client went away mid-stream (a chat UI's "stop"): stop the agent too.
            # Shielded: Starlette cancels this generator's scope when the client leaves.
            with anyio.CancelScope(shield=True):
                current = await rt.storage.runs.get(run["run_id"])
                if current is not None and current["status"] in ACTIVE_RUN_STATUSES:
                    await rt.runs.cancel(current, "interrupt")
