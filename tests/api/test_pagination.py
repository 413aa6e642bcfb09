"""``X-Pagination-Next`` on every paginated route, at every offset, not only the first page.

The paginated routes are read from the app's OpenAPI document (every operation that takes
both ``limit`` and ``offset``, in its query or its JSON body); each needs a seeder below
that fills a scope of its own with ``TOTAL`` rows, and a route added later without one
fails ``test_every_paginated_route_has_a_seeder``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import LiveServer

TOTAL = 5
LIMIT = 2


@dataclass
class Scope:
    """One paginated request over rows that only this test made."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    rows: Callable[[Any], list[Any]] = lambda body: body
    ident: Callable[[Any], Any] = lambda row: row
    cleanup: Callable[[httpx.AsyncClient], Awaitable[None]] | None = None


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.removeprefix("#/components/schemas/")
    return _resolve(doc, doc["components"]["schemas"][name])


def paginated_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every operation taking both ``limit`` and ``offset``."""
    doc = app.openapi()
    found: set[tuple[str, str]] = set()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
            content = op.get("requestBody", {}).get("content", {})
            for media in content.values():
                body = _resolve(doc, media.get("schema", {}))
                names |= set(body.get("properties", {}))
            if {"limit", "offset"} <= names:
                found.add((method.upper(), path))
    return found


# -- seeders: TOTAL rows in a scope of their own --------------------------------------------


def _tag() -> dict[str, str]:
    return {"pagination-test": str(uuid.uuid4())}


async def _threads(http: httpx.AsyncClient) -> Scope:
    tag = _tag()
    for _ in range(TOTAL):
        assert (await http.post("/threads", json={"metadata": tag})).status_code == 200
    return Scope("POST", "/threads/search", {"metadata": tag}, ident=lambda t: t["thread_id"])


async def _assistants(http: httpx.AsyncClient) -> Scope:
    tag = _tag()
    for _ in range(TOTAL):
        r = await http.post("/assistants", json={"graph_id": "trivial", "metadata": tag})
        assert r.status_code == 200, r.text
    return Scope("POST", "/assistants/search", {"metadata": tag}, ident=lambda a: a["assistant_id"])


async def _versions(http: httpx.AsyncClient) -> Scope:
    a = (await http.post("/assistants", json={"graph_id": "trivial"})).json()
    for i in range(TOTAL - 1):
        r = await http.patch(f"/assistants/{a['assistant_id']}", json={"name": f"v{i + 2}"})
        assert r.status_code == 200, r.text
    return Scope("POST", f"/assistants/{a['assistant_id']}/versions", ident=lambda v: v["version"])


async def _crons(http: httpx.AsyncClient) -> Scope:
    tag = _tag()
    ids = []
    for _ in range(TOTAL):
        body = {"assistant_id": "trivial", "schedule": "0 0 1 1 *", "metadata": tag}
        r = await http.post("/runs/crons", json=body)
        assert r.status_code == 200, r.text
        ids.append(r.json()["cron_id"])

    async def cleanup(h: httpx.AsyncClient) -> None:
        for cron_id in ids:
            await h.delete(f"/runs/crons/{cron_id}")

    return Scope(
        "POST",
        "/runs/crons/search",
        {"metadata": tag},
        ident=lambda c: c["cron_id"],
        cleanup=cleanup,
    )


async def _runs(http: httpx.AsyncClient) -> Scope:
    tid = (await http.post("/threads", json={})).json()["thread_id"]
    for i in range(TOTAL):
        body = {"assistant_id": "trivial", "input": {"x": i}}
        assert (await http.post(f"/threads/{tid}/runs/wait", json=body)).status_code == 200
    return Scope("GET", f"/threads/{tid}/runs", ident=lambda r: r["run_id"])


async def _store_items(http: httpx.AsyncClient) -> Scope:
    root = f"pg-{uuid.uuid4().hex}"
    for i in range(TOTAL):
        body = {"namespace": [root, "docs"], "key": f"k{i}", "value": {"i": i}}
        assert (await http.put("/store/items", json=body)).status_code == 204
    return Scope(
        "POST",
        "/store/items/search",
        {"namespace_prefix": [root]},
        rows=lambda body: body["items"],
        ident=lambda item: item["key"],
    )


async def _store_namespaces(http: httpx.AsyncClient) -> Scope:
    root = f"pg-{uuid.uuid4().hex}"
    for i in range(TOTAL):
        body = {"namespace": [root, f"n{i}"], "key": "k", "value": {}}
        assert (await http.put("/store/items", json=body)).status_code == 204
    return Scope(
        "POST",
        "/store/namespaces",
        {"prefix": [root]},
        rows=lambda body: body["namespaces"],
        ident=tuple,
    )


SEEDERS: dict[tuple[str, str], Callable[[httpx.AsyncClient], Awaitable[Scope]]] = {
    ("POST", "/threads/search"): _threads,
    ("POST", "/assistants/search"): _assistants,
    ("POST", "/assistants/{assistant_id}/versions"): _versions,
    ("POST", "/runs/crons/search"): _crons,
    ("GET", "/threads/{thread_id}/runs"): _runs,
    ("POST", "/store/items/search"): _store_items,
    ("POST", "/store/namespaces"): _store_namespaces,
}


async def fetch(
    http: httpx.AsyncClient, scope: Scope, limit: int, offset: int
) -> tuple[list[Any], str | None]:
    params = {**scope.params, "limit": limit, "offset": offset}
    if scope.method == "GET":
        r = await http.get(scope.path, params=params)
    else:
        r = await http.request(scope.method, scope.path, json=params)
    assert r.status_code == 200, r.text
    return [scope.ident(row) for row in scope.rows(r.json())], r.headers.get("x-pagination-next")


def test_every_paginated_route_has_a_seeder(live_server: LiveServer) -> None:
    routes = paginated_operations(live_server.app)
    assert routes, "no route with limit and offset found in the OpenAPI document"
    missing = routes - set(SEEDERS)
    assert not missing, f"paginated routes without a pagination test (add a seeder): {missing}"
    gone = set(SEEDERS) - routes
    assert not gone, f"seeders for routes that no longer take limit and offset: {gone}"


@pytest.mark.parametrize("route", list(SEEDERS), ids=lambda r: f"{r[0]} {r[1]}")
async def test_next_offset_on_every_page(http: httpx.AsyncClient, route: tuple[str, str]) -> None:
    scope = await SEEDERS[route](http)
    try:
        everything, header = await fetch(http, scope, 100, 0)
        assert len(everything) == TOTAL, everything
        assert header is None
        for offset in range(TOTAL + 1):
            rows, header = await fetch(http, scope, LIMIT, offset)
            assert rows == everything[offset : offset + LIMIT], (offset, rows)
            more = offset + LIMIT < TOTAL
            expected = str(offset + LIMIT) if more else None
            assert header == expected, f"offset {offset}: X-Pagination-Next {header!r}"
        # Following the header from the first page visits every row once, in order.
        seen: list[Any] = []
        offset: int | None = 0
        while offset is not None:
            rows, header = await fetch(http, scope, LIMIT, offset)
            seen += rows
            offset = int(header) if header is not None else None
        assert seen == everything
    finally:
        if scope.cleanup is not None:
            await scope.cleanup(http)
