"""``http.mount_prefix``: every route under one path, e.g. ``/api``."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose


class MountPrefix:
    """A request under ``prefix`` goes on with the prefix moved to ``root_path``, as a
    Starlette Mount does (so /api/docs loads /api/openapi.json); any other is a 404."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path: str = scope["path"]
        rest = path[len(root) :] if path.startswith(root) else path
        if rest == self.prefix or rest.startswith(self.prefix + "/"):
            await self.app({**scope, "root_path": root + self.prefix}, receive, send)
            return
        if scope["type"] == "websocket":
            await WebSocketClose()(scope, receive, send)
            return
        response = JSONResponse(
            {
                "detail": f"{rest} not found: this server's routes are under {self.prefix}/",
                "code": "not_found",
            },
            status_code=404,
        )
        await response(scope, receive, send)
