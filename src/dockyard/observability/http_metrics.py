"""HTTP requests by route template and status (ASGI middleware), and ``GET /metrics``.

The route label is the matched route's template (``/threads/{thread_id}/runs``), never the
raw path: ids in paths would make a series per thread. The router writes the route it
matched into the scope it was handed; a middleware between ours and the router may hand
it a copy (``TextPlainJSON``, ``MountPrefix``), so ``RouteProbe``, right outside the
router, puts it where ours finds it: a holder both scopes share. A request refused before
routing (401, 429, 413) is matched here against the routes, and anything else is
``other``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from time import perf_counter
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard import caller
from dockyard.errors import UnauthorizedError
from dockyard.observability.exposition import CONTENT_TYPE, render
from dockyard.observability.metrics import Metrics

_HOLDER = "dockyard.route"
OTHER = "other"
METRICS_PATH = "/metrics"


def _template(route: Any) -> str | None:
    if isinstance(route, str):
        return route
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else None


class RouteProbe:
    """Innermost: tells ``HttpMetrics`` which route the router matched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            holder = scope.get(_HOLDER)
            if holder is not None and "route" in scope:
                holder.append(scope["route"])


class HttpMetrics:
    """``dockyard_http_requests_total`` and ``dockyard_http_request_duration_seconds``:
    the time to the end of the response body (a stream's whole life)."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, routes: Callable[[], Sequence[BaseRoute]]
    ) -> None:
        self.app = app
        self.requests = metrics.http_requests
        self.duration = metrics.http_duration
        self.routes = routes
        self._leaves: list[BaseRoute] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        holder: list[Any] = []
        scope[_HOLDER] = holder
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = self._route(scope, holder)
            method = scope["method"]
            self.requests.labels(method, route, str(status)).inc()
            self.duration.labels(method, route).observe(perf_counter() - started)

    def _route(self, scope: Scope, holder: list[Any]) -> str:
        found = holder[-1] if holder else scope.get("route")
        if found is None:
            # Refused before routing (401, 429, 413): which route it was for.
            if self._leaves is None:
                self._leaves = list(_leaves(self.routes()))
            for route in self._leaves:
                match, _ = route.matches(scope)
                if match is not Match.NONE:
                    found = route
                    break
        return (_template(found) if found is not None else None) or OTHER


def _leaves(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes themselves: FastAPI keeps an included router as one entry
    (``original_router``), which matches without naming the route."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaves(inner.routes)
        else:
            yield route


Counts = Callable[[], Awaitable[Mapping[str, float] | None]]


async def metrics_response(metrics: Metrics, counts: Counts) -> tuple[bytes, str]:
    return render(metrics, await counts()), CONTENT_TYPE


class MetricsEndpoint:
    """Answers ``GET /metrics``. Installed outside ``Authenticate`` (open, like /ok) or,
    with ``require_key``, inside it: then a request without a valid key is refused."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, counts: Counts, *, require_key: bool
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.counts = counts
        self.require_key = require_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _path(scope) != METRICS_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if self.require_key and caller.current() is None:
            raise UnauthorizedError(
                "/metrics needs an API key (observability.metrics.require_key): send it as "
                "`x-api-key: <key>` or `Authorization: Bearer <key>`"
            )
        holder = scope.get(_HOLDER)
        if holder is not None:
            holder.append(METRICS_PATH)
        body, content_type = await metrics_response(self.metrics, self.counts)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
