"""Which registry prompts a run used, stored with it (``usage.prompts``), and the
periodic removal of old unlabeled prompt versions.

``PromptUses`` is a run observer: it adds to each attempt's config a LangChain callback
handler with ``record_prompt``, which ``dockyard.prompt()`` finds among the running
node's callbacks (``dockyard.prompt_source``) and calls with the (name, version, label)
it served. The attempt's ``Usage`` keeps them and is stored with the run's outcome, in
the same write as its model usage: nothing in the run path knows about prompts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from dockyard.prompt_source import PromptSource
from dockyard.runtime.components import PeriodicTask
from dockyard.runtime.observers import RunObserver
from dockyard.runtime.usage import Usage
from dockyard.storage.base import Run
from dockyard.storage.prompts import PromptStore

log = logging.getLogger("dockyard.prompts")


class PromptRecorder(BaseCallbackHandler):
    """Hears no LangChain event: it is in the callbacks only to be found by ``prompt()``."""

    # Told about no event at all: each handler costs every callback dispatch a check.
    ignore_llm = ignore_chain = ignore_agent = ignore_retriever = True
    ignore_chat_model = ignore_custom_event = ignore_retry = True
    run_inline = True

    def __init__(self, usage: Usage, source: PromptSource) -> None:
        self.usage = usage
        self.prompt_source = source

    def record_prompt(self, name: str, version: int, label: str | None) -> None:
        self.usage.prompts[(name, version, label)] = None


class PromptUses(RunObserver):
    """Adds a ``PromptRecorder`` serving ``source`` (the process's cache) to each attempt."""

    def __init__(self, source: PromptSource) -> None:
        self.source = source

    def run_callbacks(self, run: Run, usage: Usage) -> Sequence[Any]:
        return (PromptRecorder(usage, self.source),)


class PromptRetention(PeriodicTask):
    """Every ``interval`` seconds: versions older than ``days`` that no label points at,
    and that are not their prompt's latest, are removed."""

    def __init__(self, store: PromptStore, days: float, interval: float) -> None:
        super().__init__(
            "dockyard-prompt-retention",
            self.sweep_once,
            interval,
            log=log,
            failed="prompt retention sweep failed; retrying next interval",
            immediately=True,
        )
        self.store = store
        self.days = days

    async def sweep_once(self) -> int:
        gone = await self.store.delete_unlabeled(datetime.now(UTC) - timedelta(days=self.days))
        if gone:
            log.info("removed %d unlabeled prompt version(s) older than %g days", gone, self.days)
        return gone
