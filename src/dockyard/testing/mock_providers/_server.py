"""Mock provider servers: real HTTP on 127.0.0.1, in a background thread.

A real socket (rather than an in-process transport) means the provider SDKs run their
whole stack against it: connection pools, timeouts, retries with ``retry-after``, SSE
decoding. The server thread owns its own event loop, so the same server works for sync
and async clients and for tests with or without a running loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from dockyard.testing.mock_providers._anthropic import anthropic_routes
from dockyard.testing.mock_providers._core import (
    DisconnectFault,
    ErrorFault,
    MalformedFault,
    MockReply,
    MockToolCall,
    RecordedRequest,
    ServerState,
    SlowFault,
)
from dockyard.testing.mock_providers._openai import openai_routes

Provider = Literal["anthropic", "openai"]

_STARTUP_TIMEOUT = 10.0
_THREAD_PREFIX = "dockyard-mock-provider:"


class _QuietDisconnects(logging.Filter):
    """Hide uvicorn's complaint about the responses a disconnect fault cuts short.

    Only records logged from mock-server threads are dropped, so the same message from
    any other uvicorn server in the process still shows.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.threadName is not None
            and record.threadName.startswith(_THREAD_PREFIX)
            and record.getMessage().startswith("ASGI callable returned without completing")
        )


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDisconnects) for f in logger.filters):
        logger.addFilter(_QuietDisconnects())


class MockProviderServer:
    """A fake model provider you script from your test.

    Replies come from a queue (``enqueue_text``, ``enqueue_tool_call``, ``enqueue``);
    with the queue empty the server echoes the last message's text. Faults are queued
    too and each model request (messages, chat completions, embeddings) consumes the
    next one: ``fail_next``, ``slow_next``, ``malformed_next``, ``disconnect_next``. A
    request that fails leaves the scripted reply queued, so the SDK's retry gets it;
    a slow request that completes consumes it. Every request is in ``requests``.

    This base class serves both APIs on one port (the standalone CLI uses it); tests
    usually want ``MockAnthropicServer`` or ``MockOpenAIServer``.
    """

    providers: ClassVar[tuple[Provider, ...]] = ("anthropic", "openai")
    base_path: ClassVar[str] = ""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        port: int = 0,
        embedding_dims: int = 1536,
        models: Sequence[str] = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small"),
        latency: float = 0.0,
        record_requests: bool = True,
    ) -> None:
        """``api_key``: when set, requests carrying another key get a 401.

        ``latency``: seconds every model request (messages, chat completions, embeddings)
        waits before its answer starts, as a real provider's time to first token; a
        ``slow_next`` fault waits on top of it. ``record_requests=False`` keeps
        ``requests`` empty, so a long benchmark does not hold every request in memory.
        """
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency}")
        self._state = ServerState(
            api_key=api_key,
            embedding_dims=embedding_dims,
            models=models,
            latency=latency,
            record_requests=record_requests,
        )
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{self!r} is already running")
        # IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off only on
        # connections whose socket says TCP. With it on, every answer after a
        # connection's first waited ~40 ms for the client's delayed ACK (uvicorn writes
        # the headers and the body apart).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._requested_port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            Starlette(routes=self._routes()),
            # No log_config: never reconfigure the logging of the process under test.
            log_config=None,
            access_log=False,
            http="h11",
            ws="none",
            lifespan="off",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"{_THREAD_PREFIX}{type(self).__name__}:{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        _install_log_filter()
        thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._server = self._thread = None
                sock.close()
                raise RuntimeError(f"{type(self).__name__} failed to start on {self.url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _routes(self) -> list[Route]:
        routes: list[Route] = []
        if "anthropic" in self.providers:
            routes += anthropic_routes(self._state)
        if "openai" in self.providers:
            routes += openai_routes(self._state)
        return routes

    # -- addresses ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started; use it as a context manager")
        return self._port

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's (or LangChain model's) ``base_url``."""
        return self.url + self.base_path

    # -- scripting ---------------------------------------------------------------------

    def enqueue(self, *replies: MockReply | str) -> None:
        self._state.add_replies([MockReply(text=r) if isinstance(r, str) else r for r in replies])

    def enqueue_text(
        self, text: str, *, input_tokens: int | None = None, output_tokens: int | None = None
    ) -> None:
        self.enqueue(MockReply(text, input_tokens=input_tokens, output_tokens=output_tokens))

    def enqueue_tool_call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        text: str = "",
        call_id: str | None = None,
    ) -> None:
        """Queue a reply that calls one tool (``text`` is sent before the call)."""
        self.enqueue(MockReply(text, tool_calls=(MockToolCall(name, arguments or {}, call_id),)))

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` model requests with ``status`` in the provider's error
        shape; ``retry_after`` (seconds, fractions allowed) sets the ``retry-after`` header."""
        self._state.add_faults([ErrorFault(status, retry_after, message)] * times)

    def slow_next(self, seconds: float, *, times: int = 1) -> None:
        """Wait ``seconds`` before the first byte of the next ``times`` responses."""
        self._state.add_faults([SlowFault(seconds)] * times)

    def malformed_next(self, *, times: int = 1) -> None:
        """Send invalid JSON (or, when streaming, a broken SSE event) ``times`` times."""
        self._state.add_faults([MalformedFault()] * times)

    def disconnect_next(self, *, after_events: int = 3, times: int = 1) -> None:
        """Drop the connection mid-response: a stream after ``after_events`` SSE events,
        a plain response halfway through its body."""
        self._state.add_faults([DisconnectFault(after_events)] * times)

    def reset(self) -> None:
        """Forget queued replies, queued faults and recorded requests."""
        self._state.reset()

    # -- inspection --------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        return self._state.requests()

    @property
    def pending_replies(self) -> int:
        return self._state.pending_replies()

    def __repr__(self) -> str:
        where = f"http://127.0.0.1:{self._port}" if self._port else "not started"
        return f"{type(self).__name__}({where})"


class MockAnthropicServer(MockProviderServer):
    """Speaks the Anthropic Messages API: ``POST /v1/messages`` (+ ``count_tokens``).

    ``base_url`` is the server root, as the ``anthropic`` SDK expects.
    """

    providers = ("anthropic",)


class MockOpenAIServer(MockProviderServer):
    """Speaks OpenAI Chat Completions, ``GET /v1/models`` and ``POST /v1/embeddings``.

    ``base_url`` ends in ``/v1``, as the ``openai`` SDK expects.
    """

    providers = ("openai",)
    base_path = "/v1"
