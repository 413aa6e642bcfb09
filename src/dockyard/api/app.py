"""Build the FastAPI app: storage, graphs, executor, routers, error mapping."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard import __version__, events
from dockyard.api import custom_app, openai_errors
from dockyard.api.body_limit import BodyLimit
from dockyard.api.prefix import MountPrefix
from dockyard.api.routes import (
    alerts,
    assistants,
    chat,
    crons,
    keys,
    openai_compat,
    ops,
    prompts,
    rollouts,
    runs,
    store,
    threads,
)
from dockyard.api.text_json import TextPlainJSON
from dockyard.caller import Caller
from dockyard.errors import DockyardError
from dockyard.observability import process_metrics
from dockyard.observability.http_metrics import HttpMetrics, MetricsEndpoint, RouteProbe
from dockyard.observability.http_tracing import TraceRequests
from dockyard.observability.logs import configure_from
from dockyard.observability.metrics import Metrics
from dockyard.observability.request_id import RequestId
from dockyard.observability.tracing import tracer_for
from dockyard.policies.auth import (
    KEY_PREFIX,
    Authenticate,
    Authenticator,
    KeyAuth,
    presented_key,
)
from dockyard.policies.pii import install_log_redaction
from dockyard.policies.project_auth import ProjectAuth
from dockyard.policies.rate_limit import RateLimit, RateLimiter
from dockyard.runtime.graphs import import_attr, load_registry
from dockyard.runtime.process import check_layout, open_runtime
from dockyard.runtime.shapes import run_out
from dockyard.settings import HttpConfig, Settings, load_settings

log = logging.getLogger("dockyard.api")


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[Any]:
    settings: Settings = app.state.settings
    async with contextlib.AsyncExitStack() as stack:
        limiter: RateLimiter | None = app.state.rate_limiter
        if limiter is not None:
            stack.push_async_callback(limiter.aclose)
        runtime = await stack.enter_async_context(
            open_runtime(
                settings, app.state.registry, execute=settings.runs.in_process, run_view=run_out
            )
        )
        app.state.runtime = runtime
        if settings.auth.required and not await runtime.storage.keys.count():
            log.warning(
                "API keys are required (auth.required) and none exists yet: every request "
                "is refused until one is made: dockyard keys create --tenant NAME "
                "[--scopes admin]"
            )
        project = app.state.project_app
        if project is None:
            yield None
            return
        # The project app's startup runs once dockyard's runtime is up.
        async with custom_app.project_lifespan(project) as state:
            yield state


def _error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": message, "code": code, **extra}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DockyardError)
    async def _dockyard(_: Request, exc: DockyardError) -> JSONResponse:
        events.refused(exc)
        return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ()) if p != "body"]
            msg = e.get("msg", "invalid")
            if e.get("type") == "extra_forbidden":
                msg = "unknown field: not supported by dockyard; remove it"
            errors.append({"loc": loc, "msg": msg, "type": e.get("type")})
        summary = "; ".join(f"{'.'.join(x['loc']) or 'body'}: {x['msg']}" for x in errors)
        return _error_response(
            422,
            "invalid_request",
            f"invalid request: {summary}",
            errors=errors,
            param=".".join(errors[0]["loc"]) if errors else None,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error_response(exc.status_code, code, str(exc.detail))


def _refusal(scope: Scope, error: DockyardError) -> ASGIApp:
    """A request refused before it reaches a route, in its route family's error shape."""
    events.refused(error)
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if path.startswith(openai_compat.router.prefix + "/"):
        return openai_errors.error_response(error)
    return JSONResponse(error.to_body(), status_code=error.status_code, headers=error.headers())


