"""The deep agent, served from examples/deep-agent, driven through langgraph-sdk.

Offline (no key): the scripted ``offline:deep`` model plays the flow — a plan, the
researcher sub-agent, file writes a human approves, edits or rejects, a memory under
``/memories/`` that another thread reads back, and shell commands that wait for approval
when the project's policy calls them dangerous. With a key the same graph talks to the
provider (the mock Anthropic and OpenAI servers here).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import Config

from dockyard.agents.deep import MEMORY_NAMESPACE
from dockyard.testing import MockAnthropicServer, MockOpenAIServer
from tests.conftest import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deep-agent"
PROVIDER_ENV = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "DOCKYARD_MODELS__DEFAULT")
REPORT = "Write a short report on checkpointing and human approval."
APPROVE = {"resume": {"decisions": [{"type": "approve"}]}}
ADA: Config = {"configurable": {"user_id": "ada"}}  # memories are per user
BOB: Config = {"configurable": {"user_id": "bob"}}


@pytest.fixture(scope="module")
def deep_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The server picks the default model when it starts: start it with no provider key
    # around, so the test runs offline whatever the machine has set.
    with pytest.MonkeyPatch.context() as mp:
        for name in (*PROVIDER_ENV, "DOCKYARD_CONFIG_FILE"):
            mp.delenv(name, raising=False)
        server = LiveServer(
            tmp_path_factory.mktemp("deep-data"), config=EXAMPLE / "dockyard.yaml"
        ).start()
    yield server
    server.stop()


@pytest.fixture
async def sdk(deep_server: LiveServer) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=deep_server.url, timeout=60)
    yield client
    await client.aclose()


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def tool_calls(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (c["name"], c["args"])
        for m in messages
        if m["type"] == "ai"
        for c in m.get("tool_calls") or []
    ]


async def run_until_pause(
    sdk: LangGraphClient, thread_id: str, **kwargs: Any
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Stream a run (with its sub-agents); return the interrupts it stopped at, and each
    (namespace, tool name) it called, sub-agents' included (a resumed call that was
    asked for before the pause is not counted again)."""
    interrupts: list[dict[str, Any]] = []
    calls: list[tuple[str, str]] = []
    before = (await sdk.threads.get_state(thread_id))["values"]
    seen = {m["id"] for m in (before or {}).get("messages", [])}
    async for part in sdk.runs.stream(
        thread_id, "deep", stream_mode="updates", stream_subgraphs=True, **kwargs
    ):
        assert part.event != "error", part.data
        if not part.event.startswith("updates"):
            continue
        for node, update in part.data.items():
            if node == "__interrupt__":
                interrupts = update
                continue
            for message in (update or {}).get("messages", []) if update else []:
                if message.get("id") in seen:
                    continue
                seen.add(message["id"])
                calls += [(part.event, c["name"]) for c in message.get("tool_calls") or []]
    return interrupts, calls


