"""Graph schemas where the live tests do not reach: the functional API, recursive and
awkward states, and graphs nothing can describe (tests/api/test_schemas.py has the rest)."""

import logging
import typing
from typing import Any

import pytest
import typing_extensions
from langgraph.func import entrypoint
from langgraph.graph import END, START, StateGraph

from dockyard.runtime.graph_schemas import graph_schemas


def one_node(state: Any) -> Any:
    builder = StateGraph(state)
    builder.add_node("work", lambda s: {})
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    return builder.compile()


def request_type(typed_dict: Any) -> Any:
    class Request(typed_dict):  # type: ignore[misc, valid-type]
        question: str
        tags: dict[str, list[int]]

    return Request


@pytest.mark.parametrize("typed_dict", [typing.TypedDict, typing_extensions.TypedDict])
def test_functional_api_input(typed_dict: Any) -> None:
    request = request_type(typed_dict)

    @entrypoint()
    def flow(inp: request) -> list[str]:  # type: ignore[valid-type]
        return [inp["question"]]

    s = graph_schemas(flow)
    assert s["input_schema"] == {
        "$defs": {
            "Request": {
                "properties": {
                    "question": {"title": "Question", "type": "string"},
                    "tags": {
                        "additionalProperties": {"items": {"type": "integer"}, "type": "array"},
                        "title": "Tags",
                        "type": "object",
                    },
                },
                "required": ["question", "tags"],
                "title": "Request",
                "type": "object",
            }
        },
        "$ref": "#/$defs/Request",
        "title": "LangGraphInput",
    }
    assert s["output_schema"] == {
        "items": {"type": "string"},
        "title": "LangGraphOutput",
        "type": "array",
    }


def test_typeddicts_inside_containers() -> None:
    class Leaf(typing.TypedDict):
        value: int

    class State(typing.TypedDict, total=False):
        by_name: dict[str, Leaf]
        pair: tuple[Leaf, str]
        either: Leaf | str
        described: typing.Annotated[Leaf, "a note"]

    s = graph_schemas(one_node(State))["state_schema"]
    assert s is not None
    leaf = {"$ref": "#/$defs/Leaf"}
    props = s["properties"]
    assert props["by_name"]["additionalProperties"] == leaf
    assert props["pair"]["prefixItems"] == [leaf, {"type": "string"}]
    assert props["either"]["anyOf"] == [leaf, {"type": "string"}]
    assert props["described"] == leaf
    assert "required" not in s  # total=False
    assert s["$defs"]["Leaf"]["properties"] == {"value": {"title": "Value", "type": "integer"}}


class Tree(typing.TypedDict):
    label: str
    children: list["Tree"]


def test_a_recursive_typing_typeddict_is_cut_at_the_loop() -> None:
    s = graph_schemas(one_node(Tree))["state_schema"]
    assert s is not None
    assert s["properties"]["label"]["type"] == "string"
    assert s["properties"]["children"] == {"items": {}, "title": "Children", "type": "array"}


class Handle:
    pass


def test_awkward_keys_with_a_field_nothing_describes() -> None:
    # Keys a pydantic model could not have as fields, in the field-by-field path.
    State = typing.TypedDict(
        "State", {"model_config": str, "schema": int, "not an identifier": Handle}
    )
    s = graph_schemas(one_node(State))
    for key in ("input_schema", "output_schema", "state_schema"):
        schema = s[key]
        assert schema is not None
        assert schema["properties"]["model_config"]["type"] == "string"
        assert schema["properties"]["schema"]["type"] == "integer"
        assert "type" not in schema["properties"]["not an identifier"]
        assert set(schema["required"]) == {"model_config", "schema", "not an identifier"}


class Broken:
    """A graph whose every schema method raises."""

    name = "broken"

    def get_name(self, suffix: str = "") -> str:
        return f"Broken{suffix}"

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("get_"):

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError(f"{attr} exploded")

            return fail
        raise AttributeError(attr)


def test_nothing_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="dockyard.schemas"):
        s = graph_schemas(Broken())
    assert s == dict.fromkeys(
        ("input_schema", "output_schema", "state_schema", "config_schema", "context_schema")
    )
    assert "get_input_jsonschema exploded" in caplog.text
    assert all(r.levelno == logging.DEBUG for r in caplog.records)


def test_made_once_and_handed_out_as_copies() -> None:
    graph = one_node(Tree)
    first = graph_schemas(graph)
    first["state_schema"] = None
    assert graph_schemas(graph)["state_schema"] is not None