class CatchAll:
    """Turn an unexpected exception into a JSON 500 and keep the connection.

    Starlette's handler for ``Exception`` answers and then re-raises, which
    makes uvicorn drop the keep-alive connection; this middleware ends it here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except DockyardError as exc:
            # A refusal raised outside the routes (a middleware's policy): answered as a
            # route's would be.
            if not started:
                await _refusal(scope, exc)(scope, receive, send)
        except Exception as exc:
            down = _unreachable_dependency(exc)
            if down:
                # A dependency restarting is not a bug: one line, no stack trace.
                log.warning("%s unreachable: %s: %s", down, type(exc).__name__, exc)
            else:
                log.exception("unhandled error: %s", exc)
            if started:  # mid-stream: nothing left to say in HTTP terms
                return
            if down:
                response = _error_response(
                    503,
                    f"{down}_unavailable",
                    f"{down} is unreachable right now; retry shortly (GET /ready says "
                    "what is down)",
                )
                response.headers["Retry-After"] = "1"
            else:
                response = _error_response(
                    500, "internal_error", "internal error; the server log has the details"
                )
            await response(scope, receive, send)


def _unreachable_dependency(exc: BaseException) -> str | None:
    """'database' or 'redis' when ``exc`` says that dependency cannot be reached."""
    import sqlalchemy.exc

    name = type(exc).__module__
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return "database"
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return "database"
    # psycopg raises subclasses (AdminShutdown is an OperationalError): look up the MRO.
    if any(
        c.__module__.startswith(("psycopg", "psycopg_pool"))
        and c.__name__ in ("OperationalError", "InterfaceError", "PoolTimeout")
        for c in type(exc).__mro__
    ):
        return "database"
    if name.startswith("redis") and type(exc).__name__ in ("ConnectionError", "TimeoutError"):
        return "redis"
    return None


def _routers(http: HttpConfig) -> list[APIRouter]:
    """The route families ``http`` leaves on. Routes are matched in order, one pattern
    at a time: the run routes, hit once or more per run, come first."""
    families = [
        (runs.router, http.disable_runs),
        (threads.router, http.disable_threads),
        (assistants.router, http.disable_assistants),
        (ops.router, False),
        (keys.router, False),
        (alerts.router, False),
        (prompts.router, False),
        (rollouts.router, False),
        (ops.meta, http.disable_meta),
        (crons.router, http.disable_runs),  # LangGraph's crons are run routes
        (store.router, http.disable_store),
        (openai_compat.router, False),
        (chat.router, False),
    ]
    return [router for router, disabled in families if not disabled]


def _authenticator(app: FastAPI, settings: Settings) -> Authenticator:
    keys = KeyAuth(settings.auth, lambda: app.state.runtime.storage.keys)
    project = _project_auth(settings)
    if project is None:

        async def authenticate(scope: Scope) -> Caller | None:
            return await keys.authenticate(presented_key(scope))

        return authenticate

    async def with_project_auth(scope: Scope) -> Caller | None:
        # A dockyard key authenticates first; anything else is the project handler's.
        key = presented_key(scope)
        if project.authenticates and not (key and key.startswith(KEY_PREFIX)):
            return await project.authenticate(scope)
        who = await keys.authenticate(key) or Caller(None, None)
        return dataclasses.replace(who, project_auth=project)

    return with_project_auth


def _project_auth(settings: Settings) -> ProjectAuth | None:
    spec = settings.auth.path
    if spec is None:
        return None
    obj = import_attr("auth.path", spec, settings.project_dir, "dockyard_auth")
    return ProjectAuth(obj, spec)


def _metrics_endpoint(app: FastAPI, metrics: Metrics, *, require_key: bool) -> None:
    async def counts() -> Any:
        runtime = getattr(app.state, "runtime", None)
        return await process_metrics.scraped_counts(runtime.storage if runtime else None)

    app.add_middleware(MetricsEndpoint, metrics=metrics, counts=counts, require_key=require_key)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    install_log_redaction(settings.policies.pii)  # before anything logs
    configure_from(settings)
    meta = not settings.http.disable_meta
    app = FastAPI(
        title="dockyard",
        version=__version__,
        description="A self-hosted runtime for LangGraph agents (Agent Server API).",
        lifespan=_lifespan,
        docs_url="/docs" if meta else None,
        redoc_url="/redoc" if meta else None,
        openapi_url="/openapi.json" if meta else None,
    )
    check_layout(settings)
    app.state.settings = settings
    app.state.registry = load_registry(settings)
    # After load_registry: header templates may name variables of the project's env.
    settings.webhooks.resolve_headers()
    app.state.project_app = custom_app.load_project_app(settings)
    _install_error_handlers(app)
    # Middleware added last wraps the others: CORS answers first, the prefix is
    # taken off next, then the project's app sees the request before dockyard's routes;
    # the body limit is innermost, inside CatchAll, so its refusals are plain answers;
    # the rate limit just outside it refuses before a body is read, counting the caller
    # that authentication (outside it) found.
    metrics = process_metrics.install(settings)
    if metrics is not None:
        app.add_middleware(RouteProbe)  # innermost: sees the route the router matched
    guard = settings.policies.input
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.server.max_body_bytes,
        max_depth=settings.server.max_json_depth,
        refusal=_refusal,
        policy_max_bytes=guard.max_body_bytes if guard is not None else None,
    )
    app.state.rate_limiter = RateLimiter.from_settings(settings)
    if app.state.rate_limiter is not None:
        app.add_middleware(RateLimit, limiter=app.state.rate_limiter)
    served = metrics if settings.observability.metrics.port is None else None
    require_key = settings.observability.metrics.require_key
    if served is not None and require_key:  # behind the key check, like any route
        _metrics_endpoint(app, served, require_key=True)
    app.add_middleware(Authenticate, authenticate=_authenticator(app, settings))
    if served is not None and not require_key:  # open, like /ok
        _metrics_endpoint(app, served, require_key=False)
    app.add_middleware(CatchAll)
    app.add_middleware(TextPlainJSON)
    if metrics is not None:
        # Outside CatchAll: counts its 500s, the refusals (401, 429, 413) and streams.
        app.add_middleware(HttpMetrics, metrics=metrics, routes=lambda: app.router.routes)
    if app.state.project_app is not None:
        custom_app.mount(app, app.state.project_app)
    if settings.http.mount_prefix:
        app.add_middleware(MountPrefix, prefix=settings.http.mount_prefix)
    if settings.http.cors is not None:
        app.add_middleware(CORSMiddleware, **settings.http.cors.model_dump())
    # Outermost: every answer (a 401, a 429, a 500, a CORS preflight) has its
    # X-Request-Id, and the request's span covers all that is done for it (its
    # trace_id is on the request's log lines, the request line included).
    logs = settings.observability.logs
    app.add_middleware(RequestId, log_requests=logs.requests and logs.enabled)
    if (tracer := tracer_for(settings)) is not None:
        app.add_middleware(TraceRequests, tracer=tracer)
    for router in _routers(settings.http):
        app.include_router(router)
    return app
