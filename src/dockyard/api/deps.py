"""Shared dependencies: the runtime object the app was started with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from dockyard.runtime.process import Runtime


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

__all__ = ["Runtime", "RuntimeDep", "get_runtime"]
