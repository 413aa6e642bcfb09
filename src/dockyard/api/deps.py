"""Shared dependencies: the runtime object the app was started with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from dockyard.runtime.executor import Executor
from dockyard.runtime.graphs import GraphRegistry
from dockyard.runtime.service import RunService
from dockyard.runtime.stream import StreamBroker
from dockyard.settings import Settings
from dockyard.storage.database import Storage


@dataclass
class Runtime:
    settings: Settings
    storage: Storage
    registry: GraphRegistry
    broker: StreamBroker
    executor: Executor
    runs: RunService


def get_runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
