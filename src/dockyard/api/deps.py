"""Shared dependencies: the runtime object the app was started with, and the lookups
several route modules share (routes never import each other)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dockyard.errors import NotFoundError
from dockyard.runtime.process import DockyardProcess
from dockyard.storage.base import Thread


async def get_process(request: Request) -> DockyardProcess:
    # async: FastAPI runs a plain-def dependency in its thread pool, a thread hop
    # per request (about a twentieth of an API process's CPU under load).
    rt: DockyardProcess = request.app.state.runtime
    return rt


ProcessDep = Annotated[DockyardProcess, Depends(get_process)]


async def get_thread(rt: DockyardProcess, thread_id: str) -> Thread:
    thread = await rt.storage.threads.get(thread_id)
    if thread is None:
        raise NotFoundError(f"thread {thread_id} not found", code="thread_not_found")
    return thread


__all__ = ["DockyardProcess", "ProcessDep", "get_process", "get_thread"]
