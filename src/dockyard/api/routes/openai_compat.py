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

Sampling settings
    ``max_tokens`` (or ``max_completion_tokens``), ``temperature``, ``top_p``, ``stop``,
    ``seed``, ``presence_penalty`` and ``frequency_penalty`` go to the run as
    ``config["configurable"]["model_params"]`` (over the assistant's own, key by key);
    the models dockyard builds apply them to each model call of the run
    (``dockyard.sampling``, docs/openai.md).

Errors use OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``; an agent
that fails answers 502 ``agent_failed`` (504 ``agent_timeout``) with the run's error, a
policy's refusal inside the run its own status and code (docs/errors.md).
Request fields dockyard does not honour (``tools``, ``n`` > 1, ``logprobs``, ...) are
refused with 422 naming the field, never ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Header, Response

from dockyard.api import gateway
from dockyard.api.conversation import (
    Outcome,
    find_thread,
    follow,
    interrupt_text,
    new_messages,
    outcome_of,
    pending_interrupts,
    resolve_model,
    resume_command,
    start_run,
    state_messages,
    text_of,
    to_langchain,
)
from dockyard.api.deps import DockyardProcess, ProcessDep
from dockyard.api.gateway import is_gateway_model
from dockyard.api.openai_errors import (
    RUN_HEADER,
    THREAD_HEADER,
    THREAD_ID_RE,
    UNSUPPORTED_FIELDS,
    OpenAIRoute,
    stream_error,
)
from dockyard.api.openai_schemas import ChatCompletionRequest
from dockyard.api.responses import json_response, sse_response
from dockyard.api.sse import cancel_when_client_leaves
from dockyard.errors import (
    ConflictError,
    InvalidRequestError,
    UnsupportedFieldError,
)
from dockyard.policies import tenancy
from dockyard.runtime.assistants import CONFIG_METADATA_KEY
from dockyard.runtime.serde import dumps
from dockyard.sampling import MODEL_PARAMS_KEY
from dockyard.storage.base import Assistant, Run

log = logging.getLogger("dockyard.api.openai")

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)


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


async def _all_assistants(rt: DockyardProcess) -> list[Assistant]:
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
async def list_models(rt: ProcessDep) -> Response:
    """Every graph (by name, its default assistant), every assistant of ``assistants:`` (by
    name) and every assistant created over the API (by id). A graph's default assistant is
    listed once, under the graph's name. A tenant's key sees the shared ones and its own."""
    assistants = [a for a in await _all_assistants(rt) if tenancy.visible_or_shared(a["metadata"])]
    data: list[dict[str, Any]] = []
    for a in assistants:
        is_default = a["metadata"].get("created_by") == "system" and a["name"] == a["graph_id"]
        if is_default and a["graph_id"] in rt.registry:
            data.append(_model_obj(a["graph_id"], a["created_at"], a))
    for a in assistants:
        # The assistants of `assistants:` in dockyard.yaml, by their name.
        name = a["metadata"].get(CONFIG_METADATA_KEY)
        if name in rt.settings.assistants and a["graph_id"] in rt.registry:
            data.append(_model_obj(name, a["created_at"], a))
    for a in assistants:
        if a["metadata"].get("created_by") != "system" and a["graph_id"] in rt.registry:
            data.append(_model_obj(a["assistant_id"], a["created_at"], a))
    data.extend(gateway.model_objects(rt))
    return json_response({"object": "list", "data": data})


@router.get("/models/{model_id}")
async def get_model(model_id: str, rt: ProcessDep) -> Response:
    if is_gateway_model(rt, model_id):
        (obj,) = [m for m in gateway.model_objects(rt) if m["id"] == model_id]
        return json_response(obj)
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
    config: dict[str, Any] | None
    new_thread: dict[str, Any] | None = None  # the metadata of a thread the run creates


def _refuse(field: str) -> UnsupportedFieldError:
    return UnsupportedFieldError(
        f"{field} is not supported: {UNSUPPORTED_FIELDS[field]}", param=field
    )


