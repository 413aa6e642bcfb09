"""The deep agent on ``offline:deep``, held once the researcher has answered.

With ``configurable.hold`` naming a file, the model call that follows the ``task`` result
waits until the file exists: the run is then mid-task (planned and researched, checkpointed,
not yet writing) for as long as the test needs, in whichever process runs it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langgraph.config import get_config

from dockyard.agents.deep import make_graph
from dockyard.providers.offline.deep import DeepOfflineModel


async def _held(messages: list[BaseMessage]) -> None:
    last = messages[-1] if messages else None
    if not (isinstance(last, ToolMessage) and last.name == "task"):
        return
    path = (get_config().get("configurable") or {}).get("hold")
    # A file has no event to wait on: poll it.
    while path and not await asyncio.to_thread(os.path.exists, path):  # noqa: ASYNC110
        await asyncio.sleep(0.01)


class HeldDeepModel(DeepOfflineModel):
    async def _agenerate(self, messages: list[BaseMessage], *a: Any, **kw: Any) -> ChatResult:
        await _held(messages)
        return await super()._agenerate(messages, *a, **kw)

    async def _astream(
        self, messages: list[BaseMessage], *a: Any, **kw: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        await _held(messages)
        async for chunk in super()._astream(messages, *a, **kw):
            yield chunk


graph = make_graph(model=HeldDeepModel())
