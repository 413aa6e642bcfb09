"""Run input checked against the graph's input JSON schema (the one ``GET
/assistants/{id}/schemas`` answers), so a wrong field is a 422 naming it instead of a
graph that fails, or silently drops the key, halfway through a run.

The schemas are pydantic's (through LangGraph's ``get_input_jsonschema``), so this reads
the part of JSON Schema pydantic writes: ``type``, ``enum``, ``const``, ``properties``,
``required``, ``additionalProperties``, ``items``, ``prefixItems``, ``anyOf`` / ``oneOf``
(a value matching any alternative passes), ``allOf``, local ``$ref``s, and the string,
number and array bounds. Other keywords are not checked. Two departures, both from what
LangGraph itself accepts:

* a field holding LangChain messages is not checked: ``add_messages`` takes a message in
  many shapes (a dict with ``role`` or ``type``, a ``[role, text]`` pair, a string, one
  message instead of a list) that the schema of the message classes does not describe;
* at the top level, a key the schema lists as required may be left out (a run's input
  updates some of the state's keys), and a key the schema does not list is refused, since
  LangGraph would drop it without a word (a misspelt ``"mesages"`` would run the graph
  with no messages).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

Schema = dict[str, Any]

_MESSAGE_CLASS = re.compile(r"(?:^|\.)\w*Message(?:Chunk)?$")
_MAX_DEPTH = 64  # $ref chains and nesting; JSON bodies are capped at server.max_json_depth


def input_problem(value: Any, schema: Schema, where: str = "input") -> tuple[str, str] | None:
    """``(field, problem)`` for the first place ``value`` breaks ``schema``, else None.
    The problem names the field and what it expected, never the value sent."""
    return _Checker(schema).problem(value, schema, where, 0, top=True)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, expected: str) -> bool:
    actual = _json_type(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == expected


class _Checker:
    def __init__(self, root: Schema) -> None:
        self.defs: dict[str, Any] = root.get("$defs") or root.get("definitions") or {}
        self._messages: dict[int, bool] = {}

    def _resolve(self, ref: str) -> tuple[str, Any]:
        name = ref.rsplit("/", 1)[-1]
        return name, self.defs.get(name, {})

    def holds_messages(self, schema: Any, depth: int = 0) -> bool:
        """Whether ``schema`` describes LangChain messages (one, a list, a union)."""
        if not isinstance(schema, dict) or depth > 8:
            return False
        key = id(schema)
        if key not in self._messages:
            self._messages[key] = False  # a cycle reads as "no"
            found = False
            if isinstance(schema.get("$ref"), str):
                name, target = self._resolve(schema["$ref"])
                found = bool(_MESSAGE_CLASS.search(name)) or self.holds_messages(target, depth + 1)
            elif schema.get("type") == "array":
                found = self.holds_messages(schema.get("items"), depth + 1)
            else:
                alternatives = schema.get("anyOf") or schema.get("oneOf") or []
                found = any(self.holds_messages(a, depth + 1) for a in alternatives)
            self._messages[key] = found
        return self._messages[key]

    def problem(
        self, value: Any, schema: Any, where: str, depth: int, top: bool = False
    ) -> tuple[str, str] | None:
        if schema is True or not isinstance(schema, dict) or depth > _MAX_DEPTH:
            return None if schema is not False else (where, "is not allowed here")
        if self.holds_messages(schema):
            return None
        if isinstance(schema.get("$ref"), str):
            _, target = self._resolve(schema["$ref"])
            if found := self.problem(value, target, where, depth + 1, top):
                return found
        for alt_key in ("anyOf", "oneOf"):
            alts = schema.get(alt_key)
            if not isinstance(alts, list) or not alts:
                continue
            found = self._alternatives(value, alts, where, depth)
            if found:
                return found
        for part in schema.get("allOf") or ():
            if found := self.problem(value, part, where, depth + 1, top):
                return found
        return self._own(value, schema, where, depth, top)

    def _alternatives(
        self, value: Any, alts: list[Any], where: str, depth: int
    ) -> tuple[str, str] | None:
        problems = [self.problem(value, a, where, depth + 1) for a in alts]
        if any(p is None for p in problems):
            return None
        # Optional[X] is anyOf [X, null]: the problem with X says the most.
        real = [p for a, p in zip(alts, problems, strict=True) if a != {"type": "null"}]
        if len(real) == 1:
            return real[0]
        expected = sorted(
            {str(a.get("type") or a.get("title") or "?") for a in alts if isinstance(a, dict)}
        )
        return where, f"matches none of the allowed forms ({', '.join(expected)})"

    def _own(
        self, value: Any, schema: Schema, where: str, depth: int, top: bool
    ) -> tuple[str, str] | None:
        expected = schema.get("type")
        if expected is not None:
            kinds = expected if isinstance(expected, list) else [expected]
            if not any(_is_type(value, k) for k in kinds):
                return where, f"expected {' or '.join(kinds)}, got {_json_type(value)}"
        if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
            return where, f"must be one of {schema['enum']}"
        if "const" in schema and not _same(value, schema["const"]):
            return where, f"must be {schema['const']!r}"
        if isinstance(value, dict):
            return self._object(value, schema, where, depth, top)
        if isinstance(value, list | tuple):
            return self._array(value, schema, where, depth)
        if isinstance(value, str):
            return _string(value, schema, where)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _number(value, schema, where)
        return None

    def _object(
        self, value: dict[str, Any], schema: Schema, where: str, depth: int, top: bool
    ) -> tuple[str, str] | None:
        props: dict[str, Any] = schema.get("properties") or {}
        # A run's input updates some of the state's keys, not all: LangGraph takes a
        # partial input, so only records inside it must be whole.
        for name in () if top else schema.get("required") or ():
            if name not in value:
                return f"{where}.{name}", "is required"
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            path = f"{where}.{key}"
            if key in props:
                found = self.problem(item, props[key], path, depth + 1)
            elif extra is False or (top and extra is None and props):
                return path, f"is not a field of the input (fields: {', '.join(sorted(props))})"
            else:
                found = self.problem(item, extra, path, depth + 1)
            if found:
                return found
        return None

    def _array(
        self, value: list[Any] | tuple[Any, ...], schema: Schema, where: str, depth: int
    ) -> tuple[str, str] | None:
        if (low := schema.get("minItems")) is not None and len(value) < low:
            return where, f"needs at least {low} item(s)"
        if (high := schema.get("maxItems")) is not None and len(value) > high:
            return where, f"takes at most {high} item(s)"
        prefix: list[Any] = schema.get("prefixItems") or []
        items = schema.get("items")
        for i, item in enumerate(value):
            sub = prefix[i] if i < len(prefix) else items
            if sub is not None and (found := self.problem(item, sub, f"{where}[{i}]", depth + 1)):
                return found
        return None


def _same(a: Any, b: Any) -> bool:
    # JSON's true is not 1: compare types as well as values.
    return _json_type(a) == _json_type(b) and a == b


def _string(value: str, schema: Schema, where: str) -> tuple[str, str] | None:
    if (low := schema.get("minLength")) is not None and len(value) < low:
        return where, f"must be at least {low} character(s)"
    if (high := schema.get("maxLength")) is not None and len(value) > high:
        return where, f"must be at most {high} character(s)"
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            if re.search(pattern, value) is None:
                return where, f"must match the pattern {pattern!r}"
        except re.error:
            return None  # a pattern Python cannot read is not the client's fault
    return None


_BOUNDS: tuple[tuple[str, Callable[[float, float], bool], str], ...] = (
    ("minimum", operator.ge, "at least"),
    ("maximum", operator.le, "at most"),
    ("exclusiveMinimum", operator.gt, "more than"),
    ("exclusiveMaximum", operator.lt, "less than"),
)


def _number(value: float, schema: Schema, where: str) -> tuple[str, str] | None:
    for key, ok, words in _BOUNDS:
        bound = schema.get(key)
        if isinstance(bound, int | float) and not ok(value, bound):
            return where, f"must be {words} {bound}"
    return None


__all__ = ["Schema", "input_problem"]
