"""One process's copy of the prompt registry: what ``dockyard.prompt()`` reads.

Every version and label is held in two dicts, so a graph's ``prompt(name, label=...)``
is one dict lookup (``bench/prompt_bench.py``). A background task asks the database for
the registry's ``revision`` every ``prompts.refresh_seconds`` (one single-row read) and
loads everything again when it changed, swapping the dicts whole: a reader sees the old
copy or the new one, never half of each, from any thread. So a label moved or rolled
back by any process is served here within one refresh interval (plus the load).

When the database does not answer, the last copy loaded goes on being served; a warning
is logged once when that starts and a line when it ends.
"""

from __future__ import annotations

import asyncio
import logging

from dockyard.errors import NotFoundError
from dockyard.prompt_template import LATEST, PromptVersion
from dockyard.storage.prompts import PromptStore, Snapshot

log = logging.getLogger("dockyard.prompts")


class PromptCache:
    """A ``PromptSource`` (``dockyard.prompt_source``) kept fresh from ``store``."""

    def __init__(self, store: PromptStore, refresh_seconds: float = 1.0) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.revision = -1
        self._by_version: dict[tuple[str, int], PromptVersion] = {}
        self._by_label: dict[tuple[str, str], PromptVersion] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._failing = False

    # -- the graph side (any thread) ---------------------------------------------------------

    def lookup(self, name: str, label: str | None, version: int | None) -> PromptVersion:
        if version is not None:
            found = self._by_version.get((name, version))
        else:
            found = self._by_label.get((name, label or LATEST))
        if found is None:
            raise self._missing(name, label, version)
        return found

    def _missing(self, name: str, label: str | None, version: int | None) -> NotFoundError:
        known = {n for n, _ in self._by_label}
        if name not in known:
            what = f"no prompt named {name!r}"
        elif version is not None:
            what = f"prompt {name!r} has no version {version}"
        else:
            what = f"prompt {name!r} has no label {label!r}"
        return NotFoundError(
            f"{what} in this process's prompt registry (push it with `dockyard prompts "
            "push`, or wait for the next refresh when it was just pushed elsewhere)",
            code="prompt_not_found",
        )

    # -- loading -----------------------------------------------------------------------------

    def install(self, snapshot: Snapshot) -> None:
        by_version = {(v.name, v.version): v for v in snapshot.versions}
        by_label: dict[tuple[str, str], PromptVersion] = {}
        for v in snapshot.versions:  # ordered by name, version: the last one is latest
            by_label[(v.name, LATEST)] = v
        for (name, label), number in snapshot.labels.items():
            if (found := by_version.get((name, number))) is not None:
                by_label[(name, label)] = found
        self._by_version, self._by_label = by_version, by_label
        self.revision = snapshot.revision

    async def refresh(self, *, force: bool = False) -> bool:
        """Load the registry again if it changed since the last load; whether it did."""
        async with self._lock:
            if not force and await self.store.revision() == self.revision:
                return False
            self.install(await self.store.snapshot())
            return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.refresh()
            except Exception as e:  # the database is away: keep serving the last copy
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "prompt registry refresh failed (%s: %s); serving the prompts loaded "
                        "at revision %d until the database answers",
                        type(e).__name__,
                        e,
                        self.revision,
                    )
            else:
                if self._failing:
                    self._failing = False
                    log.info("prompt registry refresh works again (revision %d)", self.revision)

    # -- Component ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.refresh(force=True)
        self._task = asyncio.create_task(self._poll(), name="dockyard-prompt-cache")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # The task's own cancellation ends it; a cancel of whoever stops it goes on.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
