"""``/v1/chat/completions`` for the models under ``models:``: dockyard as an LLM gateway.

A request naming a model (``"default"`` or another name under ``models:``) instead of an
assistant goes straight to that model, no graph: through the same chain every graph's
``chat_model(...)`` gets (routing, cache, PII, retries, fallbacks, the breaker), after the
same request policies (rate limits as middleware, the input guard here), with tools,
``tool_choice``, ``response_format``, streaming with ``stream_options.include_usage`` and
the sampling settings passed on. A routed call names its tier in ``X-Dockyard-Tier``; each
call's usage goes to the usage ledger, in a batch, once the answer is out (``_Ledger``).
With ``policies.budget`` a call holds its estimate on its caller's budgets first and
settles with its cost when it ends (its ledger rows then written at once: the hold stops
counting when they exist).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Header
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_messages
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config
from starlette.responses import Response

from dockyard import caller
from dockyard.api.conversation import to_langchain
from dockyard.api.deps import DockyardProcess
from dockyard.api.openai_errors import UNSUPPORTED_FIELDS, stream_error
from dockyard.api.openai_schemas import ChatCompletionRequest
from dockyard.api.responses import json_response, sse_response
from dockyard.errors import InvalidRequestError, UnsupportedFieldError
from dockyard.observability.run_metrics import call_handlers
from dockyard.policies.budget import Budgets
from dockyard.policies.cache import CACHE_KEY
from dockyard.policies.input_limits import estimate_tokens, request_texts
from dockyard.policies.routing import PRIORITY_FIELD
from dockyard.providers.registry import TIER_KEY, Route
from dockyard.run_spec import RunSpec
from dockyard.runtime.serde import dumps
from dockyard.runtime.usage import Usage, UsageTally
from dockyard.sampling import MODEL_PARAMS_KEY

log = logging.getLogger("dockyard.api.gateway")

GATEWAY_ASSISTANT_PREFIX = "gateway:"
"""The usage ledger's assistant of a gateway call: ``gateway:<model name>``."""

# What /v1/models gives as a model's "created": when this process started serving it.
_STARTED = int(time.time())

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
}


def is_gateway_model(rt: DockyardProcess, name: str) -> bool:
    """A model the gateway serves: a name under ``models:`` (and ``default``). Graph
    names cannot be model names (a clash stops start-up), so the two never compete."""
    return name in rt.registry.models.names


def _refuse(field: str, why: str | None = None) -> UnsupportedFieldError:
    return UnsupportedFieldError(
        f"{field} is not supported: {why or UNSUPPORTED_FIELDS[field]}", param=field
    )


def _check(body: ChatCompletionRequest) -> None:
    if body.n is not None and body.n != 1:
        raise _refuse("n")
    if body.logprobs:
        raise _refuse("logprobs")


def _model(
    rt: DockyardProcess, body: ChatCompletionRequest, name: str
) -> Runnable[Any, BaseMessage]:
    """The model ``name`` (``body.model``, or the tier's it was routed to), bound to the
    request's tools and response format."""
    models = rt.registry.models
    model: BaseChatModel = models.get(name)
    bound: dict[str, Any] = {}
    fmt = body.response_format
    if fmt is not None and fmt.get("type") != "text":
        provider = models.spec(name)
        if provider is None or not provider.model.startswith("openai:"):
            raise _refuse(
                "response_format",
                f"model {name!r} is not an OpenAI model; ask for JSON in the messages "
                "or use an OpenAI model",
            )
        bound["response_format"] = fmt
    if body.tools:
        choice: dict[str, Any] = {}
        if body.tool_choice is not None:
            choice["tool_choice"] = body.tool_choice
        runnable: Runnable[Any, BaseMessage] = model.bind_tools(body.tools, **choice)
        if bound:
            runnable = runnable.bind(**bound)
        return runnable
    if body.tool_choice is not None:
        raise InvalidRequestError(
            "tool_choice needs tools: send the tools it chooses from", param="tool_choice"
        )
    return model.bind(**bound) if bound else model


async def _admit(rt: DockyardProcess, model: str, messages: list[dict[str, Any]]) -> None:
    guard = rt.runs.admission.input_guard
    if guard is not None:
        guard.check(RunSpec(assistant_id=model, input={"messages": messages}), None)


async def _hold(
    rt: DockyardProcess,
    body: ChatCompletionRequest,
    dicts: list[dict[str, Any]],
    ledger: _Ledger,
    config: RunnableConfig,
) -> None:
    """Apply ``policies.budget``: the max_tokens cap (into ``config``), then hold the
    call's estimate on its caller's budgets."""
    budgets = rt.runs.admission.budgets
    if budgets is None:
        return
    asked = body.max_completion_tokens or body.max_tokens
    allowed = budgets.check_max_tokens(asked, "max_tokens")
    if allowed != asked:
        configurable = config.setdefault("configurable", {})
        configurable[MODEL_PARAMS_KEY] = {
            **configurable.get(MODEL_PARAMS_KEY, {}),
            "max_tokens": allowed,
        }
    spec = RunSpec(assistant_id=body.model, input={"messages": dicts})
    tokens = sum(estimate_tokens(t.text) for t in request_texts(spec))
    ledger.budgets = budgets
    ledger.held = await budgets.hold_for_caller(
        ledger.run_id, budgets.estimate(tokens, allowed, body.model)
    )


