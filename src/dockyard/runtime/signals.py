"""Wake-ups and cancel requests between processes.

Runs are created by API processes and executed by workers; a new run wakes the
workers' claim loops, and a cancel reaches whichever process executes the run.
In one process these are method calls; across processes they travel over Redis
pub/sub (``redis_signals``, imported only with ``redis_url``). A lost message
only costs time, never correctness: cancel requests are also stored on the run
(workers see them with their next heartbeat) and claim loops poll.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dockyard.runtime.attempt import CancelAction
    from dockyard.runtime.executor import Executor


class Signals(Protocol):
    async def wake(self, due: datetime | None = None) -> None:
        """New work is queued: executors, claim now (``due``: it starts at that time)."""

    async def cancel(self, run_id: str, action: CancelAction) -> None:
        """Whichever process executes ``run_id``: stop it."""


class LocalSignals:
    """One process: the executor (if this process has one) is right here."""

    def __init__(self, executor: Executor | None) -> None:
        self.executor = executor

    async def wake(self, due: datetime | None = None) -> None:
        if self.executor is not None:
            self.executor.wake(due)

    async def cancel(self, run_id: str, action: CancelAction) -> None:
        if self.executor is not None:
            self.executor.cancel(run_id, action)
