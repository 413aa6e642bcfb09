"""A run's usage over its attempts: the attempt handed back at shutdown keeps what it
spent with the run and in the ledger, and the attempt that resumes the run adds to it.
One process's runtime on SQLite, no HTTP in between."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.policies.prices import SHIPPED
from dockyard.run_spec import RunSpec
from dockyard.runtime.attempt import RunContext
from dockyard.runtime.broker import MemoryBroker
from dockyard.runtime.executor import Executor
from dockyard.runtime.graphs import load_registry
from dockyard.runtime.service import RunService
from dockyard.settings import load_settings
from dockyard.storage.database import open_storage
from tests.conftest import eventually

# Asks its model, then (held) asks again: a shutdown while held hands the run back after
# one call; the resumed attempt reruns the second node only.
GRAPH = """
import asyncio
import os

from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph

from dockyard.testing import ScriptedChatModel

USAGE = {"input_tokens": 100, "output_tokens": 10, "total_tokens": 110}
model = ScriptedChatModel(
    responses=[lambda messages: AIMessage("ok", usage_metadata=USAGE)],
    cycle=True,
    model_name="gpt-4o-mini",
)


async def first(state: MessagesState):
    return {"messages": [await model.ainvoke(state["messages"])]}


async def second(state: MessagesState, config):
    hold = config["configurable"]["hold"]
    open(hold + ".reached", "w").close()
    while not os.path.exists(hold):
        await asyncio.sleep(0.01)
    return {"messages": [await model.ainvoke(state["messages"])]}


_g = StateGraph(MessagesState)
_g.add_node("first", first)
_g.add_node("second", second)
_g.add_edge(START, "first")
_g.add_edge("first", "second")
graph = _g.compile()
"""


async def test_a_resumed_attempt_adds_to_the_usage_of_the_one_handed_back(
    tmp_path: Path,
) -> None:
    (tmp_path / "held_model.py").write_text(GRAPH)
    (tmp_path / "dockyard.yaml").write_text("graphs:\n  held_model: ./held_model.py:graph\n")
    settings = load_settings(tmp_path / "dockyard.yaml", data_dir=tmp_path / "data")
    registry = load_registry(settings)
    go = tmp_path / "go"
    async with open_storage(settings) as storage:
        registry.bind(storage.checkpointer, storage.store)
        ctx = RunContext(storage, registry, MemoryBroker(), settings)
        first = Executor(ctx, 4)
        service = RunService(ctx, first)
        await service.ensure_default_assistants()
        await first.start()
        thread = await storage.threads.create(thread_id="t-usage", metadata={}, if_exists="raise")
        spec = RunSpec(
            assistant_id="held_model",
            input={"messages": [{"role": "user", "content": "hi"}]},
            config={"configurable": {"hold": str(go)}},
        )
        run = await service.create(thread["thread_id"], spec)
        await eventually(lambda: Path(f"{go}.reached").exists())
        await first.stop()  # shutdown: the run goes back to the queue

        handed_back = await storage.runs.get(run["run_id"])
        assert handed_back is not None and handed_back["status"] == "pending"
        assert handed_back["usage"] is not None and handed_back["usage"]["model_calls"] == 1
        assert [s["calls"] for s in await storage.usage.summary(by="model")] == [1]

        go.touch()
        second = Executor(ctx, 4)
        await second.start()
        try:

            async def finished() -> bool:
                got = await storage.runs.get(run["run_id"])
                return got is not None and got["status"] == "success"

            await eventually(finished)
        finally:
            await second.stop()
        done = await storage.runs.get(run["run_id"])
        assert done is not None and done["attempts"] == 2
        usage = done["usage"]
        assert usage is not None
        assert (usage["model_calls"], usage["input_tokens"], usage["output_tokens"]) == (2, 200, 20)
        one_call = SHIPPED["gpt-4o-mini"].cost(100, 10)
        assert usage["models"]["gpt-4o-mini"]["cost_usd"] == pytest.approx(2 * one_call)
        assert len(usage["calls"]) == 2
        (day,) = await storage.usage.summary(by="model")
        assert (day["calls"], day["input_tokens"]) == (2, 200)
        assert day["cost_usd"] == pytest.approx(2 * one_call)
