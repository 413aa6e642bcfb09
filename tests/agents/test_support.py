"""The sample support agent, served from examples/support, driven through langgraph-sdk."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from dockyard.providers.offline.support import SupportOfflineModel
from dockyard.providers.registry import ModelRegistry, default_model_spec
from dockyard.settings import Settings
from dockyard.testing import ScriptedChatModel
from tests.conftest import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support"
PROVIDER_ENV = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DOCKYARD_MODELS__DEFAULT")


@pytest.fixture(scope="module")
def support_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The server picks the default model when it starts: start it with no provider key
    # around, so the test runs offline whatever the machine has set.
    with pytest.MonkeyPatch.context() as mp:
        for name in (*PROVIDER_ENV, "DOCKYARD_CONFIG_FILE"):
            mp.delenv(name, raising=False)
        mp.delitem(sys.modules, "dockyard.agents.support", raising=False)
        server = LiveServer(
            tmp_path_factory.mktemp("support-data"), config=EXAMPLE / "dockyard.yaml"
        ).start()
    yield server
    server.stop()


@pytest.fixture
async def sdk(support_server: LiveServer) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=support_server.url, timeout=30)
    yield client
    await client.aclose()


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def tool_results(messages: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "tool" and m["name"] == name]


async def ask_refund(sdk: LangGraphClient, text: str) -> tuple[str, dict[str, Any]]:
    """Start a refund run by streaming it; return the thread id and the interrupt."""
    thread_id = (await sdk.threads.create())["thread_id"]
    updates = [
        part.data
        async for part in sdk.runs.stream(
            thread_id, "support", input=user(text), stream_mode="updates"
        )
        if part.event == "updates"
    ]
    interrupts = [u["__interrupt__"] for u in updates if "__interrupt__" in u]
    assert len(interrupts) == 1, updates
    return thread_id, interrupts[0][0]


async def test_order_lookup_calls_the_tool_and_answers(sdk: LangGraphClient) -> None:
    thread_id = (await sdk.threads.create())["thread_id"]
    result = await sdk.runs.wait(thread_id, "support", input=user("where is my order A1001"))
    assert isinstance(result, dict)
    messages = result["messages"]
    calls = [c for m in messages if m["type"] == "ai" for c in m.get("tool_calls") or []]
    assert [(c["name"], c["args"]) for c in calls] == [("lookup_order", {"order_id": "A1001"})]
    record = json.loads(tool_results(messages, "lookup_order")[0]["content"])
    assert record["status"] == "shipped"
    answer = messages[-1]["content"]
    assert "A1001" in answer and "shipped" in answer and record["tracking_number"] in answer
    assert (await sdk.threads.get(thread_id))["status"] == "idle"


async def test_faq_question(sdk: LangGraphClient) -> None:
    result = await sdk.runs.wait(None, "support", input=user("How long does shipping take?"))
    assert isinstance(result, dict)
    assert tool_results(result["messages"], "search_faq")
    assert "business days" in result["messages"][-1]["content"]


async def test_refund_waits_for_approval_then_is_issued(sdk: LangGraphClient) -> None:
    thread_id, interrupt = await ask_refund(sdk, "refund order A1001 for 20 because damaged")
    request = interrupt["value"]
    action = request["action_requests"][0]
    assert action["name"] == "issue_refund"
    assert action["args"] == {"order_id": "A1001", "amount": 20.0, "reason": "damaged"}
    assert "20.00" in action["description"] and "A1001" in action["description"]
    assert request["review_configs"] == [
        {"action_name": "issue_refund", "allowed_decisions": ["approve", "edit", "reject"]}
    ]
    thread = await sdk.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    # Nothing was refunded while the run waits.
    state = await sdk.threads.get_state(thread_id)
    assert not tool_results(state["values"]["messages"], "issue_refund")

    result = await sdk.runs.wait(
        thread_id, "support", command={"resume": {"decisions": [{"type": "approve"}]}}
    )
    assert isinstance(result, dict)
    refund = json.loads(tool_results(result["messages"], "issue_refund")[0]["content"])
    assert refund["status"] == "issued" and refund["amount"] == 20.0
    answer = result["messages"][-1]["content"]
    assert "has been issued" in answer and refund["refund_id"] in answer
    assert (await sdk.threads.get(thread_id))["status"] == "idle"


async def test_rejected_refund_is_not_issued(sdk: LangGraphClient) -> None:
    thread_id, _ = await ask_refund(sdk, "refund order A1002, 12.50, arrived broken")
    result = await sdk.runs.wait(
        thread_id,
        "support",
        command={"resume": {"decisions": [{"type": "reject", "message": "needs a photo"}]}},
    )
    assert isinstance(result, dict)
    [rejection] = tool_results(result["messages"], "issue_refund")
    assert rejection["status"] == "error" and "rejected" in rejection["content"]
    answer = result["messages"][-1]["content"]
    assert "was not issued" in answer and "needs a photo" in answer
    assert "has been issued" not in answer
    assert (await sdk.threads.get(thread_id))["status"] == "idle"


async def test_edited_refund_runs_with_the_reviewers_amount(sdk: LangGraphClient) -> None:
    thread_id, interrupt = await ask_refund(sdk, "please refund A1002 $30 since it was late")
    assert interrupt["value"]["action_requests"][0]["args"]["amount"] == 30.0
    edited = {"name": "issue_refund", "args": {"order_id": "A1002", "amount": 5, "reason": "late"}}
    result = await sdk.runs.wait(
        thread_id,
        "support",
        command={"resume": {"decisions": [{"type": "edit", "edited_action": edited}]}},
    )
    assert isinstance(result, dict)
    assert "5.00 USD" in result["messages"][-1]["content"]


async def test_example_client_script(
    support_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("support_client", EXAMPLE / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert await module.main(support_server.url) == 0
    out = capsys.readouterr().out
    assert "approval needed: issue_refund" in out
    assert "has been issued" in out
    assert "store: support/customers/c-42/preferences" in out


# -- which model the graph is built with ---------------------------------------------


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_model_choice_order(no_keys: pytest.MonkeyPatch) -> None:
    from dockyard.agents.support import make_model

    assert isinstance(make_model(Settings()), SupportOfflineModel)
    no_keys.setenv("OPENAI_API_KEY", "sk-test")
    assert isinstance(make_model(Settings()), ChatOpenAI)
    no_keys.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    model = make_model(Settings())
    assert isinstance(model, ChatAnthropic) and model.model == "claude-sonnet-4-6"
    configured = Settings(models={"default": "fake:pinned"})
    model = make_model(configured)
    assert isinstance(model, ScriptedChatModel) and model.model_name == "pinned"


def test_blank_key_counts_as_missing(no_keys: pytest.MonkeyPatch) -> None:
    no_keys.setenv("ANTHROPIC_API_KEY", "  ")
    assert default_model_spec().model == "offline:support"
    assert isinstance(ModelRegistry().get("default"), SupportOfflineModel)


def test_configured_model_settings_reach_the_client(
    no_keys: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dockyard.agents.support import make_model

    (tmp_path / "key").write_text("sk-from-file\n")
    settings = Settings(
        project_dir=tmp_path,
        models={
            "default": {
                "model": "openai:qwen",
                "base_url": "http://127.0.0.1:9/v1",
                "api_key_file": "key",
                "temperature": 0.1,
            }
        },
    )
    model = make_model(settings)
    assert isinstance(model, ChatOpenAI)
    assert model.model_name == "qwen" and model.temperature == 0.1
    assert model.openai_api_key is not None
    assert model.openai_api_key.get_secret_value() == "sk-from-file"
