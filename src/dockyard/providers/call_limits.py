"""Model and tool calls per run, from ``policies.limits``: LangChain's call-limit
middleware with its limits read on each call from the process running the graph."""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware import ModelCallLimitMiddleware, ToolCallLimitMiddleware

from dockyard.providers.registry import run_registry
from dockyard.settings import CallLimitsConfig


class _LimitsFromPolicies:
    """LangChain's ``run_limit`` / ``thread_limit`` / ``exit_behavior``, answered from
    ``policies.limits`` on each read; what LangChain's ``__init__`` sets is dropped."""

    _limit: str  # the CallLimitsConfig field of this middleware's run limit
    _unset_exit: str  # exit_behavior while policies.limits is unset

    @staticmethod
    def _limits() -> CallLimitsConfig | None:
        return run_registry().policies.limits

    @property
    def run_limit(self) -> int | None:
        limits = self._limits()
        return getattr(limits, self._limit) if limits is not None else None

    @run_limit.setter
    def run_limit(self, value: Any) -> None:
        pass

    @property
    def thread_limit(self) -> int | None:
        return None

    @thread_limit.setter
    def thread_limit(self, value: Any) -> None:
        pass

    @property
    def exit_behavior(self) -> str:
        limits = self._limits()
        return limits.exit if limits is not None else self._unset_exit

    @exit_behavior.setter
    def exit_behavior(self, value: Any) -> None:
        pass


class ConfiguredModelCallLimit(_LimitsFromPolicies, ModelCallLimitMiddleware):  # type: ignore[misc]
    """``ModelCallLimitMiddleware`` with ``run_limit`` = ``policies.limits.model_calls_per_run``."""

    _limit = "model_calls_per_run"
    _unset_exit = "end"

    def __init__(self) -> None:
        super().__init__(run_limit=1)  # LangChain wants a limit; the real one is read per call


class ConfiguredToolCallLimit(_LimitsFromPolicies, ToolCallLimitMiddleware):  # type: ignore[misc]
    """``ToolCallLimitMiddleware`` (all tools) with ``run_limit`` =
    ``policies.limits.tool_calls_per_run``; ``exit: end`` stops the agent, as for model calls."""

    _limit = "tool_calls_per_run"
    _unset_exit = "continue"

    def __init__(self) -> None:
        super().__init__(run_limit=1)
