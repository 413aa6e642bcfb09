"""Provider-neutral core of the mock servers: scripted replies, faults, recording.

A ``Wire`` knows one provider's formats (bodies, SSE events, error shapes); the
``handle_model_call`` flow below is the same for every provider, so a fault or a
scripted reply behaves identically whichever SDK is being tested.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from dockyard.providers.offline.text import count_tokens, stream_pieces


@dataclass(frozen=True)
class MockToolCall:
    """A tool call the mock model makes; ``id`` is generated when left out."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


StopReason = Literal["max_tokens", "stop_sequence"]


@dataclass(frozen=True)
class MockReply:
    """One scripted answer. Token counts default to the deterministic word counts.

    ``stop_reason`` says the reply was cut: the server sets it when the request's
    ``max_tokens`` (``max_completion_tokens``) or stop sequences cut the scripted text, as
    a provider would (OpenAI's ``finish_reason`` ``"length"``, Anthropic's ``stop_reason``
    ``"max_tokens"`` / ``"stop_sequence"``); a script may also set it directly.
    """

    text: str = ""
    tool_calls: Sequence[MockToolCall] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None

    def count_output_tokens(self) -> int:
        if self.output_tokens is not None:
            return self.output_tokens
        return count_tokens(self.text) + sum(
            count_tokens(call.name) + count_tokens(json.dumps(call.arguments))
            for call in self.tool_calls
        )


def limit_reply(reply: MockReply, body: Mapping[str, Any]) -> MockReply:
    """``reply`` as the request's stop sequences and output token limit leave it.

    A stop sequence ends the text before it; past the limit (one token per word) the
    text is cut to that many words and tool calls are dropped, since a cut-off call is
    no call at all."""
    text = reply.text
    stops = body.get("stop_sequences") or body.get("stop") or []
    stops = [stops] if isinstance(stops, str) else [s for s in stops if isinstance(s, str) and s]
    found = sorted((text.find(s), s) for s in stops if s in text)
    if found:
        at, seq = found[0]
        reply = replace(reply, text=text[:at], stop_reason="stop_sequence", stop_sequence=seq)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and reply.count_output_tokens() > limit:
        text = "".join(stream_pieces(reply.text)[:limit])
        reply = replace(
            reply, text=text, tool_calls=(), stop_reason="max_tokens", stop_sequence=None
        )
    return reply


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the mock server received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Lower-cased header names."""
    body: Any
    """The parsed JSON body, or ``None`` when it was empty or not JSON."""
    received_at: float
    """``time.monotonic()`` on arrival, to measure back-off between retries."""

    @property
    def model(self) -> str | None:
        model = self.body.get("model") if isinstance(self.body, dict) else None
        return model if isinstance(model, str) else None

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))

    @property
    def api_key(self) -> str | None:
        """The key the client sent, from ``x-api-key`` or ``Authorization: Bearer``."""
        if key := self.headers.get("x-api-key"):
            return key
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


@dataclass(frozen=True)
class ErrorFault:
    status: int
    retry_after: float | None = None
    message: str | None = None


@dataclass(frozen=True)
class SlowFault:
    seconds: float


@dataclass(frozen=True)
class MalformedFault:
    pass


@dataclass(frozen=True)
class DisconnectFault:
    after_events: int


Fault = ErrorFault | SlowFault | MalformedFault | DisconnectFault


class ServerState:
    """Everything a test scripts or inspects, shared between the test and server threads."""

    def __init__(
        self,
        *,
        api_key: str | None,
        embedding_dims: int,
        models: Sequence[str],
        latency: float = 0.0,
        record_requests: bool = True,
    ) -> None:
        self.api_key = api_key
        self.embedding_dims = embedding_dims
        self.models = tuple(models)
        self.latency = latency
        self.record_requests = record_requests
        self._lock = threading.Lock()
        self._replies: deque[MockReply] = deque()
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []

    def add_replies(self, replies: Sequence[MockReply]) -> None:
        with self._lock:
            self._replies.extend(replies)

    def add_faults(self, faults: Sequence[Fault]) -> None:
        with self._lock:
            self._faults.extend(faults)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def pending_replies(self) -> int:
        with self._lock:
            return len(self._replies)

    def reset(self) -> None:
        with self._lock:
            self._replies.clear()
            self._faults.clear()
            self._requests.clear()

    def record(self, request: RecordedRequest) -> None:
        if not self.record_requests:
            return
        with self._lock:
            self._requests.append(request)

    def pop_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def take_reply(self, *, consume: bool) -> MockReply | None:
        # A failed attempt must leave the reply queued, so the SDK's retry receives it.
        with self._lock:
            if not self._replies:
                return None
            return self._replies.popleft() if consume else self._replies[0]


ModelCallKind = Literal["chat", "embeddings"]


class Wire(Protocol):
    """One provider's wire format."""

    def error(self, status: int, message: str | None, retry_after: float | None) -> Response: ...

    def validate(self, body: dict[str, Any], kind: ModelCallKind) -> str | None: ...

    def last_text(self, body: dict[str, Any]) -> str: ...

    def count_input_tokens(self, body: dict[str, Any], kind: ModelCallKind) -> int: ...

    def message(self, reply: MockReply, body: dict[str, Any], input_tokens: int) -> Any: ...

    def stream_events(
        self, reply: MockReply, body: dict[str, Any], input_tokens: int
    ) -> list[bytes]: ...

    def malformed_events(self, body: dict[str, Any]) -> list[bytes]: ...


