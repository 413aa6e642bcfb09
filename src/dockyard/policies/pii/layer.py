"""``policies.pii`` as a layer of the model chain (policies/chain.py): every model a graph
gets from ``chat_model(...)`` sends the messages ``protect_input`` leaves and hands on the
answer ``protect_output`` leaves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from dockyard.policies.pii.messages import protect_input, protect_output
from dockyard.policies.pii.policy import PiiPolicy
from dockyard.providers.wrapper import (
    AsyncNext,
    AsyncStreamNext,
    ModelCall,
    ModelLayer,
    SyncNext,
    SyncStreamNext,
)


class PiiLayer(ModelLayer):
    def __init__(self, policy: PiiPolicy) -> None:
        self.policy = policy

    def _in(self, call: ModelCall) -> ModelCall:
        return replace(call, messages=protect_input(self.policy, call.messages))

    def _out(self, result: ChatResult) -> ChatResult:
        for gen in result.generations:
            if isinstance(gen, ChatGeneration) and isinstance(gen.message, AIMessage):
                gen.message = protect_output(self.policy, gen.message)
        return result

    def _chunk(self, chunk: ChatGenerationChunk) -> ChatGenerationChunk:
        # Chunk by chunk: a value split across two chunks is not recognised (docs/policies.md).
        if isinstance(chunk.message, AIMessageChunk) and chunk.message.content:
            chunk.message = protect_output(self.policy, chunk.message)
            chunk.text = chunk.message.text
        return chunk

    async def agenerate(self, call: ModelCall, call_next: AsyncNext) -> ChatResult:
        return self._out(await call_next(self._in(call)))

    def generate(self, call: ModelCall, call_next: SyncNext) -> ChatResult:
        return self._out(call_next(self._in(call)))

    async def astream(  # type: ignore[override]
        self, call: ModelCall, call_next: AsyncStreamNext
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in call_next(self._in(call)):
            yield self._chunk(chunk)

    def stream(self, call: ModelCall, call_next: SyncStreamNext) -> Iterator[ChatGenerationChunk]:
        for chunk in call_next(self._in(call)):
            yield self._chunk(chunk)
