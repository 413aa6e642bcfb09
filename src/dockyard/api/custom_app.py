"""The project's own Starlette or FastAPI app (``http.app``), served with dockyard's.

As LangGraph Platform does it: the app's routes come first (one of them may shadow a
dockyard route), its middleware wraps every request, dockyard's included, and its
lifespan runs inside dockyard's. ``/docs`` and ``/openapi.json`` stay dockyard's and list
the app's FastAPI routes with dockyard's.

How: a middleware hands each request to the project's app; a last route appended to
that app's router, and its not-found handler, hand back to the rest of dockyard's stack
what none of its own routes takes. Where to hand back travels in the request's scope,
so one app object serving several dockyard apps (tests) stays correct.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.errors import ConfigError
from dockyard.runtime.graphs import import_attr
from dockyard.settings import Settings

_SCOPE_KEY = "dockyard.app"


def load_project_app(settings: Settings) -> Starlette | None:
    spec = settings.http.app
    if spec is None:
        return None
    obj = import_attr("http.app", spec, settings.project_dir, "dockyard_http_app")
    if not isinstance(obj, Starlette):
        raise ConfigError(
            f"http.app = {spec!r}: expected a Starlette or FastAPI app, got {type(obj).__name__}"
        )
    return obj


async def _to_dockyard(scope: Scope, receive: Receive, send: Send) -> None:
    ours, rest = scope[_SCOPE_KEY]
    # Dockyard's handlers read request.app.state; the project's router is not theirs.
    child = {k: v for k, v in scope.items() if k not in ("router", "route", "endpoint")}
    child["app"] = ours
    await rest(child, receive, send)


class _Dockyard(BaseRoute):
    """The project app's last route: whatever a dockyard route matches (fully, or by
    path with another method) goes to dockyard."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if _SCOPE_KEY in scope:
            for route in scope[_SCOPE_KEY][0].router.routes:
                if route.matches(scope)[0] is not Match.NONE:
                    return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _to_dockyard(scope, receive, send)


class ProjectApp:
    """Middleware: every request goes through the project's app first, except the
    ``own`` paths (dockyard's /docs and /openapi.json)."""

    def __init__(self, app: ASGIApp, project: Starlette, ours: FastAPI, own: frozenset[str]):
        self.app = app
        self.project = project
        self.ours = ours
        self.own = own
        if not any(isinstance(r, _Dockyard) for r in project.router.routes):
            project.router.routes.append(_Dockyard())
        # Neither side has the path: dockyard's JSON 404, not the project app's own.
        project.router.default = _to_dockyard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or _route_path(scope) in self.own:
            await self.app(scope, receive, send)
            return
        scope[_SCOPE_KEY] = (self.ours, self.app)
        await self.project(scope, receive, send)


def _route_path(scope: Scope) -> str:
    root: str = scope.get("root_path", "")
    path: str = scope["path"]
    return path[len(root) :] if root and path.startswith(root) else path


def mount(app: FastAPI, project: Starlette) -> None:
    """Serve ``project`` with ``app`` (see the module doc). Its lifespan is entered by
    the caller's (``project_lifespan``)."""
    own = frozenset(p for p in (app.docs_url, app.redoc_url, app.openapi_url) if p)
    if app.docs_url:
        own |= {app.swagger_ui_oauth2_redirect_url or ""}
    app.add_middleware(ProjectApp, project=project, ours=app, own=own)

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            # The project's routes last: a route that shadows one of dockyard's is the
            # one described, as it is the one that answers.
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*app.routes, *project.routes],
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def project_lifespan(project: Starlette) -> Any:
    """The project app's lifespan context (what it yields becomes request state)."""
    return project.router.lifespan_context(project)
