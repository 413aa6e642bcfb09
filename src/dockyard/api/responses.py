"""JSON and SSE responses for the Agent Server routes (the bodies: ``runtime.shapes``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import anyio
from fastapi import Response
from fastapi.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from dockyard.runtime.serde import dumps

T = TypeVar("T")


def json_response(
    obj: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    body = obj if isinstance(obj, bytes) else dumps(obj)
    return Response(
        body, status_code=status_code, media_type="application/json", headers=dict(headers or {})
    )


class ClosingStreamingResponse(StreamingResponse):
    """Closes its body generator as soon as the response ends, client gone or not.

    When the client disconnects, Starlette cancels the send loop; a generator
    suspended at a ``yield`` is then only finalised when garbage-collected, so
    its clean-up (``on_disconnect=cancel``) could wait indefinitely.

    ``eager_first``: the body's first chunk is ready at once (a run's metadata event);
    it is taken and written with the headers before Starlette starts its send and
    disconnect tasks: a loop turn sooner, which on a busy server is most of the time
    to a stream's first event. The body generator has then started, so its clean-up
    runs even when the client hangs up right after that chunk.
    """

    def __init__(
        self, content: AsyncIterator[bytes], *, eager_first: bool = False, **kw: Any
    ) -> None:
        super().__init__(content, **kw)
        self.eager_first = eager_first

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self.eager_first:
                head = await anext(aiter(self.body_iterator), None)
                if head is not None:
                    start = {
                        "type": "http.response.start",
                        "status": self.status_code,
                        "headers": self.raw_headers,
                    }
                    await send(start)
                    await send({"type": "http.response.body", "body": head, "more_body": True})
                    send = _without_start(send)
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


def _without_start(send: Send) -> Send:
    async def rest(message: Message) -> None:
        if message["type"] != "http.response.start":  # already sent with the head
            await send(message)

    return rest


def sse_response(
    body: AsyncIterator[bytes], headers: Mapping[str, str] | None = None, eager_first: bool = False
) -> StreamingResponse:
    return ClosingStreamingResponse(
        body,
        eager_first=eager_first,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **(headers or {})},
    )


def page(items: list[T], limit: int, offset: int) -> tuple[list[T], dict[str, str]]:
    """Trim a result fetched with ``limit + 1`` rows; the extra row says a next page exists."""
    if len(items) > limit:
        return items[:limit], {"X-Pagination-Next": str(offset + limit)}
    return items, {}


def select_fields(obj: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if not select:
        return obj
    return {k: v for k, v in obj.items() if k in select}
