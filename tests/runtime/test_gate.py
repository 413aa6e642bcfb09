"""The load gate: how many runs execute at once, following the event loop's lag."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from dockyard.runtime.gate import LoadGate, UntilFirstCall
from dockyard.testing import ScriptedChatModel
from tests.conftest import LiveServer, eventually


async def test_runs_over_the_limit_wait_in_order_and_start_as_others_end() -> None:
    gate = LoadGate(4, floor=1)
    gate.limit = 1.0
    gate.observe = lambda lag: None  # type: ignore[method-assign]  # hold the limit
    order: list[int] = []

    async def run(i: int) -> None:
        await gate.acquire()
        order.append(i)

    await gate.acquire()
    tasks = [asyncio.create_task(run(i)) for i in range(3)]
    await asyncio.sleep(0)  # one loop turn: each task runs up to its wait at the gate
    assert order == [] and gate.waiting == 3
    gate.release()
    await asyncio.sleep(0)
    assert order == [0]
    gate.release()
    gate.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2] and gate.active == 1
    await gate.close()


def test_lag_lowers_the_limit_to_the_floor_and_time_on_schedule_raises_it() -> None:
    gate = LoadGate(16, floor=2)
    for _ in range(50):
        gate.observe(0.050)
    assert gate.limit == 2.0
    gate.observe(0.0)
    assert gate.limit == 2.25
    for _ in range(100):
        gate.observe(0.0)
    assert gate.limit == 16.0


async def test_a_raised_limit_lets_waiting_runs_in() -> None:
    gate = LoadGate(4, floor=1)
    gate.limit = 1.0
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    for _ in range(4):  # on time: +0.25 each
        gate.observe(0.0)
    await asyncio.wait_for(waiter, 1)
    assert gate.active == 2
    await gate.close()


async def test_a_cancelled_waiter_leaves_the_queue_and_a_granted_one_passes_it_on() -> None:
    gate = LoadGate(4, floor=1)
    gate.limit = 1.0
    gate.observe = lambda lag: None  # type: ignore[method-assign]
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert gate.waiting == 1
    gate.release()  # grants ``second``
    second.cancel()  # ... which is cancelled before it resumes: the place goes back
    await asyncio.gather(second, return_exceptions=True)
    assert gate.active == 0 and gate.waiting == 0
    await gate.close()


async def test_the_probe_stops_when_the_process_is_idle() -> None:
    gate = LoadGate(4, probe=0.005)
    await gate.acquire()
    assert gate._probe_task is not None
    gate.release()
    await asyncio.wait_for(gate._probe_task, 1)


async def test_a_run_leaves_the_gate_at_its_first_model_call_not_before() -> None:
    """Through LangGraph as a run attempt runs it: the callbacks in the run's config
    reach a model called inside a node; steps before it do not release."""
    released: list[str] = []
    model = ScriptedChatModel(responses=["one", "two"])

    def prepare(state: MessagesState) -> dict[str, object]:
        released.append(f"prepare saw {len(calls)}")
        return {}

    async def ask(state: MessagesState) -> dict[str, object]:
        first = await model.ainvoke(state["messages"])
        second = await model.ainvoke(state["messages"])
        return {"messages": [first, second]}

    calls: list[int] = []
    g = StateGraph(MessagesState)
    g.add_node("prepare", prepare)
    g.add_node("ask", ask)
    g.add_edge(START, "prepare")
    g.add_edge("prepare", "ask")
    g.add_edge("ask", END)
    config: RunnableConfig = {"callbacks": [UntilFirstCall(lambda: calls.append(1))]}
    out = await g.compile().ainvoke({"messages": [("user", "hi")]}, config)  # type: ignore[call-overload]
    assert released == ["prepare saw 0"]
    assert calls == [1]  # once, though the model was called twice
    assert [m.content for m in out["messages"][-2:]] == ["one", "two"]


async def test_a_tool_call_also_releases() -> None:
    calls: list[int] = []

    @tool
    def lookup(order_id: str) -> str:
        """Look an order up."""
        return f"order {order_id}"

    handler = UntilFirstCall(lambda: calls.append(1))
    assert await lookup.ainvoke({"order_id": "A1"}, {"callbacks": [handler]}) == "order A1"
    assert calls == [1]


async def test_the_gate_is_off_unless_asked(live_server: LiveServer) -> None:
    assert live_server.app.state.runtime.executor.gate is None


@pytest.fixture
def held_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path, runs={"adaptive_concurrency": True}).start()
    gate = server.app.state.runtime.executor.gate
    gate.observe = lambda lag: None  # the test sets the limit
    gate.limit = 1.0
    yield server
    server.stop()


async def test_a_run_held_at_the_gate_is_running_then_runs_or_is_cancelled(
    held_server: LiveServer, tmp_path: Path
) -> None:
    client = get_client(url=held_server.url)
    slow_thread = (await client.threads.create())["thread_id"]
    go = tmp_path / "go"  # the slow run keeps its place until this file exists
    slow = await client.runs.create(
        slow_thread, "slow", input={"delay": 0}, config={"configurable": {"hold": str(go)}}
    )
    await eventually(lambda: _status(client, slow_thread, slow["run_id"], "running"), timeout=10)
    held_threads = [(await client.threads.create())["thread_id"] for _ in range(2)]
    held = [await client.runs.create(t, "trivial", input={"x": 1}) for t in held_threads]
    gate = held_server.app.state.runtime.executor.gate
    await eventually(lambda: gate.waiting == 2, timeout=10)
    # Claimed and leased, so shown as running, though waiting for its turn.
    assert (await client.runs.get(held_threads[0], held[0]["run_id"]))["status"] == "running"
    await client.runs.cancel(held_threads[1], held[1]["run_id"], wait=True)
    assert (await client.runs.get(held_threads[1], held[1]["run_id"]))["status"] == "interrupted"
    go.touch()
    assert (await client.runs.join(held_threads[0], held[0]["run_id"]))["x"] == 1
    assert (await client.runs.get(slow_thread, slow["run_id"]))["status"] == "success"
    assert (await client.threads.get(held_threads[1]))["status"] == "idle"
    assert gate.active == 0 and gate.waiting == 0  # every place given back
    await client.aclose()


async def _status(client: LangGraphClient, thread_id: str, run_id: str, status: str) -> bool:
    return bool((await client.runs.get(thread_id, run_id))["status"] == status)