def action_of(interrupts: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(interrupts) == 1, interrupts
    actions = interrupts[0]["value"]["action_requests"]
    assert len(actions) == 1, actions
    action: dict[str, Any] = actions[0]
    return action


async def memories(sdk: LangGraphClient, user: str = "shared") -> dict[str, str]:
    found = await sdk.store.search_items((MEMORY_NAMESPACE, user), limit=50)
    return {item["key"]: item["value"]["content"] for item in found["items"]}


async def test_plan_subagent_approved_writes_and_a_memory_another_thread_reads(
    sdk: LangGraphClient,
) -> None:
    thread_id = (await sdk.threads.create())["thread_id"]
    interrupts, calls = await run_until_pause(sdk, thread_id, input=user(REPORT), config=ADA)
    # Planned, delegated (the researcher searched inside its own graph), then paused.
    assert [name for _, name in calls] == ["write_todos", "task", "search_guide", "write_file"]
    assert calls[2][0].startswith("updates|tools:")  # in the sub-agent's namespace
    action = action_of(interrupts)
    assert action["name"] == "write_file" and action["args"]["file_path"] == "/report.md"
    words = len(action["args"]["content"].split())
    assert action["description"] == (
        f"Write /report.md (6 lines, {words} words) in this conversation's files?"
    )
    assert "PostgreSQL checkpointer" in action["args"]["content"]
    review = interrupts[0]["value"]["review_configs"]
    assert review == [
        {"action_name": "write_file", "allowed_decisions": ["approve", "edit", "reject"]}
    ]
    assert (await sdk.threads.get(thread_id))["status"] == "interrupted"
    state = (await sdk.threads.get_state(thread_id))["values"]
    assert "/report.md" not in state.get("files", {})  # nothing written while it waits
    assert [t["status"] for t in state["todos"]] == ["in_progress", "pending", "pending", "pending"]

    # Approved: written, measured with the shell (no approval: not dangerous), then the
    # memory write waits in turn.
    interrupts, calls = await run_until_pause(sdk, thread_id, command=APPROVE, config=ADA)
    assert [name for _, name in calls] == ["execute", "write_file"]
    action = action_of(interrupts)
    memory_path = "/memories/checkpointing-human-approval.md"
    assert action["name"] == "write_file" and action["args"]["file_path"] == memory_path
    assert "to long-term memory, kept across conversations?" in action["description"]
    assert "/checkpointing-human-approval.md" not in await memories(sdk, "ada")

    interrupts, calls = await run_until_pause(sdk, thread_id, command=APPROVE, config=ADA)
    assert interrupts == [] and [name for _, name in calls] == ["write_todos"]
    state = (await sdk.threads.get_state(thread_id))["values"]
    assert [t["status"] for t in state["todos"]] == ["completed"] * 4
    report = state["files"]["/report.md"]["content"]
    assert report.startswith("# Checkpointing and human approval")
    # Scratch stays in the thread; the memory went to the store, not the thread's state.
    assert memory_path not in state["files"]
    stored = (await memories(sdk, "ada"))["/checkpointing-human-approval.md"]
    assert "PostgreSQL checkpointer" in stored
    words = len(report.split())
    answer = state["messages"][-1]["content"]
    assert f"/report.md ({words} words)" in answer and memory_path in answer

    # The instructions came from the prompt registry (examples/deep-agent/prompts/).
    for run in await sdk.runs.list(thread_id):
        used = run["usage"]["prompts"]
        assert {"name": "deep-agent", "version": 1, "label": "production"} in used, run

    # Another thread of the same user: no scratch files, but the memory is there.
    recall = user("What do you remember about checkpointing?")
    other = (await sdk.threads.create())["thread_id"]
    result = await sdk.runs.wait(other, "deep", input=recall, config=ADA)
    assert isinstance(result, dict)
    assert [n for n, _ in tool_calls(result["messages"])] == ["ls", "read_file"]
    assert stored.strip() in result["messages"][-1]["content"]
    assert "/report.md" not in result.get("files", {})
    # Another user's memories are their own.
    result = await sdk.runs.wait(None, "deep", input=recall, config=BOB)
    assert isinstance(result, dict)
    assert result["messages"][-1]["content"] == "I have nothing under /memories/ yet."


async def test_edited_and_rejected_writes_and_an_edit_file_that_waits(
    sdk: LangGraphClient,
) -> None:
    thread_id = (await sdk.threads.create())["thread_id"]
    request = "Write a report on sandbox execute"
    interrupts, _ = await run_until_pause(sdk, thread_id, input=user(request))
    assert action_of(interrupts)["args"]["file_path"] == "/report.md"
    edited = {"file_path": "/final-report.md", "content": "# Sandboxes\n\nReviewed by a human.\n"}
    edit = {"type": "edit", "edited_action": {"name": "write_file", "args": edited}}
    interrupts, calls = await run_until_pause(
        sdk, thread_id, command={"resume": {"decisions": [edit]}}
    )
    files = (await sdk.threads.get_state(thread_id))["values"]["files"]
    assert set(files) == {"/final-report.md"}
    assert files["/final-report.md"]["content"] == edited["content"]
    assert [name for _, name in calls] == ["execute", "write_file"]  # wc on the edited path

    reject = {"type": "reject", "message": "no memories about sandboxes"}
    interrupts, calls = await run_until_pause(
        sdk, thread_id, command={"resume": {"decisions": [reject]}}
    )
    assert interrupts == []
    state = (await sdk.threads.get_state(thread_id))["values"]
    answer = state["messages"][-1]["content"]
    assert "/final-report.md (6 words)" in answer
    assert "not saved to memory" in answer and "no memories about sandboxes" in answer
    assert not any("sandbox" in key for key in await memories(sdk))

    # edit_file waits too.
    ask = 'In /final-report.md replace "Reviewed" with "Approved"'
    interrupts, _ = await run_until_pause(sdk, thread_id, input=user(ask))
    action = action_of(interrupts)
    assert action["name"] == "edit_file"
    assert action["description"] == "Edit /final-report.md: replace 'Reviewed' with 'Approved'?"
    assert action["args"]["old_string"] == "Reviewed" and action["args"]["new_string"] == "Approved"
    assert files == (await sdk.threads.get_state(thread_id))["values"]["files"]  # not yet
    await run_until_pause(sdk, thread_id, command=APPROVE)
    files = (await sdk.threads.get_state(thread_id))["values"]["files"]
    assert files["/final-report.md"]["content"] == "# Sandboxes\n\nApproved by a human.\n"


async def test_a_rejected_report_ends_the_task(sdk: LangGraphClient) -> None:
    thread_id = (await sdk.threads.create())["thread_id"]
    interrupts, _ = await run_until_pause(sdk, thread_id, input=user("Write a report on caching"))
    assert action_of(interrupts)["name"] == "write_file"
    reject = {"type": "reject", "message": "not now"}
    interrupts, calls = await run_until_pause(
        sdk, thread_id, command={"resume": {"decisions": [reject]}}
    )
    assert interrupts == [] and calls == []
    state = (await sdk.threads.get_state(thread_id))["values"]
    assert state.get("files", {}) == {}
    tool = [m for m in state["messages"] if m["type"] == "tool"][-1]
    assert tool["name"] == "write_file" and tool["status"] == "error"
    assert "rejected" in state["messages"][-1]["content"]
    assert "not now" in state["messages"][-1]["content"]
    assert (await sdk.threads.get(thread_id))["status"] == "idle"


async def test_execute_waits_only_for_commands_the_policy_calls_dangerous(
    sdk: LangGraphClient,
) -> None:
    thread_id = (await sdk.threads.create())["thread_id"]
    result = await sdk.runs.wait(thread_id, "deep", input=user("run `echo hello from the shell`"))
    assert isinstance(result, dict)
    assert "hello from the shell" in result["messages"][-1]["content"]
    assert (await sdk.threads.get(thread_id))["status"] == "idle"

    # The project's policies.approval.execute (examples/deep-agent/dockyard.yaml) decides.
    interrupts, _ = await run_until_pause(sdk, thread_id, input=user("run `rm -f /notes.md`"))
    action = action_of(interrupts)
    assert action["args"] == {"command": "rm -f /notes.md"}
    assert action["description"] == "A command that deletes or moves files; run it?"
    reject = {"type": "reject", "message": "keep the notes"}
    await run_until_pause(sdk, thread_id, command={"resume": {"decisions": [reject]}})
    state = (await sdk.threads.get_state(thread_id))["values"]
    assert "keep the notes" in state["messages"][-1]["content"]

    # Host commands do not exist in this shell; it says what it runs instead.
    result = await sdk.runs.wait(thread_id, "deep", input=user("run `python -V`"))
    assert isinstance(result, dict)
    assert "command not found" in result["messages"][-1]["content"]


def tool_names(request: Any) -> set[str]:
    """The tools a model request offered, in Anthropic's or OpenAI's format."""
    return {t.get("name") or t["function"]["name"] for t in request.body["tools"]}


@pytest.mark.parametrize(
    ("server_cls", "spec", "key"),
    [
        (MockAnthropicServer, "anthropic:claude-sonnet-4-6", "ANTHROPIC_API_KEY"),
        (MockOpenAIServer, "openai:gpt-4o-mini", "OPENAI_API_KEY"),
    ],
)
async def test_with_a_key_the_same_graph_runs_on_the_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_cls: Any, spec: str, key: str
) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(key, "test-key")
    with server_cls() as mock:
        mock.enqueue_tool_call("task", {"subagent_type": "researcher", "description": "cache"})
        mock.enqueue_tool_call("search_guide", {"query": "cache"})  # the researcher
        mock.enqueue_text("- Cache answers in Redis.")
        mock.enqueue_tool_call("write_file", {"file_path": "/report.md", "content": "# Cache"})
        mock.enqueue_text("The report is at /report.md.")
        model = {"model": spec, "base_url": mock.base_url, "max_retries": 0}
        server = LiveServer(
            tmp_path / "data", config=EXAMPLE / "dockyard.yaml", models={"default": model}
        ).start()
        try:
            client = get_client(url=server.url)
            thread_id = (await client.threads.create())["thread_id"]
            interrupts, calls = await run_until_pause(client, thread_id, input=user(REPORT))
            assert [n for _, n in calls] == ["task", "search_guide", "write_file"]
            assert action_of(interrupts)["name"] == "write_file"
            interrupts, _ = await run_until_pause(client, thread_id, command=APPROVE)
            state = (await client.threads.get_state(thread_id))["values"]
            await client.aclose()
        finally:
            server.stop()
    assert interrupts == [] and state["files"]["/report.md"]["content"] == "# Cache"
    assert state["messages"][-1]["content"] == "The report is at /report.md."
    calls_made = [r for r in mock.requests if r.path.endswith(("/messages", "/completions"))]
    assert len(calls_made) == 5 and {r.model for r in calls_made} == {spec.split(":", 1)[1]}
    assert {r.api_key for r in calls_made} == {"test-key"}
    assert {"write_todos", "task", "write_file", "edit_file", "execute"} <= tool_names(
        calls_made[0]
    )
    assert "search_guide" in tool_names(calls_made[1])
    # The instructions the provider got: the registry's (examples/deep-agent/prompts/).
    assert "deep research-and-writing agent" in json.dumps(calls_made[0].body)


async def test_example_client_script(
    deep_server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("deep_client", EXAMPLE / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert await module.main(deep_server.url) == 0
    out = capsys.readouterr().out
    assert "approval asked: write_file /report.md" in out
    assert "approval asked: write_file /memories/checkpointing-human-approval.md" in out
    assert "[calls search_guide]  (sub-agent)" in out
    assert "[completed] Save the key points under /memories/" in out
    assert "From /memories/checkpointing-human-approval.md:" in out
