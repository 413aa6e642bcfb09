"""Shared dependencies: the runtime object the app was started with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dockyard.runtime.process import Runtime


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain-def dependency in its thread pool, a thread hop
    # per request (about a twentieth of an API process's CPU under load).
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

__all__ = ["Runtime", "RuntimeDep", "get_runtime"]
