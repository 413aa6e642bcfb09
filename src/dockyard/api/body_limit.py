"""Refuse a request body over ``server.max_body_bytes`` or a JSON body nested deeper than
``server.max_json_depth`` before the app reads or parses it. The input guardrail's
``policies.input.max_body_bytes`` (no larger, settings.py checks) is the same cap, lower,
answered 413 ``input_too_large`` naming it.

The body is read here, counted as it arrives, and handed on in one piece: every route
reads its body whole before it does anything, so holding it here costs no extra memory,
and a refused request never reaches a route (nothing is stored, no parser recursion).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from itertools import accumulate

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.errors import (
    DockyardError,
    InputTooLargeError,
    InvalidRequestError,
    PayloadTooLargeError,
)

# Builds the refusal's response: the route family decides the error shape (api/app.py).
Refusal = Callable[[Scope, DockyardError], ASGIApp]

# A JSON text's brackets and string quotes, objects' brackets as arrays': only the
# nesting counts.
_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
_RUN = re.compile(rb"\[+|\]+")
_PASS_WHILE = 16


def json_too_deep(body: bytes, max_depth: int) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects deeper than ``max_depth``.

    No recursion, and linear in bytes-level operations done in C; brackets inside
    strings do not count. Text that is not JSON gets an estimate: the parser refuses it
    anyway, this only has to keep the parser from recursing deeply first.
    """
    # Most bodies have fewer brackets in all than the limit: two counts and done.
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    if b"\\" in body:
        # Escaped backslashes, then escaped quotes: every '"' left delimits a string.
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(_TO_SQUARE, _NOT_STRUCTURE)
    if b'"' in skeleton:
        # Adjacent quotes enclose nothing, or nothing lies between two strings: dropping
        # them first leaves only the strings that hold brackets to split out.
        skeleton = b"".join(skeleton.replace(b'""', b"").split(b'"')[::2])
    if b"[" * (max_depth + 1) in skeleton:
        return True
    # Each pass removes the innermost level (every "[]"), while that shrinks it by much...
    removed = 0
    while skeleton.count(b"[]") * _PASS_WHILE > len(skeleton):
        skeleton = skeleton.replace(b"[]", b"")
        removed += 1
    # ...then what is left has few runs of "[" and "]": the depth is the highest sum
    # of their lengths, "]" runs counted negative.
    runs = list(map(len, _RUN.findall(skeleton)))
    closing = 1 if skeleton[:1] == b"[" else 0
    runs[closing::2] = map(operator.neg, runs[closing::2])
    return removed + max(accumulate(runs), default=0) > max_depth


def _jsonish(content_type: bytes) -> bool:
    # FastAPI parses a body without Content-Type as JSON; LangGraph Studio sends
    # JSON as text/plain. Uploads of other types may hold any bytes.
    content_type = content_type.lower()
    return not content_type or b"json" in content_type or content_type.startswith(b"text/plain")


class BodyLimit:
    """Pure ASGI: refuses bodies over ``max_bytes`` (413) or JSON deeper than
    ``max_depth`` (422) with the response ``refusal`` builds."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        max_depth: int,
        refusal: Refusal,
        policy_max_bytes: int | None = None,
    ):
        self.app = app
        self.max_bytes = min(max_bytes, policy_max_bytes or max_bytes)
        self.by_policy = policy_max_bytes is not None
        self.max_depth = max_depth
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: int | None = None
        framed = False  # Transfer-Encoding: a body of unannounced length
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:  # the HTTP server refuses these itself
                    length = None
            elif name == b"transfer-encoding":
                framed = True
            elif name == b"content-type":
                content_type = value
        if length == 0 or (length is None and not framed and scope.get("http_version") != "2"):
            await self.app(scope, receive, send)  # HTTP/1: no body to limit
            return
        if length is not None and length > self.max_bytes:
            error = self._too_large(f"Content-Length: {length}")
            await self._refuse(scope, receive, send, error)
            return

        message = await receive()
        if message["type"] != "http.request":  # the client left before sending a body
            return
        body: bytes = message.get("body", b"")
        size = len(body)
        chunks: list[bytes] | None = None
        while size <= self.max_bytes and message.get("more_body", False):
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left mid-body
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if chunks is None:
                chunks = [body]
            chunks.append(chunk)
        if size > self.max_bytes:
            more = "received and counting" if message.get("more_body", False) else "in all"
            await self._refuse(scope, receive, send, self._too_large(f"{size} bytes {more}"))
            return
        if chunks is not None:
            body = b"".join(chunks)
            message = {"type": "http.request", "body": body, "more_body": False}
        if _jsonish(content_type) and json_too_deep(body, self.max_depth):
            await self._refuse(scope, receive, send, self._too_deep())
            return

        pending: Message | None = message

        async def replay() -> Message:
            # The body once, then the client's own messages (http.disconnect).
            nonlocal pending
            if pending is not None:
                out, pending = pending, None
                return out
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self, size: str) -> DockyardError:
        if self.by_policy:
            return InputTooLargeError(
                f"the request body ({size}) is over the limit of {self.max_bytes} bytes "
                "(policies.input.max_body_bytes); send a smaller body",
                limit="policies.input.max_body_bytes",
                maximum=self.max_bytes,
            )
        return PayloadTooLargeError(
            f"the request body ({size}) is over the limit of {self.max_bytes} bytes "
            "(server.max_body_bytes); send a smaller body, or raise the limit with "
            "DOCKYARD_SERVER__MAX_BODY_BYTES"
        )

    def _too_deep(self) -> InvalidRequestError:
        return InvalidRequestError(
            f"the JSON body nests arrays/objects more than {self.max_depth} levels deep "
            "(server.max_json_depth); flatten it, or raise DOCKYARD_SERVER__MAX_JSON_DEPTH",
            code="json_too_deep",
        )

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: DockyardError
    ) -> None:
        # The rest of the body is left unread: the HTTP server discards it.
        await self.refusal(scope, error)(scope, receive, send)
