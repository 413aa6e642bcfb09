"""One run's own spending cap: ``policies.limits.cost_usd_per_run`` (per assistant too).

Daily and monthly budgets (policies/budget.py) keep a team's spend in bounds; this keeps
one run from spending it all: an agent looping on an expensive model, a research team
that keeps delegating. A run observer gives each attempt a callback handler that, before
every model call of the graph (any model: ``chat_model(...)`` or a bare ``ChatOpenAI``),
compares what the run's calls have cost so far, over all its attempts (the usage tally's
priced calls), with the cap, and refuses the call with ``budget_exceeded`` (402) once it
is reached. LangChain passes the handler's error on (``raise_error``), so the graph stops
there and the run ends in error with the refusal recorded.

A call already under way finishes: the cap is checked before a call, so a run ends at
most one call past it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler

from dockyard.errors import BudgetExceededError

LimitFor = Callable[[str], float | None]
"""The cap of an assistant's runs (by assistant id), None: no cap."""


class RunCostLimit:
    """The run observer of the cap (see the module): a guard per attempt whose run has one."""

    def __init__(self, limit_for: LimitFor) -> None:
        self.limit_for = limit_for

    def run_callbacks(self, run: Any, usage: Any) -> Sequence[Any]:
        limit = self.limit_for(run["assistant_id"])
        if limit is None:
            return ()
        return (RunCostGuard(limit, run["run_id"], lambda: float(usage.cost_usd)),)

    def on_created(self, run: Any) -> None:
        return None

    def on_started(self, run: Any) -> None:
        return None

    def on_ended(self, run: Any, outcome: Any, usage: Any) -> None:
        return None


class RunCostGuard(AsyncCallbackHandler):
    """Refuses a run's next model call once its cost reached ``limit`` USD."""

    raise_error = True
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, limit: float, run_id: str, spent: Callable[[], float]) -> None:
        self.limit = limit
        self.run_id = run_id
        self.spent = spent

    # Async like the budget's guard: LangChain awaits it in the call's own task, before the
    # request goes out, and passes its error on; a sync call runs it on a loop of its own.
    async def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self._check()

    async def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        self._check()

    def _check(self) -> None:
        spent = self.spent()
        if spent < self.limit:
            return
        raise BudgetExceededError(
            f"this run has spent ${spent:.6g} of its ${self.limit:.6g} limit "
            "(policies.limits.cost_usd_per_run): it stops before its next model call",
            budget={
                "period": "run",
                "scope": "run",
                "holder": self.run_id,
                "limit_usd": self.limit,
                "spent_usd": round(spent, 10),
            },
        )


__all__ = ["RunCostGuard", "RunCostLimit"]
