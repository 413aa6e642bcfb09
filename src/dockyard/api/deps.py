"""Shared dependencies: the runtime object the app was started with, and the lookups
several route modules share (routes never import each other)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

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


async def get_thread(
    rt: DockyardProcess,
    thread_id: str,
    action: str = "read",
    value: dict[str, Any] | None = None,
) -> Thread:
    """The thread, if the caller may ``action`` it (the project's auth handler sees
    ``value``, by default ``{"thread_id": ...}``); another's answers as a missing one."""
    flt = None
    if tenancy.handlers_on():
        flt = await tenancy.authorize("threads", action, value or {"thread_id": thread_id})
    thread = await rt.storage.threads.get(thread_id)
    if thread is None or not tenancy.allowed(thread["metadata"], flt):
        raise NotFoundError(f"thread {thread_id} not found", code="thread_not_found")
    return thread


async def guard_thread(rt: DockyardProcess, thread_id: str, action: str) -> None:
    """For the run routes: with a project's auth handlers, the run's thread must pass
    them (runs are the thread's, as on LangGraph Platform)."""
    if tenancy.handlers_on():
        await get_thread(rt, thread_id, action)


def must_own(record: Mapping[str, Any], what: str, flt: dict[str, Any] | None = None) -> None:
    """A record a create found already there: 409 when it is another tenant's or the
    project's auth handler would not show it (its content is not shown)."""
    if not tenancy.allowed(record["metadata"], flt):
        raise ConflictError(f"{what} is taken; choose another id", code=f"{what.split()[0]}_exists")


__all__ = [
    "DockyardProcess",
    "ProcessDep",
    "get_process",
    "get_thread",
    "guard_thread",
    "must_own",
]