CACHE_HEADER = "X-Dockyard-Cache"
# The header as a route parameter (the gateway route and the Agent Server run routes).
CacheHeader = Annotated[str | None, Header(alias=CACHE_HEADER)]


def cache_bypass(header: str | None) -> bool:
    """Whether the ``X-Dockyard-Cache`` header asks to bypass the response cache."""
    if header is None:
        return False
    if header.strip().lower() != "bypass":
        raise InvalidRequestError(
            f"{CACHE_HEADER}: {header!r} is not a cache directive; send 'bypass' or leave "
            "the header out",
            param=CACHE_HEADER,
        )
    return True


def _config(body: ChatCompletionRequest, bypass: bool = False) -> RunnableConfig:
    configurable: dict[str, Any] = {}
    if params := body.model_params():
        configurable[MODEL_PARAMS_KEY] = params
    if bypass:
        configurable[CACHE_KEY] = False
    return {"configurable": configurable} if configurable else {}


TIER_HEADER = "X-Dockyard-Tier"


def _route(
    rt: DockyardProcess, body: ChatCompletionRequest, messages: list[BaseMessage]
) -> Route | None:
    """Where ``policies.routing`` sends the call; the request's ``metadata.priority`` is
    the call's priority (a gateway call has no run)."""
    models = rt.registry.models
    if models.router is None:
        return None
    priority = (body.metadata or {}).get(PRIORITY_FIELD)
    _, route = models.routed(
        body.model, messages, body.tools or (), priority if isinstance(priority, str) else None
    )
    return route


class _Ledger:
    """The usage of one gateway call, for the usage ledger: the calls a ``UsageTally`` in
    the call's config observed, under run id = the completion's id, assistant
    ``gateway:<model name asked for>``, and the caller's tenant and key."""

    def __init__(self, rt: DockyardProcess, body: ChatCompletionRequest, completion_id: str):
        self.rt = rt
        self.usage = Usage()
        self.tally = UsageTally(self.usage, rt.runs.ctx.prices)
        self.run_id = completion_id
        self.assistant_id = f"{GATEWAY_ASSISTANT_PREFIX}{body.model}"[:64]
        who = caller.current()
        self.tenant_id = who.tenant if who is not None else None
        self.key_id = who.key_id if who is not None else None

    budgets: Budgets | None = None
    held = False  # the call holds an estimate on its caller's budgets

    async def finish(self) -> None:
        """The call ended (answered, failed or cut short): its usage to the ledger, its
        budget hold settled with its cost (or released when no model call completed)."""
        if not self.held or self.budgets is None:
            self.record()
            return
        if self.usage.model_calls:
            # At once, not batched: the hold stops counting when its rows exist.
            await self.rt.storage.usage.record(self._rows())
            await self.budgets.settle(self.run_id, self.usage.cost_usd)
        else:
            await self.budgets.release(self.run_id)

    def _rows(self) -> list[Any]:
        return self.usage.ledger(
            self.run_id, self.assistant_id, tenant_id=self.tenant_id, key_id=self.key_id
        )

    def record(self) -> None:
        """Hand the call's rows to the process's ledger writer (written within a moment,
        in a batch: the answer does not wait for the database)."""
        if not self.usage.model_calls:
            return
        rows = self._rows()
        if self.rt.ledger is None:  # a process built without open_runtime
            log.warning("gateway call %s: no ledger writer; usage not recorded", self.run_id)
            return
        self.rt.ledger.add(rows)


def _tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    return [
        {
            "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
        }
        for call in message.tool_calls
    ]


def _reason(meta: dict[str, Any]) -> str | None:
    reason = meta.get("finish_reason") or meta.get("stop_reason")
    return reason if isinstance(reason, str) and reason else None


def _finish(reason: str | None, tool_calls: bool) -> str:
    if reason is not None:
        return _FINISH.get(reason, reason)
    return "tool_calls" if tool_calls else "stop"


def _finish_reason(message: BaseMessage) -> str:
    return _finish(
        _reason(message.response_metadata or {}), bool(getattr(message, "tool_calls", None))
    )


def _usage(message: BaseMessage) -> dict[str, int] | None:
    return _usage_of(getattr(message, "usage_metadata", None))


def _usage_of(meta: UsageMetadata | None) -> dict[str, int] | None:
    if not meta:
        return None
    return {
        "prompt_tokens": meta.get("input_tokens", 0),
        "completion_tokens": meta.get("output_tokens", 0),
        "total_tokens": meta.get("total_tokens", 0),
    }


@contextmanager
def _as_the_run(config: RunnableConfig) -> Iterator[None]:
    """``config`` as the calling run's: the model chain's layers read a call's
    ``configurable`` from there (``ModelCall.config``), as in a graph node. Without its
    callbacks: a binding (tools) merges this config with the call's, and would report
    the call twice to them."""
    outer = {k: v for k, v in config.items() if k != "callbacks"}
    token = var_child_runnable_config.set(outer)  # type: ignore[arg-type]
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


