"""Human approval of risky tool calls, configured in ``policies.approval``.

LangChain's ``HumanInTheLoopMiddleware`` does the work (the interrupt, approve / edit /
reject, resuming with ``Command(resume=...)``); this subclass takes its tools and their
conditions from the policies of the process running the graph, looked up on each call
through the run's model registry. So one module-level agent serves every deployment,
and a graph is never the place that reads settings::

    from langchain.agents import create_agent
    from dockyard import chat_model, middleware

    graph = create_agent(chat_model("default"), tools, middleware=middleware())

With ``policies.approval`` unset, no call waits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from langchain.agents.middleware import HumanInTheLoopMiddleware, InterruptOnConfig
from langchain.agents.middleware.types import ToolCallRequest

from dockyard.providers.registry import run_registry
from dockyard.settings import ApprovalConfig, ApprovalRule


class ConfiguredApproval(HumanInTheLoopMiddleware):
    """``HumanInTheLoopMiddleware`` with ``interrupt_on`` from ``policies.approval``."""

    def __init__(self) -> None:
        super().__init__(interrupt_on={})
        self._built: tuple[ApprovalConfig | None, dict[str, InterruptOnConfig]] = (None, {})

    @property  # type: ignore[override]
    def interrupt_on(self) -> dict[str, InterruptOnConfig]:
        config = run_registry().policies.approval
        built_for, built = self._built
        if config is not built_for:  # one settings object per process: built once
            built = interrupt_on(config)
            self._built = (config, built)
        return built

    @interrupt_on.setter
    def interrupt_on(self, value: dict[str, Any]) -> None:
        if value:  # LangChain's __init__ sets it empty; the tools come from the policies
            raise TypeError("ConfiguredApproval takes its tools from policies.approval")


def interrupt_on(config: ApprovalConfig | None) -> dict[str, InterruptOnConfig]:
    """LangChain's ``interrupt_on`` for ``policies.approval``."""
    if config is None:
        return {}
    out: dict[str, InterruptOnConfig] = {}
    for tool, rule in config.tools.items():
        entry: InterruptOnConfig = {"allowed_decisions": list(rule.decisions)}
        if rule.description is not None:
            entry["description"] = rule.description
        if rule.when:
            entry["when"] = _condition(rule)
        out[tool] = entry
    return out


def _condition(rule: ApprovalRule) -> Callable[[ToolCallRequest], bool]:
    patterns = {arg: re.compile(p) for arg, p in rule.when.items()}

    def when(request: ToolCallRequest) -> bool:
        args = request.tool_call.get("args") or {}
        for arg, pattern in patterns.items():
            if arg not in args:
                return False
            value = args[arg]
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            if not pattern.search(text):
                return False
        return True

    return when
