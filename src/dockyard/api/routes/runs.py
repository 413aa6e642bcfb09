"""Runs on a thread (/threads/{id}/runs/...) and stateless runs (/runs/...)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Header, Query, Response

from dockyard.api.deps import DockyardProcess, ProcessDep, get_thread, guard_thread
from dockyard.api.gateway import CacheHeader, cache_bypass
from dockyard.api.responses import json_response, page
from dockyard.api.schemas import RunCreate, RunsCancel
from dockyard.api.sse import run_paths, sse_events
from dockyard.errors import InvalidRequestError, NotFoundError
from dockyard.policies import tenancy
from dockyard.run_spec import RunSpec
from dockyard.runtime.broker import Announced
from dockyard.runtime.shapes import run_out
from dockyard.storage.base import ACTIVE_RUN_STATUSES, Run

router = APIRouter(tags=["runs"])

CancelActionQ = Literal["interrupt", "rollback"]


def _cache_header(body: RunCreate, header: str | None) -> RunCreate:
    """``X-Dockyard-Cache: bypass`` as the run's ``configurable.cache = false``: its model
    calls neither read nor write the response cache (policies.cache)."""
    if not cache_bypass(header):
        return body
    config = dict(body.config or {})
    config["configurable"] = {**(config.get("configurable") or {}), "cache": False}
    return body.model_copy(update={"config": config})


async def _start(
    rt: DockyardProcess, thread_id: str | None, body: RunCreate
) -> tuple[Run, Announced]:
    return await rt.runs.start(thread_id, RunSpec.from_request(body.model_dump(exclude_none=True)))


async def _create(rt: DockyardProcess, thread_id: str | None, body: RunCreate) -> Run:
    return (await _start(rt, thread_id, body))[0]


async def _stream(rt: DockyardProcess, thread_id: str | None, body: RunCreate) -> Response:
    run, first = await _start(rt, thread_id, body)
    return sse_events(
        rt, run, None, None, cancel_on_disconnect=body.on_disconnect == "cancel", first=first
    )


async def _wait(rt: DockyardProcess, thread_id: str | None, body: RunCreate) -> Response:
    run, first = await _start(rt, thread_id, body.model_copy(update={"stream_mode": []}))
    result = await rt.runs.wait_result(run, first=first)
    base = f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return json_response(result, headers={"Content-Location": base, "Location": f"{base}/join"})


# -- on a thread ----------------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs")
async def create_run(
    thread_id: str, body: RunCreate, rt: ProcessDep, cache: CacheHeader = None
) -> Response:
    run = await _create(rt, thread_id, _cache_header(body, cache))
    return json_response(
        run_out(run), headers={"Content-Location": run_paths(run)["Content-Location"]}
    )


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(
    thread_id: str, body: RunCreate, rt: ProcessDep, cache: CacheHeader = None
) -> Response:
    return await _stream(rt, thread_id, _cache_header(body, cache))


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(
    thread_id: str, body: RunCreate, rt: ProcessDep, cache: CacheHeader = None
) -> Response:
    return await _wait(rt, thread_id, _cache_header(body, cache))


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    rt: ProcessDep,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    status: Literal["pending", "running", "success", "error", "timeout", "interrupted"]
    | None = None,
    select: list[str] | None = Query(None),
) -> Response:
    await get_thread(rt, thread_id)
    runs = await rt.runs.list_runs(thread_id, limit=limit + 1, offset=offset, status=status)
    runs, headers = page(runs, limit, offset)
    out = [run_out(r) for r in runs]
    if select:
        out = [{k: v for k, v in r.items() if k in select} for r in out]
    return json_response(out, headers=headers)


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, rt: ProcessDep) -> Response:
    await guard_thread(rt, thread_id, "read")
    return json_response(run_out(await rt.runs.get_run(thread_id, run_id)))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(thread_id: str, run_id: str, rt: ProcessDep) -> Response:
    await guard_thread(rt, thread_id, "delete")
    await rt.runs.delete_run(thread_id, run_id)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: str,
    run_id: str,
    rt: ProcessDep,
    wait: bool = False,
    action: CancelActionQ = "interrupt",
) -> Response:
    await guard_thread(rt, thread_id, "update")
    await rt.runs.cancel_by_id(thread_id, run_id, action, wait)
    return Response(status_code=202 if not wait else 204)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: str, run_id: str, rt: ProcessDep) -> Response:
    await guard_thread(rt, thread_id, "read")
    run = await rt.runs.get_run(thread_id, run_id)
    return json_response(await rt.runs.wait_result(run))


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_run_stream(
    thread_id: str,
    run_id: str,
    rt: ProcessDep,
    stream_mode: list[str] | None = Query(None),
    cancel_on_disconnect: bool = False,
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> Response:
    await guard_thread(rt, thread_id, "read")
    run = await rt.runs.get_run(thread_id, run_id)
    return sse_events(
        rt, run, stream_mode, last_event_id, cancel_on_disconnect=cancel_on_disconnect
    )


# -- stateless ------------------------------------------------------------------------------


@router.post("/runs")
async def create_stateless_run(
    body: RunCreate, rt: ProcessDep, cache: CacheHeader = None
) -> Response:
    run = await _create(rt, None, _cache_header(body, cache))
    return json_response(
        run_out(run), headers={"Content-Location": run_paths(run)["Content-Location"]}
    )


@router.post("/runs/stream")
async def stream_stateless_run(
    body: RunCreate, rt: ProcessDep, cache: CacheHeader = None
) -> Response:
    return await _stream(rt, None, _cache_header(body, cache))


@router.post("/runs/wait")
async def wait_stateless_run(
    body: RunCreate, rt: ProcessDep, cache: CacheHeader = None
) -> Response:
    return await _wait(rt, None, _cache_header(body, cache))


@router.post("/runs/batch")
async def create_batch(
    rt: ProcessDep, body: list[RunCreate] = Body(...), cache: CacheHeader = None
) -> Response:
    if not body:
        raise InvalidRequestError("send at least one run payload", param="body")
    runs = [await _create(rt, None, _cache_header(item, cache)) for item in body]
    return json_response([run_out(r) for r in runs])


@router.post("/runs/cancel", status_code=204)
async def cancel_many(
    body: RunsCancel, rt: ProcessDep, action: CancelActionQ = "interrupt"
) -> Response:
    targets: list[Run] = []
    if body.run_ids:
        if not body.thread_id:
            raise InvalidRequestError("run_ids needs thread_id", param="thread_id")
        await get_thread(rt, body.thread_id, "update")
        for run_id in body.run_ids:
            targets.append(await rt.runs.get_run(body.thread_id, run_id))
    elif body.thread_id:
        await get_thread(rt, body.thread_id, "update")
        targets = await rt.runs.active_runs(body.thread_id)
    elif body.status:
        targets = await _all_active(rt, body.status)
        if tenancy.handlers_on():
            targets = [r for r in targets if await _may_update(rt, r["thread_id"])]
    else:
        raise InvalidRequestError(
            "say which runs to cancel: thread_id (+ run_ids) or status", param="status"
        )
    for run in targets:
        if run["status"] in ACTIVE_RUN_STATUSES:
            await rt.runs.cancel(run, action)
    return Response(status_code=204)


async def _may_update(rt: DockyardProcess, thread_id: str) -> bool:
    try:
        await get_thread(rt, thread_id, "update")
    except NotFoundError:
        return False
    return True


async def _all_active(rt: DockyardProcess, status: str) -> list[Run]:
    wanted: list[Any] = list(ACTIVE_RUN_STATUSES) if status == "all" else [status]
    return await rt.runs.runs_with_status(wanted)
