"""``dockyard.middleware()``: dockyard's policies as LangChain agent middleware.

Each middleware reads its settings on every call from the policies of the process running
the graph (through the run's model registry, as ``chat_model`` finds its model), so a graph
module built once at import serves every deployment and never reads settings itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from langchain.agents.middleware.types import (
    AgentMiddleware,
    ModelCallResult,
    ModelRequest,
    ModelResponse,
)
from langchain_core.messages import AIMessage, BaseMessage

from dockyard.providers.approval import ConfiguredApproval
from dockyard.providers.call_limits import ConfiguredModelCallLimit, ConfiguredToolCallLimit
from dockyard.providers.message_guard import MessageGuard
from dockyard.providers.registry import RegistryChatModel, run_registry
from dockyard.providers.summarization import ConfiguredSummarization


class GuardedMessages(AgentMiddleware[Any, Any]):
    """Runs the registry's message guards around each model call."""

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelCallResult]
    ) -> ModelCallResult:
        guards = _guards(request)
        if not guards:
            return handler(request)
        return _output(handler(_input(request, guards)), guards)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelCallResult]],
    ) -> ModelCallResult:
        guards = _guards(request)
        if not guards:
            return await handler(request)
        return _output(await handler(_input(request, guards)), guards)


def _guards(request: ModelRequest[Any]) -> Sequence[MessageGuard]:
    # A chat_model(...) model's calls pass the registry's model chain, which holds the same
    # policies as a layer (policies/chain.py): guarding here too would do the work twice.
    if isinstance(request.model, RegistryChatModel):
        return ()
    return run_registry().message_guards


def _input(request: ModelRequest[Any], guards: Sequence[MessageGuard]) -> ModelRequest[Any]:
    messages: list[BaseMessage] = list(request.messages)
    for guard in guards:
        messages = guard.model_input(messages)
    return request.override(messages=messages)  # type: ignore[arg-type]


def _output(result: ModelCallResult, guards: Sequence[MessageGuard]) -> ModelCallResult:
    def fix(message: BaseMessage) -> BaseMessage:
        if isinstance(message, AIMessage):
            for guard in guards:
                message = guard.model_output(message)
        return message

    if isinstance(result, AIMessage):
        out = fix(result)
        assert isinstance(out, AIMessage)
        return out
    if isinstance(result, ModelResponse):
        result.result = [fix(m) for m in result.result]
    return result


def middleware() -> list[AgentMiddleware[Any, Any]]:
    """For ``create_agent(..., middleware=middleware())``: summarization
    (``policies.summarization``), model and tool call limits (``policies.limits``) and
    human approval of tool calls (``policies.approval``) and the registry's message guards
    around each model call (``policies.pii``); each does nothing while its block is unset.
    Mix freely with LangChain's own middleware."""
    return [
        ConfiguredSummarization(),
        GuardedMessages(),
        ConfiguredModelCallLimit(),
        ConfiguredToolCallLimit(),
        ConfiguredApproval(),
    ]