def _run_config(assistant: Assistant, body: ChatCompletionRequest) -> dict[str, Any] | None:
    """The run's config: the request's sampling settings over the assistant's."""
    params = body.model_params()
    if not params:
        return None
    configurable = (assistant["config"] or {}).get("configurable") or {}
    own = configurable.get(MODEL_PARAMS_KEY)
    merged = {**own, **params} if isinstance(own, dict) else params
    return {"configurable": {MODEL_PARAMS_KEY: merged}}


async def _plan(rt: DockyardProcess, body: ChatCompletionRequest, thread_id: str | None) -> _Turn:
    for field in ("tools", "tool_choice"):
        if getattr(body, field) is not None:
            raise _refuse(field)
    if body.n is not None and body.n != 1:
        raise _refuse("n")
    if body.logprobs:
        raise _refuse("logprobs")
    if body.response_format is not None and body.response_format != {"type": "text"}:
        raise _refuse("response_format")
    assistant = await resolve_model(rt, body.model)
    metadata: dict[str, Any] = dict(body.metadata or {})
    if body.user is not None:
        metadata["user"] = body.user
    messages = list(body.messages)
    known: set[str] = set()
    command: dict[str, Any] | None = None
    new_thread: dict[str, Any] | None = None
    if thread_id is not None:
        if not THREAD_ID_RE.match(thread_id):
            raise InvalidRequestError(
                f"{THREAD_HEADER}: {thread_id!r} is not a thread id (1-64 letters, digits, "
                "'.', '_', ':' or '-')",
                param=THREAD_HEADER,
            )
        thread = await find_thread(rt, thread_id, assistant)
        if thread is None:
            new_thread = {"created_by": "openai_compat"}
        in_state = state_messages(thread["values"]) if thread is not None else []
        known = {str(m["id"]) for m in in_state if m.get("id")}
        if thread is not None and (in_state or pending_interrupts(thread)):
            messages = new_messages(messages)
            if not messages:
                raise InvalidRequestError(
                    "messages: nothing new to send; the thread already has everything up to "
                    "the last assistant message",
                    param="messages",
                )
        if thread is not None and pending_interrupts(thread):
            if len(messages) != 1 or messages[0].role != "user":
                raise ConflictError(
                    f"thread {thread_id} is waiting on an interrupt; answer it with exactly "
                    "one new user message",
                    code="thread_interrupted",
                )
            command = resume_command(thread, text_of(messages[0].content))
    graph_input: dict[str, Any] | None = None
    if command is None:
        lc = [to_langchain(m) for m in messages]
        known |= {m["id"] for m in lc}
        graph_input = {"messages": lc}
    config = _run_config(assistant, body)
    return _Turn(assistant, thread_id, graph_input, command, known, metadata, config, new_thread)


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
    rt: ProcessDep,
    x_thread_id: str | None = Header(None, alias=THREAD_HEADER),
    x_dockyard_cache: str | None = Header(None, alias=gateway.CACHE_HEADER),
) -> Response:
    if is_gateway_model(rt, body.model):
        if x_thread_id is not None:
            raise InvalidRequestError(
                f"{THREAD_HEADER}: {body.model!r} is a model, which keeps no thread; send "
                "the whole conversation in messages, or name an assistant",
                param=THREAD_HEADER,
            )
        return await gateway.complete(rt, body, x_dockyard_cache)
    turn = await _plan(rt, body, x_thread_id)
    run = await start_run(
        rt,
        turn.assistant,
        turn.thread_id,
        graph_input=turn.graph_input,
        command=turn.command,
        metadata=turn.metadata,
        config=turn.config,
        stream=body.stream,
        new_thread=turn.new_thread,
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


async def _stream(
    rt: DockyardProcess, run: Run, model: str, known_ids: set[str], include_usage: bool
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
            yield _sse({"error": stream_error(exc)})
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
            # The client went away mid-stream (a chat UI's "stop"): stop the agent too,
            # in a task of its own, since this generator is being torn down.
            cancel_when_client_leaves(rt, run["run_id"])