class EmbeddingsWire(Wire, Protocol):
    """A wire format with an embeddings endpoint (OpenAI's; Anthropic has none)."""

    def embeddings(self, body: dict[str, Any], default_dims: int, input_tokens: int) -> Any: ...


async def record(request: Request, state: ServerState) -> RecordedRequest:
    raw = await request.body()
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = None
    headers = {name.lower(): value for name, value in request.headers.items()}
    recorded = RecordedRequest(request.method, request.url.path, headers, body, time.monotonic())
    state.record(recorded)
    return recorded


async def handle_model_call(
    request: Request, state: ServerState, wire: Wire, kind: ModelCallKind
) -> Response:
    """Record the request, apply the next fault, then answer with the next reply."""
    recorded = await record(request, state)
    body = recorded.body
    if state.api_key is not None and recorded.api_key != state.api_key:
        return wire.error(401, "invalid api key (mock server)", None)
    if not isinstance(body, dict):
        return wire.error(400, "request body must be a JSON object", None)
    if problem := wire.validate(body, kind):
        return wire.error(400, problem, None)

    if state.latency > 0:
        await asyncio.sleep(state.latency)
    fault = state.pop_fault()
    if isinstance(fault, SlowFault):
        if await _sleep_unless_disconnected(request, fault.seconds):
            return Response(status_code=499)  # nobody is listening any more
        fault = None
    if isinstance(fault, ErrorFault):
        return wire.error(fault.status, fault.message, fault.retry_after)

    stream = kind == "chat" and bool(body.get("stream"))
    if isinstance(fault, MalformedFault):
        if stream:
            return EventStream(wire.malformed_events(body))
        return Response(b'{"id": "broken", "type": "mess', media_type="application/json")

    input_tokens = wire.count_input_tokens(body, kind)
    if kind == "embeddings":
        # Only routes of an EmbeddingsWire are registered with kind "embeddings".
        payload = cast(EmbeddingsWire, wire).embeddings(body, state.embedding_dims, input_tokens)
    else:
        reply = state.take_reply(consume=fault is None)
        reply = limit_reply(reply or MockReply(text=wire.last_text(body) or "echo"), body)
        if reply.input_tokens is not None:
            input_tokens = reply.input_tokens
        if stream:
            events = wire.stream_events(reply, body, input_tokens)
            cut = fault.after_events if isinstance(fault, DisconnectFault) else None
            return EventStream(events, cut_after=cut)
        payload = wire.message(reply, body, input_tokens)
    if isinstance(fault, DisconnectFault):
        return TruncatedResponse(json.dumps(payload).encode())
    return JSONResponse(payload)


async def _sleep_unless_disconnected(request: Request, seconds: float) -> bool:
    """Wait ``seconds``; return True early if the client hung up meanwhile."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(remaining, 0.02))
        if await request.is_disconnected():
            return True
    return False


class EventStream(Response):
    """A ``text/event-stream`` body, optionally cut off after ``cut_after`` events.

    Cutting returns from the ASGI call without finishing the body, which makes uvicorn
    drop the connection: exactly what a client sees when a provider dies mid-stream.
    """

    media_type = "text/event-stream"

    def __init__(self, events: list[bytes], *, cut_after: int | None = None) -> None:
        super().__init__(headers={"cache-control": "no-cache"})
        del self.headers["content-length"]
        self.events = events
        self.cut_after = cut_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        events = self.events if self.cut_after is None else self.events[: self.cut_after]
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        if self.cut_after is None:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class TruncatedResponse(Response):
    """Promises a JSON body, sends half of it, then drops the connection."""

    media_type = "application/json"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})


def sse(data: Any, event: str | None = None) -> bytes:
    prefix = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{prefix}data: {payload}\n\n".encode()


def collect_text(value: Any) -> list[str]:
    """Every string under a ``text``/``content`` key (or bare) in a message structure."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in collect_text(item)]
    if isinstance(value, dict):
        found: list[str] = []
        for key in ("text", "content"):
            if key in value:
                found.extend(collect_text(value[key]))
        return found
    return []
