"""Budgets as clients see them: 20 concurrent runs fired through langgraph-sdk at a budget
that allows 5 (each run's cost is known: the mock answers 1,000 + 1,000 tokens of a model
priced in ``policies.prices``), the 402 ``budget_exceeded`` body and message, the
``budget.threshold`` events, a key's and a tenant's budgets, the gateway's refusal in
OpenAI's shape, ``max_tokens_per_request``; then two API processes on PostgreSQL + Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from langgraph_sdk import get_client

from dockyard.policies.budget import ThresholdEvent, on_threshold
from dockyard.testing import MockOpenAIServer
from tests.cluster import cluster
from tests.conftest import LiveServer, eventually, make_key

pytestmark = pytest.mark.timeout(300)

AGENT = """
from typing import Any

from langgraph.graph import START, MessagesState, StateGraph

from dockyard import chat_model

model = chat_model("default")


async def answer(state: MessagesState) -> dict[str, Any]:
    return {"messages": [await model.ainvoke(state["messages"])]}


graph = StateGraph(MessagesState)
graph.add_node("answer", answer)
graph.add_edge(START, "answer")
graph = graph.compile()


async def three_calls(state: MessagesState) -> dict[str, Any]:
    out = []
    for _ in range(3):
        out.append(await model.ainvoke(state["messages"]))
    return {"messages": out}


