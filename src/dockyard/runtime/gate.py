"""How many runs execute at once in this process, adapted to how late the event loop is.

A process's runs, its HTTP requests and its streams share one event loop, which
takes ready work first in, first out. When runs are CPU-bound, each turn of the
loop carries a step of every executing run, so a request that just arrived waits
for all of them: with 16 runs in flight a turn took 14 ms at the median and a
stream's first event waited several turns. I/O-bound runs (a model call) cost
the loop almost nothing while they wait, and must not be held back.

So the limit follows the loop's lag, the way TCP follows packet loss: a probe
sleeps ``PROBE_SECONDS`` and measures how late it wakes; late by more than
``TARGET_LAG_SECONDS`` lowers the limit by a fifth (not below ``floor``), on time
raises it by a quarter run (not above the executor's ``max_concurrency``). Runs
over the limit wait here, in order, already claimed and leased; nothing is
written for them. An idle process does not probe.

Off by default (``runs.adaptive_concurrency``): on CPU-bound graphs the shorter loop
turns cost runs/s (15-30% on bench/'s trivial graph) and a run's first data event
comes later; what it buys is a prompt first event and API answers under that load.

A run holds its place only until its first model or tool call
(:class:`UntilFirstCall`): from there on it mostly waits on the outside world,
and holding it back would only cut an I/O-bound agent's throughput (measured:
-20% on bench/'s 50 ms fake model when places were held to the end).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

PROBE_SECONDS = 0.01
TARGET_LAG_SECONDS = 0.010


class LoadGate:
    def __init__(
        self,
        ceiling: int,
        *,
        floor: int = 4,
        target_lag: float = TARGET_LAG_SECONDS,
        probe: float = PROBE_SECONDS,
    ) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.target_lag = target_lag
        self.probe = probe
        self.limit = float(ceiling)
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._probe_task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if not self._waiters and self.active < int(self.limit):
            self.active += 1
            self._start_probe()
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._start_probe()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted as the cancel landed: pass the place on
            else:
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        self.active -= 1
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self.active < int(self.limit):
            fut = self._waiters.popleft()
            if not fut.done():
                self.active += 1
                fut.set_result(None)

    def _start_probe(self) -> None:
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.get_running_loop().create_task(
                self._probe(), name="dockyard-load-gate"
            )

    def observe(self, lag: float) -> None:
        if lag > self.target_lag:
            self.limit = max(float(self.floor), self.limit * 0.8)
        else:
            self.limit = min(float(self.ceiling), self.limit + 0.25)
            self._grant()

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while self.active or self._waiters:
            t = loop.time()
            await asyncio.sleep(self.probe)
            self.observe(loop.time() - t - self.probe)

    async def close(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
            await asyncio.gather(self._probe_task, return_exceptions=True)


class UntilFirstCall(BaseCallbackHandler):
    """Calls ``release`` once, when the run starts its first model or tool call."""

    # Model and tool events reach it (tool events count as "agent" ones), in the
    # loop, without a thread hop.
    run_inline = True
    ignore_chain = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def _fire(self, *args: Any, **kwargs: Any) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    on_chat_model_start = _fire
    on_llm_start = _fire
    on_tool_start = _fire
