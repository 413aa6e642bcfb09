"""No request body takes a field it does not know: every one the app registers, derived from
its routes, so that a route added later is covered without touching this file.

For each route with a JSON body, a body that is valid but for one unknown field goes to the
live server and must come back 422 naming that field; and every model a body (or a query
parameter) is built from, nested ones included, must forbid extra fields.
"""

from __future__ import annotations

import types
import typing
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError

from dockyard.api.openai_errors import OpenAIRoute
from tests.conftest import LiveServer

UNKNOWN = "dockyard_no_such_field"

# Bodies the generic filler cannot make valid (a model validator asks for more than
# the required fields), by JSON schema title.
EXAMPLES: dict[str, Any] = {
    "ChatMessageIn": {"role": "user", "content": "hi"},
    "RolloutCandidate": {"model": "default"},
}


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every API route of the app, through the routers it includes."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before 0.165 copies included routes into app.routes
        return [r for r in app.routes if isinstance(r, APIRoute)]
    routes = (c.original_route for c in iter_route_contexts(app.routes))
    return [r for r in routes if isinstance(r, APIRoute)]


def body_routes(app: FastAPI) -> list[APIRoute]:
    return [r for r in api_routes(app) if r.body_field is not None]


def _annotation(route: APIRoute) -> Any:
    assert route.body_field is not None
    return route.body_field.field_info.annotation


def _resolve(defs: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def minimal(defs: dict[str, Any], schema: dict[str, Any]) -> Any:
    """The smallest value valid for ``schema``: its required fields only."""
    schema = _resolve(defs, schema)
    if schema.get("title") in EXAMPLES:
        return EXAMPLES[schema["title"]]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(defs, s).get("type") != "null"]
            return minimal(defs, options[0])
    if "allOf" in schema:
        return minimal(defs, schema["allOf"][0])
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: minimal(defs, props[name]) for name in schema.get("required", [])}
    if kind == "array":
        items = schema.get("items", {})
        return [minimal(defs, items) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
    if kind == "boolean":
        return False
    return {}


def body_with_unknown_field(route: APIRoute) -> tuple[Any, str]:
    """A body valid for the route but for one unknown field, and where that field sits."""
    adapter: TypeAdapter[Any] = TypeAdapter(_annotation(route))
    schema = adapter.json_schema()
    body = minimal(schema.get("$defs", {}), schema)
    if isinstance(body, list):  # a batch: the unknown field in its first item
        body = body or [minimal(schema.get("$defs", {}), schema["items"])]
        adapter.validate_python(body)
        return [{**body[0], UNKNOWN: 1}, *body[1:]], f"0.{UNKNOWN}"
    try:
        adapter.validate_python(body)
    except ValidationError as e:
        raise AssertionError(
            f"{route.path}: the filler's body {body!r} is not valid ({e}); add an example "
            "for the model to EXAMPLES"
        ) from None
    assert isinstance(body, dict), f"{route.path}: a body that is not an object: {body!r}"
    return {**body, UNKNOWN: 1}, UNKNOWN


def _path(route: APIRoute) -> str:
    params = {p.name: str(uuid.uuid4()) for p in route.dependant.path_params}
    return route.path.format(**params)


def _unknown_field_refused(route: APIRoute, r: httpx.Response, where: str) -> str | None:
    """What is wrong with the answer, or None when it names the unknown field as it should."""
    if r.status_code != 422:
        return f"status {r.status_code}: {r.text[:300]}"
    body = r.json()
    if isinstance(route, OpenAIRoute):  # OpenAI's error shape, as the OpenAI SDKs parse it
        err = body.get("error") or {}
        if err.get("code") != "unsupported_field" or err.get("param") != where:
            return f"not reported as an unsupported field {where}: {body}"
        if UNKNOWN not in err.get("message", ""):
            return f"the message does not name the field: {body}"
        return None
    if body.get("code") != "invalid_request" or body.get("param") != where:
        return f"not reported as an unknown field {where}: {body}"
    if [(e["loc"], e["type"]) for e in body.get("errors", [])] != [
        (where.split("."), "extra_forbidden")
    ]:
        return f"other errors besides the unknown field: {body}"
    if "unknown field" not in body["detail"] or UNKNOWN not in body["detail"]:
        return f"the message does not name the field: {body}"
    return None


async def test_every_request_body_refuses_an_unknown_field(
    live_server: LiveServer, http: httpx.AsyncClient
) -> None:
    routes = body_routes(live_server.app)
    assert len(routes) > 20, [r.path for r in routes]
    problems = []
    for route in routes:
        body, where = body_with_unknown_field(route)
        for method in sorted(route.methods):
            r = await http.request(method, _path(route), json=body)
            problem = _unknown_field_refused(route, r, where)
            if problem:
                problems.append(f"{method} {route.path}: {problem}")
    assert not problems, "\n".join(problems)


def test_the_routes_are_every_operation_with_a_body(live_server: LiveServer) -> None:
    """The routes walked above are all the API documents as taking a body: none reads
    its body by hand, out of the models' sight."""
    documented = {
        (method.upper(), path)
        for path, ops in live_server.app.openapi()["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    }
    walked = {(m, r.path) for r in body_routes(live_server.app) for m in r.methods}
    assert documented == walked


def _models(annotation: Any, seen: set[type[BaseModel]]) -> None:
    """Every pydantic model reachable from ``annotation`` (fields, unions, containers)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return
        seen.add(annotation)
        for f in annotation.model_fields.values():
            _models(f.annotation, seen)
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            _models(arg, seen)


def request_models(app: FastAPI) -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    for route in api_routes(app):
        fields = [*route.dependant.query_params, *route.dependant.body_params]
        if route.body_field is not None:
            fields.append(route.body_field)
        for f in fields:
            _models(f.field_info.annotation, seen)
    return seen


def test_every_request_model_forbids_extra_fields(live_server: LiveServer) -> None:
    models = request_models(live_server.app)
    names = {m.__name__ for m in models}
    # Nested models are found too (the run's command, a checkpoint, a chat message).
    assert {"RunCreate", "CommandBody", "CheckpointRef", "ChatMessageIn"} <= names, names
    lenient = sorted(m.__name__ for m in models if m.model_config.get("extra") != "forbid")
    assert not lenient, f"request models that accept unknown fields: {lenient}"
