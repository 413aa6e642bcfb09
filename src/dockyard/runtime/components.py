"""What runs in the background of a process, started and stopped one way.

A ``Component`` (the cron scheduler, the thread sweeper, the webhook dispatcher, the
Redis broker and signals, later alerts and metrics) has ``async start()`` and
``async stop()``. ``open_runtime`` starts each with ``start_on`` on one
``AsyncExitStack``: they stop in reverse order of their starts, also when a later
start fails. A start that raises leaves nothing running (its own stop is not called).

``PeriodicTask`` is the loop most of them need: call a coroutine function every
``interval`` seconds in a task of its own, log a failure and try again next time,
end on cancellation. ``BackgroundTask`` is one long-running coroutine in a task,
cancelled and awaited on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar


class Component(Protocol):
    async def start(self) -> None:
        """Start working in the background; returns once started."""

    async def stop(self) -> None:
        """Stop, waiting for the background work to end; safe to call when not started."""


C = TypeVar("C", bound=Component)


async def start_on(stack: contextlib.AsyncExitStack, component: C) -> C:
    """Start ``component`` and have ``stack`` stop it on exit, after those started later."""
    await component.start()
    stack.push_async_callback(component.stop)
    return component


class BackgroundTask:
    """``run()`` in a task named ``name`` from start until stop (or until it returns)."""

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            # The task's own cancellation ends it; a cancel of whoever is stopping
            # it must go on up.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise


class PeriodicTask(BackgroundTask):
    """``tick()`` every ``interval`` seconds (between the end of one call and the start of
    the next); the first call at once with ``immediately``, else after one interval.

    A tick that raises is logged with ``failed`` on ``log`` (with the traceback) and the
    next tick comes as usual: a storage hiccup must not end the task.
    """

    def __init__(
        self,
        name: str,
        tick: Callable[[], Awaitable[object]],
        interval: float,
        *,
        log: logging.Logger,
        failed: str,
        immediately: bool = False,
    ) -> None:
        super().__init__(name, self._loop)
        self.tick = tick
        self.interval = interval
        self.immediately = immediately
        self._log = log
        self._failed = failed

    async def _loop(self) -> None:
        if not self.immediately:
            await asyncio.sleep(self.interval)
        while True:
            try:
                await self.tick()
            except Exception:
                self._log.exception(self._failed)
            await asyncio.sleep(self.interval)
