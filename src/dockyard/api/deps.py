"""Shared dependencies: the runtime object the app was started with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dockyard.runtime.process import DockyardProcess


async def get_process(request: Request) -> DockyardProcess:
    # async: FastAPI runs a plain-def dependency in its thread pool, a thread hop
    # per request (about a twentieth of an API process's CPU under load).
    rt: DockyardProcess = request.app.state.runtime
    return rt


ProcessDep = Annotated[DockyardProcess, Depends(get_process)]

__all__ = ["DockyardProcess", "ProcessDep", "get_process"]
