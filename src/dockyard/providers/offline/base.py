"""The machinery every dockyard fake chat model shares: tools, streaming, usage, ids.

A subclass only decides *what* to answer (``_reply``); this base turns that answer into
what LangChain and LangGraph expect from a real provider: message ids, usage metadata,
``response_metadata``, and word-by-word ``AIMessageChunk``s including tool-call chunks.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from dockyard.providers.offline.text import count_tokens, stream_pieces
from dockyard.sampling import RunParamsMixin

ToolSpec = dict[str, Any]
"""A bound tool in OpenAI function format, as ``bind_tools`` stores it."""


def tool_name(tool: ToolSpec) -> str:
    function = tool.get("function")
    if isinstance(function, dict):
        return str(function.get("name", ""))
    return str(tool.get("name", ""))


class FakeChatModelBase(RunParamsMixin, BaseChatModel):
    """Base class for offline chat models; subclasses implement ``_reply``.

    They honour ``stop`` (the text ends before the first stop sequence) and
    ``max_tokens`` (the text is cut to that many words, tool calls dropped, and
    ``finish_reason`` is ``"length"``), from the call or from the run's sampling settings
    (``dockyard.sampling``). They answer the same whatever the temperature, top_p, seed
    or penalties: they do not sample.
    """

    model_name: str = "fake"
    """Reported as ``response_metadata["model_name"]``, like a real provider's model id."""

    latency: float = 0.0
    """Seconds to wait before answering each call (async sleep on async paths)."""

    @abstractmethod
    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        """Decide the answer to ``messages``, given the tools bound for this call."""

    @property
    def _llm_type(self) -> str:
        return "dockyard-fake"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    # -- answering -------------------------------------------------------------------

    def _answer(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> AIMessage:
        tools: list[ToolSpec] = list(kwargs.get("tools") or [])
        message = self._reply(messages, tools).model_copy(deep=True)
        _limit(message, stop, kwargs.get("max_tokens"))
        return self._finish(message, messages)

    def _finish(self, message: AIMessage, prompt: list[BaseMessage]) -> AIMessage:
        # LangGraph's "messages" stream mode and add_messages both key on ids, so every
        # answer gets one even when the model is driven outside a callback run.
        if message.id is None:
            message.id = f"fake-{uuid.uuid4().hex}"
        for call in message.tool_calls:
            if not call.get("id"):
                call["id"] = f"call_{uuid.uuid4().hex[:24]}"
        if message.usage_metadata is None:
            input_tokens = sum(count_tokens(m.text) for m in prompt)
            output_tokens = count_tokens(message.text) + sum(
                count_tokens(call["name"]) + count_tokens(json.dumps(call["args"]))
                for call in message.tool_calls
            )
            message.usage_metadata = UsageMetadata(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            )
        finish_reason = "tool_calls" if message.tool_calls else "stop"
        message.response_metadata = {
            "model_name": self.model_name,
            "finish_reason": finish_reason,
            **message.response_metadata,
        }
        return message

    # -- BaseChatModel hooks -----------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency:
            time.sleep(self.latency)
        return ChatResult(
            generations=[ChatGeneration(message=self._answer(messages, stop, kwargs))]
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        return ChatResult(
            generations=[ChatGeneration(message=self._answer(messages, stop, kwargs))]
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if self.latency:
            time.sleep(self.latency)
        for chunk in to_chunks(self._answer(messages, stop, kwargs)):
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.latency:
            await asyncio.sleep(self.latency)
        for chunk in to_chunks(self._answer(messages, stop, kwargs)):
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
            # Yield to the loop between tokens, as a network stream would.
            await asyncio.sleep(0)


def _limit(message: AIMessage, stop: list[str] | None, max_tokens: int | None) -> None:
    """Cut ``message`` as a provider would for ``stop`` and ``max_tokens``."""
    if not isinstance(message.content, str):
        return
    text = message.content
    if stop:
        cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
        if cuts:
            text = text[: min(cuts)]
    if max_tokens is not None:
        calls = sum(
            count_tokens(call["name"]) + count_tokens(json.dumps(call["args"]))
            for call in message.tool_calls
        )
        if count_tokens(text) + calls > max_tokens:
            text = "".join(stream_pieces(text)[:max_tokens])
            message.tool_calls = []
            message.response_metadata = {**message.response_metadata, "finish_reason": "length"}
    message.content = text


def to_chunks(message: AIMessage) -> list[ChatGenerationChunk]:
    """Split a finished answer into the chunks a streaming provider would send.

    Text arrives word by word; each tool call arrives as a chunk carrying its name and
    id, then its JSON arguments word by word. Usage and ``response_metadata`` ride on
    the last chunk only, because chunk addition concatenates string metadata.
    """
    chunks: list[AIMessageChunk] = []
    content = message.content
    if isinstance(content, str):
        chunks.extend(
            AIMessageChunk(content=piece, id=message.id) for piece in stream_pieces(content)
        )
    elif content:
        chunks.append(AIMessageChunk(content=content, id=message.id))
    empty: str | list[str | dict[str, Any]] = "" if isinstance(content, str) else []
    for index, call in enumerate(message.tool_calls):
        chunks.append(
            AIMessageChunk(
                content=empty,
                id=message.id,
                tool_call_chunks=[
                    tool_call_chunk(name=call["name"], args="", id=call["id"], index=index)
                ],
            )
        )
        chunks.extend(
            AIMessageChunk(
                content=empty,
                id=message.id,
                tool_call_chunks=[tool_call_chunk(name=None, args=piece, id=None, index=index)],
            )
            for piece in stream_pieces(json.dumps(call["args"]))
        )
    chunks.append(
        AIMessageChunk(
            content=empty,
            id=message.id,
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
    )
    return [ChatGenerationChunk(message=chunk) for chunk in chunks]