loop = StateGraph(MessagesState)
loop.add_node("three_calls", three_calls)
loop.add_edge(START, "three_calls")
loop = loop.compile()
"""

RUN_COST = 0.005  # 1,000 input tokens at $1/M + 1,000 output tokens at $4/M
LIMIT = 0.025  # five runs


def write_project(root: Path, openai_url: str, **budget: Any) -> Path:
    (root / "agent.py").write_text(AGENT)
    config = {
        "graphs": {"answer": "./agent.py:graph", "loop": "./agent.py:loop"},
        "models": {"default": {"model": "openai:gpt-budget", "base_url": openai_url}},
        "policies": {
            "prices": {"gpt-budget": {"input": 1.0, "output": 4.0}},
            "budget": {"daily_usd": LIMIT, "reserve_usd": RUN_COST, **budget},
        },
    }
    path = root / "dockyard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def tomorrow() -> str:
    day = datetime.now(UTC).date() + timedelta(days=1)
    return f"{day.isoformat()}T00:00:00Z"


def script(mock: MockOpenAIServer, runs: int) -> None:
    for _ in range(runs):
        mock.enqueue_text("ok", input_tokens=1000, output_tokens=1000)


async def fire(urls: list[str], n: int, api_key: str | None = None) -> list[Any]:
    clients = [get_client(url=url, timeout=60, api_key=api_key) for url in urls]
    try:
        return await asyncio.gather(
            *(
                clients[i % len(clients)].runs.wait(None, "answer", input=user(f"run {i}"))
                for i in range(n)
            ),
            return_exceptions=True,
        )
    finally:
        for c in clients:
            await c.aclose()


def check_refusal(exc: Any, *, spent: float, held: float, scope: str = "anonymous") -> None:
    # langgraph-sdk raises httpx's error for a status it has no class of its own for.
    assert isinstance(exc, httpx.HTTPStatusError), repr(exc)
    assert exc.response.status_code == 402
    body = exc.response.json()
    assert body["code"] == "budget_exceeded"
    budget = body["budget"]
    assert budget["period"] == "daily" and budget["scope"] == scope
    assert budget["limit_usd"] == LIMIT
    assert budget["spent_usd"] == pytest.approx(spent)
    assert budget["held_usd"] == pytest.approx(held)
    assert budget["resets_at"] == tomorrow()
    # The message names the budget, its limit, the spend and the reset; so does the error.
    assert "the daily budget of callers without an API key is used up" in body["detail"]
    assert "$0.025 limit" in body["detail"] and f"resets at {tomorrow()}" in body["detail"]


async def test_twenty_concurrent_runs_at_a_budget_of_five(
    tmp_path: Path, mock_openai: MockOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[ThresholdEvent] = []
    unsubscribe = on_threshold(events.append)
    caplog.set_level(logging.WARNING, "dockyard.budget")
    script(mock_openai, 20)
    server = LiveServer(tmp_path / "data", config=write_project(tmp_path, mock_openai.base_url))
    server.start()
    try:
        results = await fire([server.url], 20)
        done = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if not isinstance(r, dict)]
        # Each hold is exactly a run's cost, and a hold stops counting only when its
        # run's cost is in the ledger: whatever the interleaving, exactly five fit.
        assert (len(done), len(refused)) == (5, 15), refused[:1]
        assert all(r["messages"][-1]["content"] == "ok" for r in done)
        for exc in refused:
            body = exc.response.json()["budget"]
            # Refused while the five ran (held) or after they ended (spent): 5 either way.
            assert body["spent_usd"] + body["held_usd"] == pytest.approx(LIMIT)
            check_refusal(exc, spent=body["spent_usd"], held=body["held_usd"])
        assert len([r for r in mock_openai.requests if r.method == "POST"]) == 5

        # Once the five have settled: all of it spent, nothing held.
        await eventually(lambda: len(events) == 2)
        (late,) = await fire([server.url], 1)
        check_refusal(late, spent=LIMIT, held=0.0)

        # budget.threshold: 0.8 after the fourth run, 0.95 after the fifth, once each.
        assert [(e.threshold, e.budget, e.scope) for e in events] == [
            (0.8, "daily", "anonymous"),
            (0.95, "daily", "anonymous"),
        ]
        # Settles may come together: the spend each saw, not necessarily one run apart.
        assert 0.02 <= events[0].spent_usd <= events[1].spent_usd == pytest.approx(LIMIT)
        assert events[0].limit_usd == LIMIT and events[0].resets_at.isoformat().startswith(
            tomorrow()[:10]
        )
        lines = [r.getMessage() for r in caplog.records if "budget.threshold" in r.getMessage()]
        assert len(lines) == 2 and '"threshold": 0.8' in lines[0] and '"limit_usd"' in lines[0]
    finally:
        unsubscribe()
        server.stop()


async def test_a_keys_budget_and_its_tenants(tmp_path: Path, mock_openai: MockOpenAIServer) -> None:
    """Runs made with API keys: each key's daily budget is its own (a key may have a
    smaller one of its own); the tenant's covers all its keys."""
    script(mock_openai, 20)
    project = write_project(tmp_path, mock_openai.base_url, tenant={"daily_usd": 0.015})
    server = LiveServer(tmp_path / "data", config=project, auth={"required": True}).start()
    try:
        k1 = make_key(server, tenant="acme")
        k2 = make_key(server, tenant="acme")
        other = make_key(server, tenant="globex")
        tight = make_key(server, tenant="initech", policies={"budget": {"daily_usd": 0.005}})
        (ok, over) = await fire([server.url], 2, tight)  # its own 0.005: one run of 0.005
        refused_own = over if not isinstance(over, dict) else ok
        assert refused_own.response.json()["budget"]["scope"] == "key"
        assert refused_own.response.json()["budget"]["limit_usd"] == 0.005
        first = await fire([server.url], 2, k1)
        assert all(isinstance(r, dict) for r in first)
        (third, fourth) = await fire([server.url], 2, k2)
        assert isinstance(third, dict) or isinstance(fourth, dict)
        refused = third if not isinstance(third, dict) else fourth
        body = refused.response.json()["budget"]
        assert (body["scope"], body["holder"], body["limit_usd"]) == ("tenant", "acme", 0.015)
        assert "tenant 'acme'" in refused.response.json()["detail"]
        # Another tenant's key is not touched by acme's spend.
        assert all(isinstance(r, dict) for r in await fire([server.url], 3, other))
    finally:
        server.stop()


