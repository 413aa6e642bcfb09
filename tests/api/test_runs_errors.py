"""Bad input on the runs routes: clear 4xx, machine-readable code, nothing stored."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
async def thread_id(http: httpx.AsyncClient) -> str:
    return str((await http.post("/threads", json={})).json()["thread_id"])


def assert_error(r: httpx.Response, status: int, code: str, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    assert "Traceback" not in r.text
    for w in words:
        assert w in body["detail"], body


@pytest.mark.parametrize("path", ["/runs", "/runs/wait", "/runs/stream"])
async def test_unknown_field_is_refused(http: httpx.AsyncClient, path: str) -> None:
    r = await http.post(path, json={"assistant_id": "trivial", "inputs": {"x": 1}})
    assert_error(r, 422, "invalid_request", "inputs", "unknown field")


@pytest.mark.parametrize(
    ("field", "value", "word"),
    [
        ("feedback_keys", ["k"], "feedback_keys"),
        ("langsmith_tracer", {"project_name": "p"}, "langsmith_tracer"),
    ],
)
async def test_unsupported_fields_are_refused(
    http: httpx.AsyncClient, thread_id: str, field: str, value: object, word: str
) -> None:
    r = await http.post(
        f"/threads/{thread_id}/runs", json={"assistant_id": "trivial", field: value}
    )
    assert_error(r, 422, "unsupported_field", word)
    assert (await http.get(f"/threads/{thread_id}/runs")).json() == []


async def test_bad_values(http: httpx.AsyncClient, thread_id: str) -> None:
    base = f"/threads/{thread_id}/runs"
    for body, word in [
        ({"assistant_id": "trivial", "stream_mode": "everything"}, "stream_mode"),
        ({"assistant_id": "trivial", "multitask_strategy": "queue"}, "multitask_strategy"),
        ({"assistant_id": "trivial", "after_seconds": -1}, "after_seconds"),
        ({"assistant_id": "trivial", "durability": "later"}, "durability"),
        ({"assistant_id": "trivial", "input": {"x": 1}, "command": {"resume": 1}}, "either"),
        ({"assistant_id": "trivial", "command": {"resum": 1}}, "resum"),
        ({"input": {}}, "assistant_id"),
    ]:
        assert_error(await http.post(base, json=body), 422, "invalid_request", word)
    r = await http.post(base, json={"assistant_id": "trivial", "on_completion": "keep"})
    assert_error(r, 422, "invalid_request", "stateless")
    r = await http.post(base, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert (await http.get(base)).json() == []


async def test_unknown_ids(http: httpx.AsyncClient, thread_id: str) -> None:
    r = await http.post(f"/threads/{thread_id}/runs", json={"assistant_id": "no-such-graph"})
    assert_error(r, 404, "assistant_not_found", "no-such-graph", "trivial")
    r = await http.post("/threads/nope/runs", json={"assistant_id": "trivial"})
    assert_error(r, 404, "thread_not_found", "if_not_exists")
    r = await http.get(f"/threads/{thread_id}/runs/nope")
    assert_error(r, 404, "run_not_found")
    r = await http.post(f"/threads/{thread_id}/runs/nope/cancel")
    assert_error(r, 404, "run_not_found")
    r = await http.get(f"/threads/{thread_id}/runs/nope/stream")
    assert_error(r, 404, "run_not_found")


async def test_delete_refuses_an_active_run(http: httpx.AsyncClient, thread_id: str) -> None:
    body = {"assistant_id": "trivial", "input": {"x": 1}, "after_seconds": 3600}
    run = (await http.post(f"/threads/{thread_id}/runs", json=body)).json()
    path = f"/threads/{thread_id}/runs/{run['run_id']}"
    assert_error(await http.delete(path), 409, "run_active", "pending", "cancel it")
    assert (await http.get(path)).json()["status"] == "pending"
    assert (await http.post(f"{path}/cancel", params={"wait": True})).status_code == 204
    assert (await http.delete(path)).status_code == 204
    assert_error(await http.delete(path), 404, "run_not_found")
    assert_error(await http.delete(f"/threads/{thread_id}/runs/nope"), 404, "run_not_found")


async def test_bad_last_event_id_and_join_mode(http: httpx.AsyncClient, thread_id: str) -> None:
    run = (await http.post(f"/threads/{thread_id}/runs", json={"assistant_id": "trivial"})).json()
    path = f"/threads/{thread_id}/runs/{run['run_id']}/stream"
    r = await http.get(path, headers={"Last-Event-ID": "garbage"})
    assert_error(r, 422, "invalid_request", "Last-Event-ID")
    r = await http.get(path, params={"stream_mode": "nonsense"})
    assert_error(r, 422, "invalid_request", "nonsense")


async def test_unknown_route_and_method(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/no/such/route"), 404, "not_found")
    assert_error(await http.put("/runs/wait", json={}), 405, "method_not_allowed")


async def test_ready_and_health(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health")).json() == {"ok": True}
    ready = await http.get("/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    info = (await http.get("/info")).json()
    assert "trivial" in info["graphs"] and info["version"]
    assert (await http.get("/openapi.json")).json()["info"]["title"] == "dockyard"
    assert (await http.get("/docs")).status_code == 200
