"""GET /assistants/{id}/schemas through langgraph-sdk, for states written every way
LangGraph's tutorials write them. On Python 3.11 pydantic refuses ``typing.TypedDict``;
the schemas must be there all the same, and say what the state holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.conftest import LiveServer

PROJECT = Path(__file__).parent.parent / "fixtures" / "schemas"
MESSAGE_KINDS = {"HumanMessage", "AIMessage", "ToolMessage", "SystemMessage"}


@pytest.fixture(scope="module")
def schemas_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Schemas come from the graphs alone, whatever the storage: SQLite is enough.
    server = LiveServer(tmp_path_factory.mktemp("schemas"), config=PROJECT / "dockyard.yaml")
    yield server.start()
    server.stop()


@pytest.fixture
async def sdk(schemas_server: LiveServer) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=schemas_server.url, timeout=30)
    yield c
    await c.aclose()


def deref(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a local ``$ref`` followed."""
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/$defs/"), ref
    found: dict[str, Any] = schema["$defs"][ref.removeprefix("#/$defs/")]
    return found


def check_tutorial_state(schema: dict[str, Any]) -> None:
    """The tutorial state, as pydantic describes its typing_extensions form."""
    props = schema["properties"]
    assert list(props) == [
        "text",
        "steps",
        "note",
        "count",
        "mode",
        "detail",
        "history",
        "messages",
    ]
    assert schema["type"] == "object"
    # total=True: every key but the NotRequired one; Optional only allows null.
    assert set(schema["required"]) == set(props) - {"note"}
    assert props["text"]["type"] == "string"
    assert props["note"]["type"] == "string"
    # The reducer is how updates merge, not part of the value: a list of strings.
    assert (props["steps"]["type"], props["steps"]["items"]) == ("array", {"type": "string"})
    assert props["count"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert (props["mode"]["type"], props["mode"]["enum"]) == ("string", ["fast", "slow"])
    detail = deref(schema, props["detail"])  # a nested typing.TypedDict
    assert detail["properties"]["source"]["type"] == "string"
    assert detail["properties"]["score"]["type"] == "number"
    assert set(detail["required"]) == {"source", "score"}
    assert detail["description"] == "Where a step came from."
    assert props["history"]["type"] == "array"
    assert deref(schema, props["history"]["items"]) == detail
    messages = props["messages"]
    assert messages["type"] == "array"
    kinds = {deref(schema, m)["title"] for m in messages["items"]["oneOf"]}
    assert kinds >= MESSAGE_KINDS
    human = schema["$defs"]["HumanMessage"]
    assert human["properties"]["type"]["const"] == "human"
    assert "content" in human["required"]


async def test_typing_typeddict_state(sdk: LangGraphClient) -> None:
    s = await sdk.assistants.get_schemas("tutorial")
    assert s["graph_id"] == "tutorial"
    for key in ("input_schema", "output_schema", "state_schema"):
        assert s[key] is not None, key
        check_tutorial_state(s[key])
        assert s[key]["title"] == "State"
    context = s["context_schema"]
    assert context["properties"] == {"user": {"title": "User", "type": "string"}}
    assert context["required"] == ["user"]
    config = s["config_schema"]
    assert deref(config, config["properties"]["configurable"]) == context


async def test_both_typeddicts_answer_alike(sdk: LangGraphClient) -> None:
    """On 3.11 a typing.TypedDict state reads as its typing_extensions twin does."""
    plain = await sdk.assistants.get_schemas("tutorial")
    ext = await sdk.assistants.get_schemas("tutorial_ext")
    check_tutorial_state(ext["state_schema"])
    assert {**plain, "graph_id": None} == {**ext, "graph_id": None}


async def test_distinct_input_and_output_schemas(sdk: LangGraphClient) -> None:
    s = await sdk.assistants.get_schemas("io")
    assert s["input_schema"]["properties"] == {"question": {"title": "Question", "type": "string"}}
    assert s["input_schema"]["required"] == ["question"]
    assert s["output_schema"]["properties"] == {"answer": {"title": "Answer", "type": "string"}}
    assert s["output_schema"]["required"] == ["answer"]
    state = s["state_schema"]
    # Every channel the thread's state holds, the private one a node reads included.
    assert list(state["properties"]) == ["question", "answer", "notes", "scratch"]
    assert state["properties"]["notes"]["items"] == {"type": "string"}
    assert state["properties"]["scratch"]["type"] == "integer"
    assert set(state["required"]) == {"question", "answer", "notes"}


async def test_pydantic_state(sdk: LangGraphClient) -> None:
    s = await sdk.assistants.get_schemas("model")
    for key in ("input_schema", "output_schema", "state_schema"):
        schema = s[key]
        props = schema["properties"]
        assert schema["title"] == "ModelState"
        assert props["text"] == {
            "description": "what the user said",
            "title": "Text",
            "type": "string",
        }
        assert (props["steps"]["items"], props["steps"]["default"]) == ({"type": "string"}, [])
        inner, none = props["inner"]["anyOf"]
        assert deref(schema, inner)["properties"]["label"]["type"] == "string"
        assert none == {"type": "null"}
        assert schema["required"] == ["text"]


async def test_dataclass_state(sdk: LangGraphClient) -> None:
    s = await sdk.assistants.get_schemas("record")
    for key in ("input_schema", "output_schema", "state_schema"):
        props = s[key]["properties"]
        assert list(props) == ["text", "steps", "count"]
        assert props["text"]["type"] == "string"
        assert (props["steps"]["type"], props["steps"]["items"]) == ("array", {"type": "string"})
        assert (props["count"]["type"], props["count"]["default"]) == ("integer", 0)
        assert s[key]["required"] == ["text"]


async def test_a_field_without_a_schema_allows_any_value(sdk: LangGraphClient) -> None:
    s = await sdk.assistants.get_schemas("opaque")
    for key in ("input_schema", "output_schema", "state_schema"):
        props = s[key]["properties"]
        assert props["text"]["type"] == "string"
        assert props["handle"] == {"title": "Handle"}  # no "type": any value


async def test_subgraph_schemas(sdk: LangGraphClient) -> None:
    subs = await sdk.assistants.get_subgraphs("outer")
    assert set(subs) == {"sub"}
    for key in ("input_schema", "output_schema", "state_schema"):
        assert subs["sub"][key]["properties"] == {
            "question": {"title": "Question", "type": "string"}
        }