async def test_gateway_refuses_in_openais_shape_and_caps_max_tokens(
    tmp_path: Path, mock_openai: MockOpenAIServer
) -> None:
    # No reserve_usd: the gateway holds its estimate (the text and max_tokens, priced).
    project = write_project(
        tmp_path, mock_openai.base_url, reserve_usd=None, max_tokens_per_request=2000
    )
    server = LiveServer(tmp_path / "data", config=project).start()
    oai = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="sk-client", max_retries=0)
    try:
        mock_openai.enqueue_text("ok", input_tokens=1000, output_tokens=1000)
        out = await oai.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}]
        )
        assert out.choices[0].message.content == "ok"
        # No max_tokens asked: the cap was sent.
        (sent,) = [r.body for r in mock_openai.requests if r.method == "POST"]
        assert (sent.get("max_completion_tokens") or sent.get("max_tokens")) == 2000
        with pytest.raises(openai.UnprocessableEntityError) as over:
            await oai.chat.completions.create(
                model="default", messages=[{"role": "user", "content": "hi"}], max_tokens=2001
            )
        assert over.value.code == "max_tokens_exceeded"

        # A streamed call settles when its stream ends.
        mock_openai.enqueue_text("ok", input_tokens=1000, output_tokens=1000)
        stream = await oai.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        assert [c async for c in stream]
        for _ in range(2):
            mock_openai.enqueue_text("ok", input_tokens=1000, output_tokens=1000)
            await oai.chat.completions.create(
                model="default", messages=[{"role": "user", "content": "hi"}], max_tokens=2000
            )
        # 0.02 spent; a call that may write 2,000 tokens would hold 0.008 more (> 0.025).
        with pytest.raises(openai.APIStatusError) as refused:
            await oai.chat.completions.create(
                model="default", messages=[{"role": "user", "content": "hi"}], max_tokens=2000
            )
        e = refused.value
        assert e.status_code == 402
        assert (e.code, e.type) == ("budget_exceeded", "insufficient_quota")
        assert "daily budget of callers without an API key" in e.message
        assert e.response.headers["x-should-retry"] == "false"
        assert len([r for r in mock_openai.requests if r.method == "POST"]) == 4

        # A run asking for more than the cap is refused before it is stored.
        async with httpx.AsyncClient(base_url=server.url) as h:
            r = await h.post(
                "/runs/wait",
                json={
                    "assistant_id": "answer",
                    "input": user("hi"),
                    "config": {"configurable": {"model_params": {"max_tokens": 5000}}},
                },
            )
        assert r.status_code == 422 and r.json()["code"] == "max_tokens_exceeded"
    finally:
        await oai.close()
        server.stop()


async def test_two_api_processes_and_two_workers_on_postgres_and_redis(
    tmp_path: Path, mock_openai: MockOpenAIServer
) -> None:
    script(mock_openai, 20)
    project = write_project(tmp_path, mock_openai.base_url)
    with cluster(tmp_path, apis=2, workers=2, config=project) as c:
        results = await fire([api.url for api in c.apis], 20)
        done = [r for r in results if isinstance(r, dict)]
        assert len(done) == 5, [r for r in results if not isinstance(r, dict)][:1]
        for exc in (r for r in results if not isinstance(r, dict)):
            body = exc.response.json()["budget"]
            assert body["spent_usd"] + body["held_usd"] == pytest.approx(LIMIT)
        assert len([r for r in mock_openai.requests if r.method == "POST"]) == 5

        # The worker settled the five in Redis: all spent, nothing held any more.
        async def settled() -> bool:
            (late,) = await fire([c.apis[1].url], 1)
            body = late.response.json()["budget"]
            return bool(body["held_usd"] == 0 and body["spent_usd"] == pytest.approx(LIMIT))

        assert await eventually(settled, timeout=20)
        # Each threshold once, whichever of the two workers settled which run.
        # The processes' log lines are JSON objects (observability/logs.py).
        lines = [
            event
            for proc in c.workers + c.apis
            for line in proc.log.read_text().splitlines()
            if line.startswith("{")
            and (event := json.loads(line)["event"]).startswith("budget.threshold {")
        ]
        assert sorted(
            json.loads(line.split("budget.threshold ", 1)[1])["threshold"] for line in lines
        ) == [0.8, 0.95], lines


async def test_a_running_run_stops_when_its_budget_is_used_up(
    tmp_path: Path, mock_openai: MockOpenAIServer
) -> None:
    """The observation layer: a run that was admitted (its hold fit) but whose own calls
    use the budget up is stopped before its next model call, 402 recorded on the run."""
    script(mock_openai, 3)
    project = write_project(tmp_path, mock_openai.base_url, daily_usd=0.01)
    server = LiveServer(tmp_path / "data", config=project).start()
    client = get_client(url=server.url, timeout=60)
    try:
        thread = await client.threads.create()
        with pytest.raises(httpx.HTTPStatusError) as stopped:
            await client.runs.wait(thread["thread_id"], "loop", input=user("go"))
        assert stopped.value.response.status_code == 402
        body = stopped.value.response.json()
        assert body["code"] == "budget_exceeded"
        assert "$0.01 spent ($0.01 of it by this run) of its $0.01 limit" in body["detail"]
        assert len([r for r in mock_openai.requests if r.method == "POST"]) == 2
        (run,) = await client.runs.list(thread["thread_id"])
        assert run["status"] == "error"
        assert run["usage"]["cost_usd"] == pytest.approx(0.01)  # the two calls it made
        # Spent up: the next run is refused at admission.
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await client.runs.wait(None, "answer", input=user("again"))
        assert refused.value.response.json()["budget"]["spent_usd"] == pytest.approx(0.01)
    finally:
        await client.aclose()
        server.stop()
