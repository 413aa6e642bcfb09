"""Model and tool calls per run, from ``policies.limits``: LangChain's call-limit
middleware with its limits read on each call from the process running the graph."""

from __future__ import annotations

from typing import Any, Literal

from langchain.agents.middleware import ModelCallLimitMiddleware, ToolCallLimitMiddleware

from dockyard.providers.registry import run_registry
from dockyard.settings import CallLimitsConfig


def _limits() -> CallLimitsConfig | None:
    return run_registry().policies.limits


class ConfiguredModelCallLimit(ModelCallLimitMiddleware):
    """``ModelCallLimitMiddleware`` with ``run_limit`` = ``policies.limits.model_calls_per_run``."""

    def __init__(self) -> None:
        super().__init__(run_limit=1)  # LangChain wants a limit; the real one is read per call

    @property  # type: ignore[override]
    def run_limit(self) -> int | None:
        limits = _limits()
        return limits.model_calls_per_run if limits is not None else None

    @run_limit.setter
    def run_limit(self, value: Any) -> None:
        pass  # set by LangChain's __init__; the policies decide

    @property  # type: ignore[override]
    def thread_limit(self) -> int | None:
        return None

    @thread_limit.setter
    def thread_limit(self, value: Any) -> None:
        pass

    @property  # type: ignore[override]
    def exit_behavior(self) -> Literal["end", "error"]:
        limits = _limits()
        return limits.exit if limits is not None else "end"

    @exit_behavior.setter
    def exit_behavior(self, value: Any) -> None:
        pass


class ConfiguredToolCallLimit(ToolCallLimitMiddleware):
    """``ToolCallLimitMiddleware`` (all tools) with ``run_limit`` =
    ``policies.limits.tool_calls_per_run``."""

    def __init__(self) -> None:
        super().__init__(run_limit=1)

    @property  # type: ignore[override]
    def run_limit(self) -> int | None:
        limits = _limits()
        return limits.tool_calls_per_run if limits is not None else None

    @run_limit.setter
    def run_limit(self, value: Any) -> None:
        pass

    @property  # type: ignore[override]
    def thread_limit(self) -> int | None:
        return None

    @thread_limit.setter
    def thread_limit(self, value: Any) -> None:
        pass

    @property  # type: ignore[override]
    def exit_behavior(self) -> Literal["continue", "error", "end"]:
        limits = _limits()
        # "end" stops the agent with a message, as for model calls.
        return limits.exit if limits is not None else "continue"

    @exit_behavior.setter
    def exit_behavior(self, value: Any) -> None:
        pass
