"""Benchmark graphs, served by ``langgraph dev`` or dockyard through ``bench/langgraph.json``.

* ``trivial``: one node that returns its input (measures pure server overhead).
* ``fake_model``: one node calling :class:`FakeLatencyChatModel`, a chat model that sleeps
  ``latency`` seconds (asyncio) and answers a fixed message. Default 50 ms; override with the
  environment variable ``BENCH_FAKE_MODEL_LATENCY_MS`` in the *server's* environment.

Self-contained on purpose: only langgraph and langchain-core.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, TypedDict

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph

FIXED_REPLY = "pong"


class FakeLatencyChatModel(BaseChatModel):
    """A chat model that waits ``latency`` seconds, then replies :data:`FIXED_REPLY`."""

    latency: float = 0.05
    reply: str = FIXED_REPLY

    @property
    def _llm_type(self) -> str:
        return "bench-fake-latency"

    def _result(self) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.latency)  # sync path only; the graph below uses the async path
        return self._result()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        await asyncio.sleep(self.latency)
        return self._result()


def _latency_from_env() -> float:
    return float(os.environ.get("BENCH_FAKE_MODEL_LATENCY_MS", "50")) / 1000.0


class TrivialState(TypedDict):
    value: str


async def echo(state: TrivialState) -> TrivialState:
    return state


_trivial = StateGraph(TrivialState)
_trivial.add_node("echo", echo)
_trivial.add_edge(START, "echo")
_trivial.add_edge("echo", END)
trivial = _trivial.compile()

model = FakeLatencyChatModel(latency=_latency_from_env())


async def call_model(state: MessagesState) -> dict[str, list[BaseMessage]]:
    reply = await model.ainvoke(state["messages"])
    return {"messages": [reply]}


_fake_model = StateGraph(MessagesState)
_fake_model.add_node("model", call_model)
_fake_model.add_edge(START, "model")
_fake_model.add_edge("model", END)
fake_model = _fake_model.compile()
