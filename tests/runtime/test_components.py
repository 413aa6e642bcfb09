"""The start/stop protocol of a process's background work (runtime/components.py), and
``open_runtime`` stopping what it started in reverse order, also when a start fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime import process
from dockyard.runtime.components import BackgroundTask, PeriodicTask, start_on
from dockyard.runtime.crons import CronScheduler
from dockyard.runtime.executor import Executor
from dockyard.runtime.graphs import load_registry
from dockyard.runtime.process import open_runtime
from dockyard.runtime.shapes import run_out
from dockyard.runtime.sweeper import ThreadSweeper
from dockyard.runtime.webhooks import WebhookDispatcher
from dockyard.settings import load_settings
from dockyard.storage.database import open_storage
from tests.conftest import FIXTURE_PROJECT, eventually

log = logging.getLogger("tests.components")


class Ticks:
    """A tick function that counts its calls and can be told to fail or to block."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail_next = 0
        self.block: asyncio.Event | None = None
        self.cancelled = False
        self.in_tick = asyncio.Event()

    async def __call__(self) -> None:
        self.calls += 1
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("storage hiccup")
        if self.block is not None:
            self.in_tick.set()
            try:
                await self.block.wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise


def periodic(ticks: Ticks, interval: float, **kwargs: Any) -> PeriodicTask:
    return PeriodicTask("test-periodic", ticks, interval, log=log, failed="tick failed", **kwargs)


async def test_periodic_task_ticks_until_stopped() -> None:
    ticks = Ticks()
    task = periodic(ticks, 0.01, immediately=True)
    await task.start()
    assert task.running
    with pytest.raises(RuntimeError, match="already running"):
        await task.start()  # a second task would never be stopped
    await eventually(lambda: _true(ticks.calls >= 3), timeout=5, interval=0.005)
    await task.stop()
    assert not task.running
    stopped_at = ticks.calls
    for _ in range(20):
        await asyncio.sleep(0)
    assert ticks.calls == stopped_at
    await task.stop()  # stopping twice, or a task never started, is fine
    await periodic(Ticks(), 1).stop()


async def test_first_tick_waits_an_interval_unless_immediately() -> None:
    later, now = Ticks(), Ticks()
    tasks = [periodic(later, 3600), periodic(now, 3600, immediately=True)]
    for t in tasks:
        await t.start()
    await eventually(lambda: _true(now.calls == 1), timeout=5, interval=0.005)
    assert later.calls == 0
    for t in tasks:
        await t.stop()


async def test_a_failing_tick_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    ticks = Ticks()
    ticks.fail_next = 2
    task = periodic(ticks, 0.01, immediately=True)
    with caplog.at_level(logging.ERROR, logger=log.name):
        await task.start()
        await eventually(lambda: _true(ticks.calls >= 3), timeout=5, interval=0.005)
        await task.stop()
    failures = [r for r in caplog.records if r.name == log.name]
    assert [r.getMessage() for r in failures] == ["tick failed", "tick failed"]
    assert all(r.exc_info and "storage hiccup" in str(r.exc_info[1]) for r in failures)


async def test_stop_cancels_a_tick_in_progress() -> None:
    ticks = Ticks()
    ticks.block = asyncio.Event()  # never set: the tick waits until cancelled
    task = periodic(ticks, 0.01, immediately=True)
    await task.start()
    await asyncio.wait_for(ticks.in_tick.wait(), 5)
    await asyncio.wait_for(task.stop(), 5)
    assert ticks.cancelled and not task.running


async def test_a_cancelled_stop_is_cancelled() -> None:
    """Stopping swallows the task's own cancellation, not a cancel of whoever stops it."""
    release = asyncio.Event()
    cleaning = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaning.set()
            await release.wait()  # cleanup that takes a while

    task = BackgroundTask("test-slow", slow_to_stop)
    await task.start()
    await asyncio.sleep(0)
    stopper = asyncio.create_task(task.stop())
    await asyncio.wait_for(cleaning.wait(), 5)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert stopper.cancelled()
    release.set()


class Recorded:
    def __init__(self, name: str, events: list[str], fail: bool = False) -> None:
        self.name, self.events, self.fail = name, events, fail

    async def start(self) -> None:
        if self.fail:
            raise RuntimeError(f"{self.name} cannot start")
        self.events.append(f"start {self.name}")

    async def stop(self) -> None:
        self.events.append(f"stop {self.name}")


async def test_exit_stack_stops_in_reverse_order_when_a_start_fails() -> None:
    events: list[str] = []
    with pytest.raises(RuntimeError, match="c cannot start"):
        async with contextlib.AsyncExitStack() as stack:
            for name in "ab":
                await start_on(stack, Recorded(name, events))
            await start_on(stack, Recorded("c", events, fail=True))
            await start_on(stack, Recorded("d", events))
    assert events == ["start a", "start b", "stop b", "stop a"]


async def test_open_runtime_stops_what_it_started_when_a_later_start_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cron scheduler starts last; when it cannot, the sweeper, the executor
    (drained), the webhooks and storage stop, in that order."""
    events: list[str] = []

    def record(cls: type, method: str, name: str) -> None:
        original = getattr(cls, method)

        async def wrapped(self: Any, *args: Any) -> Any:
            result = await original(self, *args)
            events.append(name)
            return result

        monkeypatch.setattr(cls, method, wrapped)

    record(ThreadSweeper, "stop", "sweeper")
    record(Executor, "drain", "executor")
    record(WebhookDispatcher, "stop", "webhooks")

    async def refuse(self: CronScheduler) -> None:
        raise RuntimeError("no crons today")

    monkeypatch.setattr(CronScheduler, "start", refuse)

    @contextlib.asynccontextmanager
    async def storage(settings: Any) -> AsyncIterator[Any]:
        try:
            async with open_storage(settings) as opened:
                yield opened
        finally:
            events.append("storage")

    monkeypatch.setattr(process, "open_storage", storage)
    settings = load_settings(FIXTURE_PROJECT / "dockyard.yaml", data_dir=tmp_path)
    with pytest.raises(RuntimeError, match="no crons today"):
        async with open_runtime(settings, load_registry(settings), execute=True, run_view=run_out):
            events.append("served")  # not reached
    assert events == ["sweeper", "executor", "webhooks", "storage"]


async def test_cron_and_sweeper_failures_keep_their_log_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: Any, *args: Any) -> Any:
        raise RuntimeError("database restarting")

    monkeypatch.setattr(CronScheduler, "fire_due", broken)
    monkeypatch.setattr(ThreadSweeper, "sweep_once", broken)
    service: Any = object()
    crons, sweeper = CronScheduler(service, 0.01), ThreadSweeper(service, 0.01)
    with caplog.at_level(logging.ERROR):
        for c in (crons, sweeper):
            await c.start()

        async def both_failed() -> bool:
            messages = {r.getMessage() for r in caplog.records}
            return {
                "cron poll failed; retrying next interval",
                "thread sweep failed; retrying next interval",
            } <= messages

        await eventually(both_failed, timeout=5, interval=0.01)
        for c in (crons, sweeper):
            await c.stop()


async def _true(value: bool) -> bool:
    return value
