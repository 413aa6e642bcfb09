"""Human approval from ``policies.approval`` (providers/approval.py): the rule's conditions
as units, and a live server where langgraph-sdk approves, edits and rejects a gated call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents.middleware.types import ToolCallRequest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from tests.conftest import FIXTURE_PROJECT, LiveServer

from dockyard.errors import ConfigError
from dockyard.providers.approval import interrupt_on
from dockyard.settings import ApprovalConfig, load_settings

CONFIG = FIXTURE_PROJECT / "approval.yaml"
DESTRUCTIVE = "rm |drop |delete |truncate "


def request(args: dict[str, Any]) -> ToolCallRequest:
    call = {"name": "run_shell", "args": args, "id": "c1", "type": "tool_call"}
    return ToolCallRequest(tool_call=call, tool=None, state={}, runtime=None)  # type: ignore[arg-type]


def test_a_rule_gates_only_the_calls_its_conditions_match() -> None:
    rules = ApprovalConfig.model_validate(
        {"tools": {"run_shell": {"when": {"command": DESTRUCTIVE}}, "send": {}}}
    )
    built = interrupt_on(rules)
    assert set(built) == {"run_shell", "send"}
    assert built["run_shell"]["allowed_decisions"] == ["approve", "edit", "reject"]
    when = built["run_shell"]["when"]
    assert when(request({"command": "rm -rf /tmp/x"}))
    assert when(request({"command": "psql -c 'drop table users'"}))
    assert not when(request({"command": "ls -la"}))
    assert not when(request({"command": "rmdir x"}))  # "rm " needs the space
    assert not when(request({}))  # the argument is missing: nothing to match
    assert "when" not in built["send"]  # no conditions: every call waits
    assert interrupt_on(None) == {}


def test_non_string_arguments_are_matched_as_json() -> None:
    rules = ApprovalConfig.model_validate({"tools": {"pay": {"when": {"amount": r"^\d{4,}"}}}})
    when = interrupt_on(rules)["pay"]["when"]
    assert when(request({"amount": 2500}))
    assert not when(request({"amount": 25}))


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"tools": {"x": {"when": {"cmd": "rm ("}}}}, "is not a regular expression"),
        ({"tools": {}}, "policies.approval.tools"),
        ({"tools": {"x": {"decisions": ["maybe"]}}}, "policies.approval.tools.x.decisions"),
        ({"tools": {"x": {"wen": {}}}}, "wen"),
    ],
)
def test_a_wrong_rule_stops_start_up(tmp_path: Path, block: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, project_dir=tmp_path, policies={"approval": block})
    assert message in str(err.value)


# -- through a live server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("approval"), config=CONFIG).start()
    yield live
    live.stop()


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=server.url)
    yield c
    await c.aclose()


async def ask(client: LangGraphClient, command: str) -> tuple[str, dict[str, Any]]:
    thread = await client.threads.create()
    state = await client.runs.wait(
        thread["thread_id"],
        "shell_agent",
        input={"messages": [{"role": "user", "content": command}]},
    )
    return thread["thread_id"], state  # type: ignore[return-value]


def last_text(state: dict[str, Any]) -> str:
    return str(state["messages"][-1]["content"])


async def test_a_safe_command_runs_without_waiting(client: LangGraphClient) -> None:
    tid, state = await ask(client, "ls -la")
    assert last_text(state) == "done: ran 'ls -la'"
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_a_destructive_command_waits_for_approval(client: LangGraphClient) -> None:
    tid, _ = await ask(client, "rm -rf /srv/data")
    thread = await client.threads.get(tid)
    assert thread["status"] == "interrupted"
    (request,) = [i for items in thread["interrupts"].values() for i in items]
    (action,) = request["value"]["action_requests"]
    assert action["name"] == "run_shell" and action["args"] == {"command": "rm -rf /srv/data"}
    assert action["description"] == "Destructive shell commands need a human"
    state = await client.runs.wait(
        tid, "shell_agent", command={"resume": {"decisions": [{"type": "approve"}]}}
    )
    assert last_text(state) == "done: ran 'rm -rf /srv/data'"


async def test_a_reviewer_can_edit_or_reject(client: LangGraphClient) -> None:
    tid, _ = await ask(client, "rm -rf /")
    edited = {"name": "run_shell", "args": {"command": "rm -rf /tmp/scratch"}}
    state = await client.runs.wait(
        tid,
        "shell_agent",
        command={"resume": {"decisions": [{"type": "edit", "edited_action": edited}]}},
    )
    # The edited call ran (LangChain tells the model a reviewer replaced its call).
    assert last_text(state).endswith("ran 'rm -rf /tmp/scratch'")
    assert "ran 'rm -rf /'" not in last_text(state)

    tid, _ = await ask(client, "truncate -s 0 /var/log/app.log")
    state = await client.runs.wait(
        tid,
        "shell_agent",
        command={"resume": {"decisions": [{"type": "reject", "message": "not today"}]}},
    )
    assert "ran" not in last_text(state)  # the tool never executed
    assert "not today" in last_text(state)


async def test_without_the_policy_nothing_waits(tmp_path: Path) -> None:
    live = LiveServer(tmp_path, config=CONFIG, policies={"approval": None}).start()
    try:
        c = get_client(url=live.url)
        _, state = await ask(c, "rm -rf /srv/data")
        assert last_text(state) == "done: ran 'rm -rf /srv/data'"
        await c.aclose()
    finally:
        live.stop()
