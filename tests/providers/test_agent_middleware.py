"""``dockyard.middleware()``'s call limits and summarization, configured per process from
``policies.limits`` / ``policies.summarization``, through live servers and langgraph-sdk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from tests.conftest import FIXTURE_PROJECT, LiveServer

from dockyard.errors import ConfigError
from dockyard.settings import load_settings

CONFIG = FIXTURE_PROJECT / "approval.yaml"


@asynccontextmanager
async def served(tmp_path: Path, **policies: Any) -> AsyncIterator[LangGraphClient]:
    live = LiveServer(tmp_path, config=CONFIG, policies=policies).start()
    client = get_client(url=live.url)
    try:
        yield client
    finally:
        await client.aclose()
        live.stop()


async def run(client: LangGraphClient, graph: str, text: str, thread_id: str) -> Any:
    return await client.runs.wait(
        thread_id, graph, input={"messages": [{"role": "user", "content": text}]}
    )


async def test_a_model_call_limit_ends_the_agent_loop(tmp_path: Path) -> None:
    async with served(tmp_path, limits={"model_calls_per_run": 3}) as client:
        thread = await client.threads.create()
        state = await run(client, "looping_agent", "go", thread["thread_id"])
        ticks = [m for m in state["messages"] if m["type"] == "tool"]
        assert len(ticks) == 3  # three model calls, each asking for one tick
        assert "limit" in state["messages"][-1]["content"].lower()
        # Per run: the next run on the thread gets three calls again.
        state = await run(client, "looping_agent", "again", thread["thread_id"])
        assert len([m for m in state["messages"] if m["type"] == "tool"]) == 6


async def test_a_model_call_limit_can_fail_the_run(tmp_path: Path) -> None:
    async with served(tmp_path, limits={"model_calls_per_run": 2, "exit": "error"}) as client:
        thread = await client.threads.create()
        # langgraph-sdk raises the run's __error__ from runs.wait.
        with pytest.raises(Exception, match=r"ModelCallLimitExceededError: .*run limit"):
            await run(client, "looping_agent", "go", thread["thread_id"])
        assert (await client.threads.get(thread["thread_id"]))["status"] == "error"


async def test_a_tool_call_limit_stops_tools_past_it(tmp_path: Path) -> None:
    limits = {"tool_calls_per_run": 2, "model_calls_per_run": 10}
    async with served(tmp_path, limits=limits) as client:
        thread = await client.threads.create()
        state = await run(client, "looping_agent", "go", thread["thread_id"])
        ran = [m for m in state["messages"] if m["type"] == "tool" and m["content"] == "tick"]
        assert len(ran) == 2


async def test_summarization_replaces_old_messages_past_the_window(tmp_path: Path) -> None:
    summarize = {"context_window": 200, "trigger_fraction": 0.5, "keep_messages": 2}
    async with served(tmp_path, summarization=summarize) as client:
        thread = await client.threads.create()
        tid = thread["thread_id"]
        state = await run(client, "echo_agent", "short", tid)
        assert state["messages"][-1]["content"] == "seen 1"  # nothing to summarize yet
        for i in range(3):
            state = await run(client, "echo_agent", f"turn {i} " + "words " * 40, tid)
        first = state["messages"][0]["content"]
        assert first.startswith("Here is a summary of the conversation to date:")
        # The summary, the two kept messages, and this turn's answer.
        assert len(state["messages"]) == 4
        assert state["messages"][-1]["content"] == "seen 3"


async def test_without_the_blocks_nothing_is_limited_or_summarized(tmp_path: Path) -> None:
    async with served(tmp_path) as client:
        thread = await client.threads.create()
        for i in range(3):
            state = await run(
                client, "echo_agent", f"turn {i} " + "words " * 40, thread["thread_id"]
            )
        assert len(state["messages"]) == 6


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"limits": {}}, "policies.limits sets no limit"),
        ({"limits": {"model_calls_per_run": 0}}, "model_calls_per_run"),
        ({"summarization": {"trigger_fraction": 1.5}}, "trigger_fraction"),
        ({"summarization": {"keep": 3}}, "keep"),
    ],
)
def test_a_wrong_block_stops_start_up(tmp_path: Path, block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, project_dir=tmp_path, policies=block)
    assert message in str(err.value)


PERSONAL = "I am hong@example.co.kr, phone 010-1234-5678, RRN 900101-1234568"


async def test_pii_is_masked_before_it_reaches_the_model(tmp_path: Path) -> None:
    async with served(tmp_path, pii={"action": "mask", "apply_to": ["input"]}) as client:
        thread = await client.threads.create()
        state = await run(client, "recording_agent", PERSONAL, thread["thread_id"])
    answer = state["messages"][-1]["content"]
    saw = answer.split(" | ")[0]  # what the model was given
    assert saw.startswith("saw: I am ")
    for value in ("hong@example.co.kr", "010-1234-5678", "900101-1234568"):
        assert value not in saw
    assert "010-9876-5432" in answer  # output is not covered here: left as it was
    # The thread keeps what the user sent; only the model's copy was masked.
    assert state["messages"][0]["content"] == PERSONAL


async def test_pii_in_the_models_answer_is_masked(tmp_path: Path) -> None:
    async with served(tmp_path, pii={"action": "redact", "apply_to": ["output"]}) as client:
        thread = await client.threads.create()
        state = await run(client, "recording_agent", "hello", thread["thread_id"])
    answer = state["messages"][-1]["content"]
    assert answer.startswith("saw: hello | our desk: ")
    assert "010-9876-5432" not in answer


async def test_pii_block_refuses_the_call(tmp_path: Path) -> None:
    async with served(tmp_path, pii={"action": "block"}) as client:
        thread = await client.threads.create()
        with pytest.raises(Exception, match=r"pii_detected|PiiBlockedError"):
            await run(client, "recording_agent", "mail me: a@example.com", thread["thread_id"])
