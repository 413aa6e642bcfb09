"""The executor: claims due runs from storage and runs them, a bounded number at a time.

The same loop serves the embedded default (one process) and ``dockyard worker``
processes sharing one PostgreSQL database: a claim is a lease held by this
process (``worker_id``) and renewed by heartbeats; when a worker dies its lease
runs out and another worker's loop puts the run back in the queue and resumes
it from its last checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from enum import Enum

from dockyard.runtime.attempt import CancelAction, Phase, RunAttempt, RunContext
from dockyard.runtime.components import BackgroundTask, PeriodicTask
from dockyard.runtime.gate import LoadGate
from dockyard.storage.base import Run

log = logging.getLogger("dockyard.executor")

_IDLE_POLL_SECONDS = 5.0
# A cancel the run did not take up is repeated after these delays, doubling.
_RECANCEL_FIRST_SECONDS = 0.25
_RECANCEL_LAST_SECONDS = 8.0


class CancelResult(Enum):
    CANCELLED = "cancelled"  # the run executes here and stops (now, or as it starts)
    SETTLING = "settling"  # it executes here but is already storing its outcome
    NOT_HERE = "not_here"  # this process does not execute it


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Executor:
    def __init__(
        self,
        ctx: RunContext,
        max_concurrency: int,
        *,
        lease_seconds: float = 30.0,
        requeue_on_start: bool = False,
        gate: LoadGate | None = None,
    ) -> None:
        self.ctx = ctx
        self.gate = gate
        self.max_concurrency = max_concurrency
        self.worker_id = new_worker_id()
        self.lease = timedelta(seconds=lease_seconds)
        # Heartbeats also carry cancel requests from other processes, so they
        # come more often than the lease strictly needs.
        self.heartbeat_seconds = min(lease_seconds / 3, 2.0)
        # One process owns the database (SQLite): whatever is "running" at start
        # was left by a dead predecessor and resumes at once, without waiting
        # for its lease.
        self.requeue_on_start = requeue_on_start
        # The runs executing here: each one's task and attempt (whose phase and
        # requested cancel are the state a cancel reads and writes).
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._attempts: dict[str, RunAttempt] = {}
        # Cancels for runs not (yet) here: a run claimed just after its cancel.
        self._early_cancels: dict[str, CancelAction] = {}
        self._wake = asyncio.Event()
        self._claims = BackgroundTask("dockyard-executor", self._loop)
        self._beats = PeriodicTask(
            "dockyard-heartbeat",
            self._heartbeat,
            self.heartbeat_seconds,
            log=log,
            failed="heartbeat failed; retrying",
        )
        self._reserved = 0
        self._orphan_cancels: set[str] = set()
        # When the earliest delayed run is due: asked from storage now and then,
        # and lowered by wake-ups that announce a delayed run (see wake).
        self._next_due: datetime | None = None
        self._next_due_checked = 0.0
        # Runs may be waiting that this process had no slot for: the next run to end
        # here claims again. Otherwise only a run with a thread others can queue on
        # does (a stateless run's end frees nothing another run waits for).
        self._backlog = False

    async def start(self) -> None:
        if self.requeue_on_start:
            stale = await self.ctx.storage.runs.requeue_running()
            if stale:
                log.warning("resuming %d run(s) left running by a previous process", len(stale))
        await self._claims.start()
        await self._beats.start()

    async def _stop_claiming(self) -> None:
        await self._claims.stop()
        await self._beats.stop()

    async def stop(self) -> None:
        await self._stop_claiming()
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()  # no cancel action recorded: the run is handed back as pending
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.gate is not None:
            await self.gate.close()

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a grace period, not a deadline
        """Stop claiming, let running runs finish for up to ``timeout`` seconds,
        then hand the rest back to the queue. Returns how many were handed back."""
        await self._stop_claiming()
        await self._beats.start()  # keep leases while draining
        try:
            tasks = list(self._tasks.values())
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)
            left = len(self._tasks)
        finally:
            await self._beats.stop()
        await self.stop()
        return left

    def wake(self, due: datetime | None = None) -> None:
        """Claim now; ``due``: a run was queued to start at that time."""
        if due is not None and (self._next_due is None or due < self._next_due):
            self._next_due = due
        self._wake.set()

    def is_running(self, run_id: str) -> bool:
        return run_id in self._tasks

    def cancel(self, run_id: str, action: CancelAction, *, early: bool = False) -> CancelResult:
        """Stop a run executing here. ``early``: if it is not here, it may be about to
        be (claimed just now): it stops as soon as it starts, if it starts here before
        the next heartbeat or two."""
        attempt = self._attempts.get(run_id)
        if attempt is None:
            if early:
                self._early_cancels[run_id] = action
            return CancelResult.NOT_HERE
        if attempt.phase in (Phase.SETTLING, Phase.DONE):
            return CancelResult.SETTLING  # its outcome is being stored
        attempt.requested = action
        if attempt.phase is not Phase.QUEUED:
            task = self._tasks[run_id]
            task.cancel()
            self._cancel_again_later(run_id, task, _RECANCEL_FIRST_SECONDS)
        # else: a task cancelled before its first step would never run the attempt,
        # and the run would stay "running"; the attempt reads ``requested`` first.
        return CancelResult.CANCELLED

    def _cancel_again_later(self, run_id: str, task: asyncio.Task[None], delay: float) -> None:
        """Repeat a cancel that the run did not act on.

        Python 3.11's ``asyncio.wait_for`` drops a cancel that lands together with
        the result it waited for (fixed in 3.12), and psycopg_pool waits for a free
        connection that way: under load a cancelled run went on to ``success``
        (tests/api/test_runs_lifecycle.py, about 1 in 15 with both cores busy). A
        run that has the cancel is settling its outcome, or done.
        """

        def again() -> None:
            attempt = self._attempts.get(run_id)
            if task.done() or attempt is None or attempt.phase in (Phase.SETTLING, Phase.DONE):
                return
            if self._tasks.get(run_id) is not task:
                return
            log.info("run %s: cancel not taken up; cancelling again", run_id)
            task.cancel()
            if delay < _RECANCEL_LAST_SECONDS:
                self._cancel_again_later(run_id, task, delay * 2)

        asyncio.get_running_loop().call_later(delay, again)

    def forget_cancel(self, run_id: str) -> None:
        """The run was settled without executing here: drop an early cancel for it."""
        self._early_cancels.pop(run_id, None)

    async def wait_done(self, run_id: str) -> None:
        task = self._tasks.get(run_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(task)

    async def _heartbeat(self) -> None:
        runs = self.ctx.storage.runs
        now = datetime.now(UTC)
        mine = list(self._tasks)
        held = await runs.heartbeat(self.worker_id, mine, now + self.lease)
        for run_id in mine:
            if run_id not in self._tasks:
                continue  # finished meanwhile
            if run_id not in held:
                # Our lease was taken over (this process stalled past
                # it): someone else runs it now; stop without a trace.
                log.warning("run %s: lease lost; stopping here", run_id)
                self.cancel(run_id, "lost")
            elif (action := held[run_id]) in ("interrupt", "rollback"):
                self.cancel(run_id, action)  # type: ignore[arg-type]
        if await runs.requeue_expired(now):
            self.wake()
        self._forget_orphan_cancels()

    async def _earliest_due(self, now: datetime) -> datetime | None:
        # Asking storage on every wake-up cost a query per run; the answer only
        # changes when a delayed run is queued (announced by wake) or comes due.
        loop_now = asyncio.get_running_loop().time()
        stale = loop_now - self._next_due_checked > _IDLE_POLL_SECONDS * 6
        if stale or (self._next_due is not None and self._next_due <= now):
            self._next_due = await self.ctx.storage.runs.next_due()
            self._next_due_checked = loop_now
        return self._next_due

    def _forget_orphan_cancels(self) -> None:
        # Early cancels are also recorded for runs that execute elsewhere; entries
        # whose run has not shown up here for a whole beat are dropped.
        orphans = set(self._early_cancels)
        for run_id in orphans & self._orphan_cancels:
            self._early_cancels.pop(run_id, None)
        self._orphan_cancels = orphans - self._orphan_cancels

    async def _loop(self) -> None:
        runs = self.ctx.storage.runs
        while True:
            try:
                free = self.max_concurrency - len(self._tasks) - self._reserved
                now = datetime.now(UTC)
                claimed = (
                    await runs.claim(
                        free, now, worker_id=self.worker_id, lease_until=now + self.lease
                    )
                    if free > 0
                    else []
                )
                for run in claimed:
                    self._spawn(run)
                self._backlog = free <= 0 or len(claimed) == free
                if claimed and len(claimed) == free:
                    continue
                timeout = _IDLE_POLL_SECONDS
                due = await self._earliest_due(now)
                if due is not None:
                    timeout = max(0.0, min(timeout, (due - datetime.now(UTC)).total_seconds()))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                self._wake.clear()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Storage hiccup (e.g. database restarting): keep the loop alive.
                log.exception("executor loop error; retrying in 1s")
                await asyncio.sleep(1.0)

    def direct_start(self) -> DirectStart | None:
        """A place for a run that is stored as running and started here at once, without
        a trip through the claim queue; None when every place is taken."""
        if len(self._tasks) + self._reserved >= self.max_concurrency:
            return None
        self._reserved += 1
        return DirectStart(self)

    def _spawn(self, run: Run) -> None:
        run_id = run["run_id"]
        attempt = RunAttempt(self.ctx, run, requested=self._early_cancels.pop(run_id, None))
        self._attempts[run_id] = attempt
        self._tasks[run_id] = asyncio.create_task(self._run(attempt), name=f"run-{run_id}")

    async def _run(self, attempt: RunAttempt) -> None:
        run_id = attempt.run_id
        attempt.phase = Phase.STARTING  # from here on a cancel can cancel the task
        held = False

        def leave_gate() -> None:
            nonlocal held
            if held:
                held = False
                assert self.gate is not None
                self.gate.release()

        try:
            if self.gate is not None:
                try:
                    await self.gate.acquire()
                    held = True
                except asyncio.CancelledError:
                    # Stopped while waiting for its turn: the attempt settles it
                    # (interrupted, rolled back or handed back) as its first step.
                    if attempt.requested is None:
                        attempt.requested = "shutdown"
            await attempt.execute(on_first_call=leave_gate if held else None)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("run %s: unexpected failure recording its outcome", run_id)
        finally:
            leave_gate()
            attempt.phase = Phase.DONE
            self._tasks.pop(run_id, None)
            self._attempts.pop(run_id, None)
            if self._backlog or not attempt.run["temporary"]:
                self.wake()


class DirectStart:
    """A place held in the executor for one run created as already running."""

    def __init__(self, executor: Executor) -> None:
        self._executor: Executor | None = executor

    def claim(self, run: Run) -> None:
        """Make the run, about to be stored, this process's running claim."""
        assert self._executor is not None
        run["status"] = "running"
        run["attempts"] = 1
        run["started_at"] = run["created_at"]
        run["worker_id"] = self._executor.worker_id
        run["lease_expires_at"] = datetime.now(UTC) + self._executor.lease

    def start(self, run: Run) -> None:
        """Run it now: it was stored as running, so no claim is needed."""
        executor, self._executor = self._executor, None
        assert executor is not None, "a direct start is used once"
        executor._reserved -= 1
        executor._spawn(run)

    def abandon(self) -> None:
        """The run was not stored: give the place back."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor._reserved -= 1
