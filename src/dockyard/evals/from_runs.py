"""A dataset from past runs: each successful run's input, with its final answer as the
expected value (to be reviewed: a past answer is what the assistant said, not
necessarily what it should have said).

A run counts when it was its thread's last run (the thread's stored values are then its
output); runs made by an experiment (``metadata.dockyard_experiment``) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dockyard.evals.dataset import Item
from dockyard.evals.runner import answer_text
from dockyard.storage.base import EvalStore
from dockyard.variants import EXPERIMENT_KEY

PAGE = 200


def _input_of(value: object) -> object:
    # A single user message reads better as its text, and runs the same way.
    if isinstance(value, dict) and list(value) == ["messages"]:
        messages = value["messages"]
        if (
            isinstance(messages, list)
            and len(messages) == 1
            and isinstance(messages[0], dict)
            and messages[0].get("role", messages[0].get("type")) in ("user", "human")
            and isinstance(messages[0].get("content"), str)
        ):
            return messages[0]["content"]
    return value


async def items_from_runs(
    store: EvalStore,
    *,
    assistant_ids: Sequence[str] | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Item]:
    """Up to ``limit`` items, newest run first."""
    items: list[Item] = []
    offset = 0
    while len(items) < limit:
        page = await store.run_examples(
            assistant_ids=assistant_ids, since=since, limit=PAGE, offset=offset
        )
        for run in page:
            if EXPERIMENT_KEY in run["metadata"] or run["input"] in (None, {}, []):
                continue
            items.append(
                Item(
                    id=run["run_id"],
                    input=_input_of(run["input"]),
                    expected=answer_text(run["output"]),
                    metadata={
                        "run_id": run["run_id"],
                        "thread_id": run["thread_id"],
                        "assistant_id": run["assistant_id"],
                        "created_at": run["created_at"].isoformat(),
                    },
                )
            )
            if len(items) == limit:
                break
        if len(page) < PAGE:
            break
        offset += PAGE
    return items