async def complete(
    rt: DockyardProcess, body: ChatCompletionRequest, cache_header: str | None = None
) -> Response:
    _check(body)
    # Converted once for the guard, the budget's estimate and the model: each message gets
    # a uuid4 (an os.urandom call), about 1% of a gateway call's CPU in
    # bench/gateway_bench.py's profile.
    dicts = [to_langchain(m) for m in body.messages]
    messages = convert_to_messages(dicts)
    route = _route(rt, body, messages)
    model = _model(rt, body, route.model if route is not None else body.model)
    await _admit(rt, body.model, dicts)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    config = _config(body, cache_bypass(cache_header))
    ledger = _Ledger(rt, body, completion_id)
    # The tally first: the metrics handler reads the calls it records.
    config["callbacks"] = [
        ledger.tally,
        *call_handlers(ledger.usage, ledger.tenant_id, ledger.assistant_id),
    ]
    await _hold(rt, body, dicts, ledger, config)
    headers: dict[str, str] = {}
    if route is not None:
        config["metadata"] = {TIER_KEY: route.tier}
        headers[TIER_HEADER] = route.tier
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = model.astream(messages, config)
        # The first chunk is awaited here: a refusal or a dead provider still answers with
        # its own status, not a 200 whose stream then fails.
        try:
            with _as_the_run(config):
                first = await anext(aiter(chunks), None)
        except BaseException:
            await ledger.finish()
            raise
        stream = _sse(chunks, first, body.model, completion_id, include_usage, ledger)
        return sse_response(stream, headers)
    try:
        with _as_the_run(config):
            answer = await model.ainvoke(messages, config)
    except BaseException:
        await ledger.finish()
        raise
    assert isinstance(answer, AIMessage)
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if answer.tool_calls:
        message["tool_calls"] = _tool_calls(answer)
    response = json_response(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": _finish_reason(answer),
                    "logprobs": None,
                }
            ],
            "usage": _usage(answer),
            "system_fingerprint": None,
        },
        headers=headers,
    )
    await ledger.finish()
    return response


def _chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    obj = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return b"data: " + dumps(obj) + b"\n\n"


async def _sse(
    chunks: AsyncIterator[BaseMessage],
    first: BaseMessage | None,
    model: str,
    cid: str,
    include_usage: bool,
    ledger: _Ledger,
) -> AsyncIterator[bytes]:
    try:
        async for event in _events(chunks, first, model, cid, include_usage):
            yield event
    finally:  # also when the client left mid-stream: what was used until then
        await ledger.finish()


async def _events(
    chunks: AsyncIterator[BaseMessage],
    first: BaseMessage | None,
    model: str,
    cid: str,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    yield _chunk(cid, model, {"role": "assistant", "content": ""})
    # What the end of the stream reports, gathered part by part: adding the parts up
    # (a new message each time) cost more than the rest of this generator.
    reason: str | None = None
    usage: UsageMetadata | None = None
    tool_index: dict[int, int] = {}
    try:
        pending = [first] if first is not None else []
        async for part in _chain(pending, chunks):
            if not isinstance(part, AIMessageChunk):
                continue
            reason = _reason(part.response_metadata) or reason
            if part.usage_metadata:
                usage = add_usage(usage, part.usage_metadata)
            delta: dict[str, Any] = {}
            if part.text:
                delta["content"] = part.text
            calls = []
            for tc in part.tool_call_chunks:
                index = tc.get("index") or 0
                fresh = index not in tool_index
                tool_index.setdefault(index, len(tool_index))
                call: dict[str, Any] = {"index": tool_index[index]}
                if fresh:
                    call.update(id=tc.get("id"), type="function")
                call["function"] = {
                    k: v for k, v in (("name", tc.get("name")), ("arguments", tc.get("args"))) if v
                }
                calls.append(call)
            if calls:
                delta["tool_calls"] = calls
            if delta:
                yield _chunk(cid, model, delta)
        yield _chunk(cid, model, {}, _finish(reason, bool(tool_index)))
        if include_usage:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [],
                "usage": _usage_of(usage)
                or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
            yield b"data: " + dumps(obj) + b"\n\n"
    except Exception as e:  # its status went out with the first chunk
        yield b"data: " + dumps({"error": stream_error(e)}) + b"\n\n"
    yield b"data: [DONE]\n\n"


async def _chain(
    first: list[BaseMessage], rest: AsyncIterator[BaseMessage]
) -> AsyncIterator[BaseMessage]:
    for part in first:
        yield part
    async for part in rest:
        yield part


def model_objects(rt: DockyardProcess) -> list[dict[str, Any]]:
    """``GET /v1/models`` entries for the models the gateway serves."""
    models = rt.registry.models
    out = []
    for name in models.names:
        spec = models.spec(name)
        out.append(
            {
                "id": name,
                "object": "model",
                "created": _STARTED,
                "owned_by": "dockyard",
                "dockyard": {"model": spec.model if spec is not None else None},
            }
        )
    return out
