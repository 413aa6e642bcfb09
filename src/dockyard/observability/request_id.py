"""``X-Request-Id``: kept from the client or made here, returned on every response, bound
for every log line of the request and carried by the runs it creates.

A client's id is kept when it is short and plain (``[A-Za-z0-9._:-]``, up to 128
characters); anything else is replaced, so that a log line never carries what a client
chose to smuggle into it. The middleware sits outside authentication and the error
handler: a 401, a 429 and a 500 carry the header too. With ``observability.logs.requests``
it also logs one line per request: method, route template (never the path or the query,
which may hold personal data), status and duration. That line is a structlog call, not a
stdlib record: half the cost, on every request (observability/logs.py).
"""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_VALID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_CURRENT: ContextVar[str | None] = ContextVar("dockyard_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this task serves; None outside a request."""
    return _CURRENT.get()


def accepted(value: bytes | None) -> str | None:
    """A client's id, if it is one dockyard keeps."""
    if value is None:
        return None
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if _VALID.fullmatch(text) else None


def route_of(scope: Scope) -> str:
    """The matched route's template (``/threads/{thread_id}/runs``), ``other`` if none."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else "other"


class RequestId:
    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        # Bound now: the logging that create_app configured just before, resolved once.
        self.access = structlog.get_logger().bind(logger="dockyard.access")
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == HEADER:
                given = value
                break
        request_id = accepted(given) or uuid.uuid4().hex
        raw = request_id.encode("ascii")
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER]
                headers.append((HEADER, raw))
                message = {**message, "headers": headers}
            await send(message)

        token = _CURRENT.set(request_id)
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    if self.log_requests:
                        self.access.info(
                            "request",
                            method=scope["method"],
                            route=route_of(scope),
                            status=status or 500,
                            duration_ms=round((time.perf_counter() - started) * 1000, 2),
                        )
        finally:
            _CURRENT.reset(token)
