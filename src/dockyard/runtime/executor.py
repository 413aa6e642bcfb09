"""The executor: claims due runs from storage and runs them, a bounded number at a time.

Claiming goes through ``RunStore.claim`` so that the same loop works when
several worker processes share one database; in the embedded default it is
woken directly when a run is created instead of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from dockyard.runtime.execute import CancelAction, RunContext, execute_run
from dockyard.storage.base import Run

log = logging.getLogger("dockyard.executor")

_IDLE_POLL_SECONDS = 5.0


class Executor:
    def __init__(self, ctx: RunContext, max_concurrency: int) -> None:
        self.ctx = ctx
        self.max_concurrency = max_concurrency
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel_action: dict[str, CancelAction] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._reserved = 0
        self._started: set[str] = set()

    async def start(self) -> None:
        stale = await self.ctx.storage.runs.requeue_running()
        if stale:
            log.warning("resuming %d run(s) left running by a previous process", len(stale))
        self._loop_task = asyncio.create_task(self._loop(), name="dockyard-executor")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()  # no cancel action recorded: the run is handed back as pending
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    def is_running(self, run_id: str) -> bool:
        return run_id in self._tasks

    async def cancel(self, run_id: str, action: CancelAction) -> bool:
        """Stop a run executing here; True if it was."""
        task = self._tasks.get(run_id)
        if task is None:
            return False
        self._cancel_action[run_id] = action
        if run_id in self._started:
            task.cancel()
        # else: a task cancelled before its first step would never run
        # execute_run, and the run would stay "running"; execute_run sees the
        # recorded action as its first step instead.
        return True

    def cancel_when_started(self, run_id: str, action: CancelAction) -> None:
        """A run claimed but not yet started here stops as soon as it starts."""
        self._cancel_action[run_id] = action

    def forget_cancel(self, run_id: str) -> None:
        self._cancel_action.pop(run_id, None)

    async def wait_done(self, run_id: str) -> None:
        task = self._tasks.get(run_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(task)

    async def _loop(self) -> None:
        runs = self.ctx.storage.runs
        while True:
            try:
                free = self.max_concurrency - len(self._tasks) - self._reserved
                claimed = await runs.claim(free, datetime.now(UTC)) if free > 0 else []
                for run in claimed:
                    self._spawn(run)
                if claimed and len(claimed) == free:
                    continue
                timeout = _IDLE_POLL_SECONDS
                due = await runs.next_due()
                if due is not None:
                    timeout = max(0.0, min(timeout, (due - datetime.now(UTC)).total_seconds()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Storage hiccup (e.g. database restarting): keep the loop alive.
                log.exception("executor loop error; retrying in 1s")
                await asyncio.sleep(1.0)

    def reserve(self) -> bool:
        """Hold a slot for a run about to be created as already running (see start)."""
        if len(self._tasks) + self._reserved >= self.max_concurrency:
            return False
        self._reserved += 1
        return True

    def release(self) -> None:
        self._reserved -= 1

    def start_reserved(self, run: Run) -> None:
        """Run a reserved run now: it was stored as running, so no claim is needed."""
        self._reserved -= 1
        self._spawn(run)

    def _spawn(self, run: Run) -> None:
        run_id = run["run_id"]
        task = asyncio.create_task(self._run(run), name=f"run-{run_id}")
        self._tasks[run_id] = task

    async def _run(self, run: Run) -> None:
        run_id = run["run_id"]
        self._started.add(run_id)
        try:
            await execute_run(self.ctx, run, self._cancel_action)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("run %s: unexpected failure recording its outcome", run_id)
        finally:
            self._tasks.pop(run_id, None)
            self._started.discard(run_id)
            self._cancel_action.pop(run_id, None)
            self.wake()
