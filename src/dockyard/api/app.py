"""Build the FastAPI app: storage, graphs, executor, routers, error mapping."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard import __version__
from dockyard.api.deps import Runtime
from dockyard.api.routes import assistants, chat, openai_compat, ops, runs, store, threads
from dockyard.errors import DockyardError
from dockyard.runtime.execute import RunContext
from dockyard.runtime.executor import Executor
from dockyard.runtime.graphs import GraphRegistry
from dockyard.runtime.service import RunService
from dockyard.runtime.stream import MemoryBroker
from dockyard.runtime.sweeper import ThreadSweeper
from dockyard.settings import Settings, load_settings
from dockyard.storage.database import open_storage

log = logging.getLogger("dockyard.api")


def _apply_project_env(settings: Settings) -> None:
    """langgraph.json's ``env`` (a dotenv path or a mapping) reaches the graphs' process."""
    env = settings.env
    if env is None:
        return
    if isinstance(env, str):
        path = Path(env)
        if not path.is_absolute():
            path = settings.project_dir / path
        if not path.is_file():
            return
        pairs: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, _, v = line.partition("=")
                pairs[k.strip().removeprefix("export ").strip()] = v.strip().strip("'\"")
        env = pairs
    for k, v in env.items():
        os.environ.setdefault(k, v)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with open_storage(settings) as storage:
        registry: GraphRegistry = app.state.registry
        registry.bind(storage.checkpointer, storage.store)
        broker = MemoryBroker(
            settings.runs.stream_retention_seconds, settings.runs.stream_max_events
        )
        ctx = RunContext(storage=storage, registry=registry, broker=broker, settings=settings)
        executor = Executor(ctx, settings.runs.max_concurrency)
        service = RunService(ctx, executor)
        await service.ensure_default_assistants()
        app.state.runtime = Runtime(settings, storage, registry, broker, executor, service)
        await executor.start()
        sweeper = ThreadSweeper(service, settings.threads.sweep_interval_seconds)
        sweeper.start()
        app.state.sweeper = sweeper
        try:
            yield
        finally:
            await sweeper.stop()
            await executor.stop()


def _error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": message, "code": code, **extra}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DockyardError)
    async def _dockyard(_: Request, exc: DockyardError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.status_code)

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
        except Exception as exc:
            log.exception("unhandled error: %s", exc)
            if started:  # mid-stream: nothing left to say in HTTP terms
                return
            response = _error_response(
                500, "internal_error", "internal error; the server log has the details"
            )
            await response(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(
        title="dockyard",
        version=__version__,
        description="A self-hosted runtime for LangGraph agents (Agent Server API).",
        lifespan=_lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    _apply_project_env(settings)  # before the graphs are imported: they may read keys
    app.state.registry = GraphRegistry(settings.graphs, settings.project_dir)
    _install_error_handlers(app)
    app.add_middleware(CatchAll)
    for module in (ops, assistants, threads, runs, store, openai_compat, chat):
        app.include_router(module.router)
    return app
