"""Shared dependencies: the runtime object the app was started with, and the lookups
several route modules share (routes never import each other)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dockyard.errors import ConflictError, NotFoundError
from dockyard.policies import tenancy
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
    # Another tenant's thread answers exactly as a missing one.
    if thread is None or not tenancy.visible(thread["metadata"]):
        raise NotFoundError(f"thread {thread_id} not found", code="thread_not_found")
    return thread


def must_own(record: Thread, what: str) -> None:
    """A record a create found already there: 409 when it is another tenant's (its
    content is not shown)."""
    if not tenancy.visible(record["metadata"]):
        raise ConflictError(f"{what} is taken; choose another id", code=f"{what.split()[0]}_exists")


__all__ = ["DockyardProcess", "ProcessDep", "get_process", "get_thread", "must_own"]
