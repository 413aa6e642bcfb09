"""The support chat with long-term memory, served from examples/memory-chat: POST /chat and
langgraph-sdk against a live server, offline (no key) with the local MiniLM embeddings."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from dockyard.providers.offline.memory import MEMORY_HEADER
from tests.conftest import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "memory-chat"
PROVIDER_ENV = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DOCKYARD_MODELS__DEFAULT")


def offline_server(data_dir: Path, **overrides: Any) -> LiveServer:
    # The default model is chosen when the server starts: no provider key around, so the
    # agent runs on its offline model whatever the machine has set.
    with pytest.MonkeyPatch.context() as mp:
        for name in (*PROVIDER_ENV, "DOCKYARD_CONFIG_FILE"):
            mp.delenv(name, raising=False)
        mp.delitem(sys.modules, "dockyard.agents.memory_chat", raising=False)
        return LiveServer(data_dir, config=EXAMPLE / "dockyard.yaml", **overrides).start()


@pytest.fixture(scope="module")
def memory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = offline_server(tmp_path_factory.mktemp("memory-chat"))
    yield server
    server.stop()


@pytest.fixture
async def http(memory_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=memory_server.url, timeout=60) as client:
        yield client


@pytest.fixture
async def sdk(memory_server: LiveServer) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=memory_server.url, timeout=60)
    yield client
    await client.aclose()


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def chat(http: httpx.AsyncClient, user_id: str, session_id: str, message: str) -> Any:
    body = {"user_id": user_id, "session_id": session_id, "message": message}
    r = await http.post("/chat", json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def memories(sdk: LangGraphClient, user_id: str) -> dict[str, str]:
    found = await sdk.store.search_items(["memories", user_id], limit=50)
    return {item["key"]: item["value"]["text"] for item in found["items"]}


async def recalled(http: httpx.AsyncClient, thread_id: str) -> list[str]:
    state = (await http.get(f"/threads/{thread_id}/state")).json()
    return list(state["values"].get("recalled_memories") or [])


async def test_facts_are_stored_and_recalled_in_another_session(
    http: httpx.AsyncClient, sdk: LangGraphClient
) -> None:
    mina = new_user()
    first = await chat(
        http, mina, "monday", "Hi! My name is Mina Park, I live in Busan and I prefer email."
    )
    assert first["reply"] == (
        "Thanks, I will remember that your name is Mina Park, you live in Busan and you "
        "prefer to be contacted by email."
    )
    assert await memories(sdk, mina) == {
        "name": "My name is Mina Park.",
        "location": "I live in Busan.",
        "contact": "I prefer to be contacted by email.",
    }

    second = await chat(http, mina, "friday", "What is my name?")
    assert second["thread_id"] != first["thread_id"]  # a new session is a new thread
    assert (
        second["reply"] == "From our earlier conversations I remember that your name is Mina Park."
    )
    # Top-k above the threshold: the name fact, first; the unrelated ones stay out.
    found = await recalled(http, second["thread_id"])
    assert found[0] == "My name is Mina Park."
    assert "I live in Busan." not in found

    third = await chat(http, mina, "friday", "Where do I live?")
    assert third["reply"] == "From our earlier conversations I remember that you live in Busan."


async def test_memories_never_cross_users(http: httpx.AsyncClient, sdk: LangGraphClient) -> None:
    mina, joe = new_user(), new_user()
    await chat(http, mina, "s1", "My name is Mina Park.")
    # Same session name, other user: another thread, and none of Mina's memories.
    answer = await chat(http, joe, "s1", "What is my name?")
    assert answer["reply"].startswith("I don't have anything about you on record yet")
    assert await recalled(http, answer["thread_id"]) == []
    await chat(http, joe, "s1", "My name is Joe Kim.")
    assert await memories(sdk, joe) == {"name": "My name is Joe Kim."}
    assert await memories(sdk, mina) == {"name": "My name is Mina Park."}
    again = await chat(http, mina, "s2", "What is my name?")
    assert again["reply"].endswith("your name is Mina Park.")


async def test_a_newer_fact_replaces_the_older_one(
    http: httpx.AsyncClient, sdk: LangGraphClient
) -> None:
    mina = new_user()
    await chat(http, mina, "s1", "I live in Busan.")
    await chat(http, mina, "s2", "I just moved to Seoul")
    assert await memories(sdk, mina) == {"location": "I live in Seoul."}
    answer = await chat(http, mina, "s3", "Where do I live?")
    assert answer["reply"].endswith("you live in Seoul.")


async def test_recall_keeps_top_k_above_the_threshold(
    http: httpx.AsyncClient, sdk: LangGraphClient
) -> None:
    mina = new_user()
    await chat(
        http,
        mina,
        "s1",
        "My name is Mina Park. I live in Busan. I prefer email. I am allergic to wool. "
        "My shoe size is 42. I am vegetarian.",
    )
    assert len(await memories(sdk, mina)) == 6
    # A question about the user: at most four memories (top_k), the best one first.
    about = await chat(http, mina, "s2", "Which deck shoes would fit me? What is my shoe size?")
    found = await recalled(http, about["thread_id"])
    assert 1 <= len(found) <= 4
    assert found[0] == "My shoe size is 42."
    # A question that is not about the user: nothing reaches the threshold.
    other = await chat(http, mina, "s3", "What's the refund policy?")
    assert await recalled(http, other["thread_id"]) == []


async def test_support_tools_still_answer(http: httpx.AsyncClient) -> None:
    answer = await chat(http, new_user(), "s1", "where is my order A1001")
    assert answer["reply"].startswith("Order A1001 (1 x Harbor rain jacket")


async def test_sdk_run_with_the_user_in_its_context(
    http: httpx.AsyncClient, sdk: LangGraphClient
) -> None:
    """Not through /chat: a langgraph-sdk run names its user in ``context``."""
    mina = new_user()
    await chat(http, mina, "s1", "제 이름은 민아예요. 부산에 살아요.")
    assert await memories(sdk, mina) == {"name": "My name is 민아.", "location": "I live in 부산."}
    thread = await sdk.threads.create()
    out = await sdk.runs.wait(
        thread["thread_id"],
        "memory_chat",
        input={"messages": [{"role": "user", "content": "What is my name?"}]},
        context={"user_id": mina},
    )
    assert isinstance(out, dict)
    assert out["messages"][-1]["content"].endswith("your name is 민아.")
    # Without a user there is no long-term memory at all.
    out = await sdk.runs.wait(
        None,
        "memory_chat",
        input={"messages": [{"role": "user", "content": "My name is Nobody. What is my name?"}]},
    )
    assert isinstance(out, dict)
    assert out["recalled_memories"] == []


async def test_long_sessions_are_summarized_and_facts_survive(tmp_path: Path) -> None:
    """policies.summarization as the example sets it, on a window small enough to reach:
    the thread is cut to a summary and the last messages, the store still has the facts."""
    policies = {
        "summarization": {"trigger_fraction": 0.75, "keep_messages": 4, "context_window": 400}
    }
    server = offline_server(tmp_path, policies=policies)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            mina = new_user()
            first = await chat(http, mina, "long", "My name is Mina Park and I live in Busan.")
            for n in range(4):
                await chat(http, mina, "long", f"where is my order A100{n % 3 + 1}")
            state = (await http.get(f"/threads/{first['thread_id']}/state")).json()
            messages = state["values"]["messages"]
            assert messages[0]["content"].startswith("Here is a summary of the conversation")
            assert "My name is Mina Park and I live in Busan." in messages[0]["content"]
            assert len(messages) <= 1 + 4 + 2  # the summary, the kept ones, the last turn
            answer = await chat(http, mina, "long", "What is my name?")
            assert answer["reply"].endswith("your name is Mina Park.")
    finally:
        server.stop()


def test_memory_header_is_what_the_offline_model_reads() -> None:
    from dockyard.agents.memory_chat import MEMORY_HEADER as used

    assert used == MEMORY_HEADER


async def test_example_client(
    memory_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("memory_chat_client", EXAMPLE / "client.py")
    assert spec is not None and spec.loader is not None
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    assert await client.main(memory_server.url) == 0
    out = capsys.readouterr().out
    assert "-> From our earlier conversations I remember that your name is Mina Park." in out
    assert "location   I live in Busan." in out


async def test_a_failed_extraction_keeps_the_answer(caplog: pytest.LogCaptureFixture) -> None:
    """In process: the answer stands and nothing is stored when extraction fails."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.store.memory import InMemoryStore

    from dockyard.agents.memory_chat import make_graph
    from dockyard.testing import ScriptedChatModel

    def broken(_messages: Any) -> str:
        raise RuntimeError("provider down")

    store = InMemoryStore()
    graph = make_graph(ScriptedChatModel(responses=["Hello Mina!", broken])).copy(
        update={"store": store, "checkpointer": InMemorySaver()}
    )
    config: Any = {"configurable": {"thread_id": "t"}, "metadata": {"user_id": "mina"}}
    out = await graph.ainvoke({"messages": [{"role": "user", "content": "I'm Mina"}]}, config)
    assert out["messages"][-1].content == "Hello Mina!"
    assert await store.asearch(("memories", "mina")) == []
    assert "fact extraction failed (provider down)" in caplog.text
