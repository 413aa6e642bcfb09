"""Request bodies sent as ``text/plain`` are read as JSON.

LangGraph Studio posts JSON with ``Content-Type: text/plain`` (a browser fetch of a
string body), and FastAPI parses only ``application/json`` bodies; LangGraph's server
accepts both. Only dockyard's routes see the rewritten header (the project's own
``http.app`` routes get the request as sent).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class TextPlainJSON:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            for i, (name, value) in enumerate(headers):
                if name == b"content-type":
                    if value.partition(b";")[0].strip().lower() == b"text/plain":
                        headers = list(headers)
                        headers[i] = (name, b"application/json")
                        scope = {**scope, "headers": headers}
                    break
        await self.app(scope, receive, send)
