"""Run observers: told when a run is created, when an attempt starts, and how it ended.

Webhooks are one; metrics, cost accounting and quality scoring plug in the same way,
each as an observer handed to the process, never as a branch in the run path.

Observers are called in the event loop, in order, and must not block: one that has
I/O to do schedules it. An observer that raises is logged and skipped; the run and
the other observers go on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dockyard.storage.base import Run, RunStatus

if TYPE_CHECKING:
    from dockyard.runtime.usage import Usage

log = logging.getLogger("dockyard.observers")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended: the status stored on the run, its error body (as sent in
    the ``error`` event), the graph's last values; ``rollback``: the run was removed."""

    status: RunStatus
    error: dict[str, Any] | None
    values: Any
    rollback: bool = False


class RunObserver(Protocol):
    """Subclass and override what you need; the defaults do nothing."""

    def on_created(self, run: Run) -> None:
        """The run is stored (pending, or running when it starts here at once)."""
        return None

    def on_started(self, run: Run) -> None:
        """An attempt is about to stream the graph (once per attempt: a resumed run
        starts again)."""
        return None

    def run_callbacks(self, run: Run, usage: Usage) -> Sequence[Any]:
        """LangChain callback handlers to add to each attempt's config, built when the
        attempt starts; ``usage`` is the attempt's own tally, filled as calls end (the
        budget policy stops model calls this way). Optional."""
        return ()

    def on_ended(self, run: Run, outcome: Outcome, usage: Usage) -> None:
        """The attempt's outcome (and its model calls' ``usage``) is stored. Not called
        for an attempt handed back to the queue (shutdown) or taken over by another
        worker: a later attempt ends it."""
        return None


class Observers:
    """Calls every observer, shielding the run and each other from one that fails."""

    def __init__(self, observers: Sequence[RunObserver]) -> None:
        self.observers = tuple(observers)

    def _each(self, hook: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, hook)(*args)
            except Exception:
                log.exception("run observer %s.%s failed", type(observer).__name__, hook)

    def created(self, run: Run) -> None:
        if self.observers:
            self._each("on_created", run)

    def started(self, run: Run) -> None:
        if self.observers:
            self._each("on_started", run)

    def ended(self, run: Run, outcome: Outcome, usage: Usage) -> None:
        if self.observers:
            self._each("on_ended", run, outcome, usage)

    def callbacks(self, run: Run, usage: Usage) -> list[Any]:
        """The LangChain callback handlers the observers add to an attempt's config
        (``run_callbacks``; an observer without the method adds none).
        Not shielded: a handler that cannot be built is a bug to see, not to skip."""
        out: list[Any] = []
        for observer in self.observers:
            contribute = getattr(observer, "run_callbacks", None)
            if contribute is not None:
                out.extend(contribute(run, usage))
        return out
