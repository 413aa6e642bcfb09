"""Bad input on the assistants, threads and store routes: a 4xx, a JSON body with
``detail`` and ``code``, and never a stack trace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

MISSING = "00000000-0000-4000-8000-000000000000"
MISSING_CHECKPOINT = "1f000000-0000-6000-8000-000000000000"


def assert_error(r: httpx.Response, status: int, *words: str, code: str | None = None) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str) and body["code"]
    if code is not None:
        assert body["code"] == code, body
    for leak in ("Traceback", 'File "', "sqlalchemy", "site-packages"):
        assert leak not in r.text, r.text
    for w in words:
        assert w in body["detail"], body


@pytest.fixture(scope="module")
async def http(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """One client for the module: a new one per test costs more than the requests."""
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def ids(server_url: str) -> dict[str, str]:
    """An assistant and a thread (with checkpoints) to aim bad requests at."""
    async with httpx.AsyncClient(base_url=server_url, timeout=30) as http:
        a = (await http.post("/assistants", json={"graph_id": "trivial"})).json()
        t = (await http.post("/threads", json={})).json()
        r = await http.post(
            f"/threads/{t['thread_id']}/runs/wait",
            json={"assistant_id": "trivial", "input": {"x": 1}},
        )
        assert r.status_code == 200, r.text
    return {"a": a["assistant_id"], "t": t["thread_id"]}


async def call(http: httpx.AsyncClient, method: str, path: str, body: Any) -> httpx.Response:
    if body is None:
        return await http.request(method, path)
    return await http.request(method, path, json=body)


# Each: method, path ({a} an assistant, {t} a thread), a body with one unknown field.
UNKNOWN_FIELD = [
    ("POST", "/assistants", {"graph_id": "trivial", "graph": "x"}),
    ("PATCH", "/assistants/{a}", {"nmae": "x"}),
    ("POST", "/assistants/search", {"limit": 1, "graph": "trivial"}),
    ("POST", "/assistants/count", {"graph": "trivial"}),
    ("POST", "/assistants/{a}/versions", {"limit": 1, "page": 2}),
    ("POST", "/assistants/{a}/latest", {"version": 1, "force": True}),
    ("POST", "/threads", {"metdata": {}}),
    ("PATCH", "/threads/{t}", {"metadata": {}, "status": "idle"}),
    ("POST", "/threads/search", {"limit": 1, "user": "u"}),
    ("POST", "/threads/count", {"user": "u"}),
    ("POST", "/threads/prune", {"thread_ids": [], "dry_run": True}),
    ("POST", "/threads/{t}/state", {"values": {"x": 1}, "asnode": "echo"}),
    ("POST", "/threads/{t}/state/checkpoint", {"checkpoint": {}, "subgraph": True}),
    ("POST", "/threads/{t}/history", {"limit": 1, "newest_first": True}),
    ("PUT", "/store/items", {"namespace": ["n"], "key": "k", "value": {}, "expire": 1}),
    ("DELETE", "/store/items", {"namespace": ["n"], "key": "k", "all": True}),
    ("POST", "/store/items/search", {"namespace_prefix": ["n"], "sort": "key"}),
    ("POST", "/store/namespaces", {"prefix": ["n"], "depth": 2}),
]


@pytest.mark.parametrize(("method", "path", "body"), UNKNOWN_FIELD, ids=lambda v: str(v)[:40])
async def test_unknown_field_is_422(
    http: httpx.AsyncClient, ids: dict[str, str], method: str, path: str, body: dict[str, Any]
) -> None:
    extra = next(k for k in body if k not in KNOWN)
    r = await call(http, method, path.format(**ids), body)
    assert_error(r, 422, extra, "unknown field", code="invalid_request")
    assert r.json()["param"] == extra


KNOWN = {
    "graph_id", "limit", "version", "metadata", "thread_ids", "values", "checkpoint",
    "namespace", "key", "value", "namespace_prefix", "prefix",
}  # fmt: skip


WRONG_TYPE = [
    ("POST", "/assistants", {"graph_id": 5}, "graph_id"),
    ("POST", "/assistants", {"graph_id": "trivial", "config": "fast"}, "config"),
    ("POST", "/assistants", {"graph_id": "trivial", "if_exists": "replace"}, "if_exists"),
    ("POST", "/assistants", {"graph_id": "trivial", "assistant_id": "x" * 65}, "assistant_id"),
    ("POST", "/assistants", {"graph_id": "trivial", "name": "n" * 256}, "name"),
    ("PATCH", "/assistants/{a}", {"metadata": ["not", "a", "dict"]}, "metadata"),
    ("POST", "/assistants/search", {"limit": "ten"}, "limit"),
    ("POST", "/assistants/search", {"limit": 0}, "limit"),
    ("POST", "/assistants/search", {"offset": -1}, "offset"),
    ("POST", "/assistants/search", {"sort_by": "config"}, "sort_by"),
    ("POST", "/assistants/search", {"sort_order": "up"}, "sort_order"),
    ("POST", "/assistants/{a}/versions", {"limit": 5000}, "limit"),
    ("POST", "/assistants/{a}/latest", {"version": "latest"}, "version"),
    ("POST", "/assistants/{a}/latest", {}, "version"),
    ("POST", "/threads", {"metadata": "m"}, "metadata"),
    ("POST", "/threads", {"if_exists": "overwrite"}, "if_exists"),
    ("POST", "/threads", {"ttl": {"ttl": -1}}, "ttl"),
    ("POST", "/threads", {"thread_id": "t" * 65}, "thread_id"),
    ("PATCH", "/threads/{t}", {"metadata": 3}, "metadata"),
    ("POST", "/threads/search", {"status": "sleeping"}, "status"),
    ("POST", "/threads/search", {"ids": "abc"}, "ids"),
    ("POST", "/threads/search", {"sort_by": "values"}, "sort_by"),
    ("POST", "/threads/count", {"values": [1]}, "values"),
    ("POST", "/threads/prune", {"thread_ids": "abc"}, "thread_ids"),
    ("POST", "/threads/prune", {"thread_ids": [], "strategy": "zap"}, "strategy"),
    ("POST", "/threads/prune", {}, "thread_ids"),
    ("POST", "/threads/{t}/state", {"values": "x"}, "values"),
    ("POST", "/threads/{t}/state/checkpoint", {}, "checkpoint"),
    ("POST", "/threads/{t}/state/checkpoint", {"checkpoint": {}, "select": ["vals"]}, "select"),
    ("POST", "/threads/{t}/history", {"limit": -1}, "limit"),
    ("POST", "/threads/{t}/history", {"select": ["everything"]}, "select"),
    ("PUT", "/store/items", {"namespace": ["n"], "key": "k", "value": 1}, "value"),
    ("PUT", "/store/items", {"namespace": "n", "key": "k", "value": {}}, "namespace"),
    ("PUT", "/store/items", {"namespace": ["n"], "value": {}}, "key"),
    ("PUT", "/store/items", {"namespace": ["n"], "key": "k", "value": {}, "ttl": -1}, "ttl"),
    ("PUT", "/store/items", {"namespace": ["n"], "key": "k", "value": {}, "index": True}, "index"),
    ("DELETE", "/store/items", {"namespace": ["n"]}, "key"),
    ("POST", "/store/items/search", {"limit": 0}, "limit"),
    ("POST", "/store/items/search", {"filter": "kind=odd"}, "filter"),
    ("POST", "/store/namespaces", {"max_depth": 0}, "max_depth"),
    ("POST", "/store/namespaces", {"prefix": "n"}, "prefix"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), WRONG_TYPE, ids=lambda v: str(v)[:40])
async def test_wrong_value_is_422(
    http: httpx.AsyncClient, ids: dict[str, str], method: str, path: str, body: Any, field: str
) -> None:
    r = await call(http, method, path.format(**ids), body)
    assert_error(r, 422, field, code="invalid_request")
    assert r.json()["param"].split(".")[0] == field


# Requests the models accept but the route refuses: still a clean 422.
REFUSED = [
    ("PUT", "/store/items", {"namespace": ["a.b"], "key": "k", "value": {}}, "namespace"),
    ("PUT", "/store/items", {"namespace": [], "key": "k", "value": {}}, "namespace"),
    ("DELETE", "/store/items", {"namespace": ["a", ""], "key": "k"}, "namespace"),
    ("POST", "/store/items/search", {"namespace_prefix": ["a.b"]}, "a.b"),
    ("POST", "/store/items/search", {"filter": {"n": {"$near": 1}}}, "$near"),
    ("POST", "/store/items/search", {"query": "meaning"}, "query"),
    ("POST", "/threads", {"supersteps": [{"updates": []}]}, "supersteps"),
    ("POST", "/threads/search", {"extract": {"x": "values.x"}}, "extract"),
    ("DELETE", "/assistants/{a}?delete_threads=true", None, "delete_threads"),
    ("POST", "/threads/{t}/state", {"values": {"x": 1}, "as_node": "nope"}, "nope"),
]


@pytest.mark.parametrize(("method", "path", "body", "word"), REFUSED, ids=lambda v: str(v)[:40])
async def test_refused_request_is_422(
    http: httpx.AsyncClient, ids: dict[str, str], method: str, path: str, body: Any, word: str
) -> None:
    r = await call(http, method, path.format(**ids), body)
    assert_error(r, 422, word)


async def test_get_store_item_with_a_bad_query_is_422(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/store/items", params={"key": "k"}), 422, "namespace")
    r = await http.get("/store/items", params={"namespace": "a..b", "key": "k"})
    assert_error(r, 422, "namespace")
    r = await http.get("/threads/x/state", params={"select": "everything"})
    assert_error(r, 422)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b'"graph"', b""],
    ids=["broken", "list", "string", "empty"],
)
async def test_body_that_is_not_an_object_is_422(http: httpx.AsyncClient, body: bytes) -> None:
    for path in ("/assistants", "/threads/search", "/store/items/search"):
        r = await http.post(path, content=body, headers={"content-type": "application/json"})
        assert_error(r, 422, code="invalid_request")


UNKNOWN_ID = [
    ("GET", "/assistants/{m}", None, "assistant_not_found"),
    ("PATCH", "/assistants/{m}", {"name": "x"}, "assistant_not_found"),
    ("DELETE", "/assistants/{m}", None, "assistant_not_found"),
    ("GET", "/assistants/{m}/graph", None, "assistant_not_found"),
    ("GET", "/assistants/{m}/schemas", None, "assistant_not_found"),
    ("GET", "/assistants/{m}/subgraphs", None, "assistant_not_found"),
    ("POST", "/assistants/{m}/versions", {}, "assistant_not_found"),
    ("POST", "/assistants/{m}/latest", {"version": 1}, "assistant_not_found"),
    ("POST", "/assistants/{a}/latest", {"version": 7}, "version_not_found"),
    ("POST", "/assistants", {"graph_id": "no_such_graph"}, "graph_not_found"),
    ("PATCH", "/assistants/{a}", {"graph_id": "no_such_graph"}, "graph_not_found"),
    ("POST", "/threads", {"graph_id": "no_such_graph"}, "graph_not_found"),
    ("GET", "/threads/{m}", None, "thread_not_found"),
    ("PATCH", "/threads/{m}", {"metadata": {}}, "thread_not_found"),
    ("DELETE", "/threads/{m}", None, "thread_not_found"),
    ("POST", "/threads/{m}/copy", None, "thread_not_found"),
    ("GET", "/threads/{m}/state", None, "thread_not_found"),
    ("POST", "/threads/{m}/state", {"values": {}}, "thread_not_found"),
    ("GET", "/threads/{m}/state/{c}", None, "thread_not_found"),
    ("POST", "/threads/{m}/state/checkpoint", {"checkpoint": {}}, "thread_not_found"),
    ("POST", "/threads/{m}/history", {}, "thread_not_found"),
    ("GET", "/threads/{t}/state/{c}", None, "checkpoint_not_found"),
    (
        "POST",
        "/threads/{t}/state/checkpoint",
        {"checkpoint": {"checkpoint_id": MISSING_CHECKPOINT}},
        "checkpoint_not_found",
    ),
    ("POST", "/threads/{t}/state", {"values": {}, "checkpoint_id": "{c}"}, "checkpoint_not_found"),
    ("GET", "/store/items?namespace=nowhere&key=k", None, "item_not_found"),
]


@pytest.mark.parametrize(("method", "path", "body", "code"), UNKNOWN_ID, ids=lambda v: str(v)[:40])
async def test_unknown_id_is_404(
    http: httpx.AsyncClient, ids: dict[str, str], method: str, path: str, body: Any, code: str
) -> None:
    fill = {**ids, "m": MISSING, "c": MISSING_CHECKPOINT}
    if isinstance(body, dict) and body.get("checkpoint_id"):
        body = {**body, "checkpoint_id": body["checkpoint_id"].format(**fill)}
    r = await call(http, method, path.format(**fill), body)
    assert_error(r, 404, code=code)


async def test_unknown_route_and_method(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/assistantz"), 404, code="not_found")
    assert_error(await http.put("/assistants/search", json={}), 405, code="method_not_allowed")


async def test_duplicates_are_409(http: httpx.AsyncClient, ids: dict[str, str]) -> None:
    r = await http.post("/assistants", json={"graph_id": "trivial", "assistant_id": ids["a"]})
    assert_error(r, 409, ids["a"], "if_exists", code="assistant_exists")
    r = await http.post("/threads", json={"thread_id": ids["t"]})
    assert_error(r, 409, ids["t"], "if_exists", code="thread_exists")


async def test_nothing_is_stored_by_a_refused_request(http: httpx.AsyncClient) -> None:
    aid, tid = str(uuid.uuid4()), str(uuid.uuid4())
    r = await http.post("/assistants", json={"graph_id": "trivial", "assistant_id": aid, "x": 1})
    assert r.status_code == 422
    assert (await http.get(f"/assistants/{aid}")).status_code == 404
    r = await http.post("/threads", json={"thread_id": tid, "ttl": {"ttl": 0}})
    assert r.status_code == 422
    assert (await http.get(f"/threads/{tid}")).status_code == 404
