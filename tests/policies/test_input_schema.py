"""Run input against a graph's input schema: the JSON Schema pydantic writes, the problem
named by field, messages left to LangGraph, unknown top-level keys refused."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from dockyard.policies.input_schema import Schema, input_problem
from dockyard.runtime.graph_schemas import graph_schemas

SCHEMA_GRAPHS = Path(__file__).resolve().parent.parent / "fixtures" / "schemas" / "graphs.py"


def _load_graphs() -> Any:
    spec = importlib.util.spec_from_file_location("guard_schema_graphs", SCHEMA_GRAPHS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tutorial() -> Schema:
    """A state as LangGraph's tutorials write it (typing.TypedDict, Literal, Optional,
    nested records, a reducer and messages)."""
    schema = graph_schemas(_load_graphs().tutorial)["input_schema"]
    assert schema is not None
    return schema


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"text": "hi", "mode": "fast", "count": None, "note": "n"},
        {"count": 3, "steps": ["a"], "detail": {"source": "s", "score": 1}},
        {"history": [{"source": "a", "score": 0.5}]},
        # Messages in the shapes add_messages takes, which their schema does not describe.
        {"messages": "hi"},
        {"messages": [["user", "hi"]]},
        {"messages": [{"role": "user", "content": "hi"}, {"type": "ai", "content": "yo"}]},
    ],
)
def test_tutorial_input_passes(tutorial: Schema, value: dict[str, Any]) -> None:
    assert input_problem(value, tutorial) is None


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"text": 1}, "input.text", "expected string, got integer"),
        ({"mode": "medium"}, "input.mode", "must be one of ['fast', 'slow']"),
        ({"count": "3"}, "input.count", "expected integer, got string"),
        ({"count": True}, "input.count", "expected integer, got boolean"),
        ({"detail": {"source": 1, "score": 1}}, "input.detail.source", "expected string"),
        ({"history": [{"source": "a", "score": "x"}]}, "input.history[0].score", "number"),
        ({"steps": "a"}, "input.steps", "expected array, got string"),
        ({"mesages": []}, "input.mesages", "is not a field of the input"),
    ],
)
def test_tutorial_input_problems(
    tutorial: Schema, value: dict[str, Any], field: str, words: str
) -> None:
    problem = input_problem(value, tutorial)
    assert problem is not None
    assert problem[0] == field
    assert words in problem[1]


def test_the_value_sent_is_never_in_the_problem(tutorial: Schema) -> None:
    problem = input_problem({"mode": "secret-value-123"}, tutorial)
    assert problem is not None and "secret-value-123" not in problem[1]


HAND_WRITTEN: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
        "age": {"type": "integer", "minimum": 0, "exclusiveMaximum": 150},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]},
        "kind": {"const": "fixed"},
        "flag": {"enum": [1, "one"]},
        "ref": {"$ref": "#/$defs/Inner"},
        "both": {"allOf": [{"type": "object"}, {"required": ["k"]}]},
        "closed": {"type": "object", "properties": {}, "additionalProperties": False},
        "map": {"type": "object", "additionalProperties": {"type": "integer"}},
        "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["name", "age"],  # at the top level: may be left out, as LangGraph allows
    "$defs": {"Inner": {"type": "object", "properties": {"v": {"type": "number"}}}},
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"name": "abc"}, None),
        ({}, None),
        ({"name": "a"}, ("input.name", "must be at least 2 character(s)")),
        ({"name": "abcdef"}, ("input.name", "must be at most 5 character(s)")),
        ({"name": "AB"}, ("input.name", "must match the pattern '^[a-z]+$'")),
        ({"name": "ab", "age": -1}, ("input.age", "must be at least 0")),
        ({"name": "ab", "age": 150}, ("input.age", "must be less than 150")),
        ({"name": "ab", "age": 3.0}, None),  # JSON does not tell 3 from 3.0
        ({"name": "ab", "age": 3.5}, ("input.age", "expected integer, got number")),
        ({"name": "ab", "tags": []}, ("input.tags", "needs at least 1 item(s)")),
        ({"name": "ab", "tags": ["a", "b", "c"]}, ("input.tags", "takes at most 2 item(s)")),
        ({"name": "ab", "tags": ["a", 2]}, ("input.tags[1]", "expected string, got integer")),
        ({"name": "ab", "pair": ["a", "b"]}, ("input.pair[1]", "expected number, got string")),
        ({"name": "ab", "kind": "other"}, ("input.kind", "must be 'fixed'")),
        ({"name": "ab", "flag": True}, ("input.flag", "must be one of [1, 'one']")),
        ({"name": "ab", "flag": 1}, None),
        ({"name": "ab", "ref": {"v": "x"}}, ("input.ref.v", "expected number, got string")),
        ({"name": "ab", "both": {}}, ("input.both.k", "is required")),
        ({"name": "ab", "closed": {"x": 1}}, ("input.closed.x", "is not a field of the input")),
        ({"name": "ab", "map": {"a": 1, "b": "2"}}, ("input.map.b", "expected integer")),
        ({"name": "ab", "either": 2}, None),
        ({"name": "ab", "either": []}, ("input.either", "matches none of the allowed forms")),
        ({"name": "ab", "extra": 1}, ("input.extra", "is not a field of the input")),
        ("not an object", ("input", "expected object, got string")),
    ],
)
def test_hand_written_schema(value: Any, expected: tuple[str, str] | None) -> None:
    problem = input_problem(value, HAND_WRITTEN)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert problem[0] == expected[0]
        assert expected[1] in problem[1]


def test_a_schema_without_properties_takes_any_keys() -> None:
    assert input_problem({"anything": 1}, {"type": "object"}) is None
    assert input_problem({"x": 1}, {"type": "object", "additionalProperties": True}) is None
    assert input_problem(5, {}) is None


def test_cyclic_refs_end() -> None:
    schema: Schema = {
        "$ref": "#/$defs/Node",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
            }
        },
    }
    assert input_problem({"next": {"next": {"next": None}}}, schema) is None
    problem = input_problem({"next": {"next": 3}}, schema)
    assert problem is not None and problem[0] == "input.next.next"
