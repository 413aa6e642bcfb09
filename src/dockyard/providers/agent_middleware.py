"""``dockyard.middleware()``: dockyard's policies as LangChain agent middleware.

Each middleware reads its settings on every call from the policies of the process running
the graph (through the run's model registry, as ``chat_model`` finds its model), so a graph
module built once at import serves every deployment and never reads settings itself.
"""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware.types import AgentMiddleware

from dockyard.providers.approval import ConfiguredApproval
from dockyard.providers.call_limits import ConfiguredModelCallLimit, ConfiguredToolCallLimit
from dockyard.providers.summarization import ConfiguredSummarization


def middleware() -> list[AgentMiddleware[Any, Any]]:
    """For ``create_agent(..., middleware=middleware())``: summarization
    (``policies.summarization``), model and tool call limits (``policies.limits``) and
    human approval of tool calls (``policies.approval``); each does nothing while its
    block is unset. Mix freely with LangChain's own middleware."""
    return [
        ConfiguredSummarization(),
        ConfiguredModelCallLimit(),
        ConfiguredToolCallLimit(),
        ConfiguredApproval(),
    ]
