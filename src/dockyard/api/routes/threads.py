"""/threads: CRUD, search, copy, prune, state and history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Header, Query, Response
from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError
from langgraph.pregel import Pregel
from langgraph.types import StateSnapshot

from dockyard.api.deps import DockyardProcess, ProcessDep, get_thread, must_own
from dockyard.api.responses import json_response, page, select_fields
from dockyard.api.schemas import (
    TTL,
    CheckpointRef,
    HistoryQuery,
    StateAtCheckpoint,
    StateUpdate,
    ThreadCount,
    ThreadCreate,
    ThreadPrune,
    ThreadSearch,
    ThreadUpdate,
    check_state_select,
)
from dockyard.api.sse import sse_events
from dockyard.errors import ConflictError, InvalidRequestError, NotFoundError, UnsupportedFieldError
from dockyard.policies import tenancy
from dockyard.runtime.serde import to_jsonable
from dockyard.runtime.service import new_id
from dockyard.runtime.shapes import checkpoint_out, empty_state, state_out, thread_out
from dockyard.storage.base import Thread
from dockyard.storage.checkpoints import copy_thread

router = APIRouter(prefix="/threads", tags=["threads"])

COPY_NODE = "__copy__"


def _ttl(ttl: TTL | None, rt: DockyardProcess) -> tuple[dict[str, Any] | None, datetime | None]:
    # Without a ttl in the request: the configured default (checkpointer.ttl in langgraph.json).
    strategy, minutes = (ttl.strategy, ttl.ttl) if ttl else (rt.settings.thread_ttl or (None, None))
    if minutes is None:
        return None, None
    return (
        {"strategy": strategy, "ttl": minutes},
        datetime.now(UTC) + timedelta(minutes=minutes),
    )


async def _thread_graph(rt: DockyardProcess, thread: Thread) -> Pregel[Any, Any, Any, Any] | None:
    graph_id = thread["graph_id"] or thread["metadata"].get("graph_id")
    if not graph_id or graph_id not in rt.registry:
        return None
    return await rt.registry.get(graph_id)


def _config(thread_id: str, checkpoint: dict[str, Any] | None = None) -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    for k, v in (checkpoint or {}).items():
        if v is not None and k != "thread_id":
            conf[k] = v
    return {"configurable": conf}


@router.post("")
async def create_thread(body: ThreadCreate, rt: ProcessDep) -> Response:
    if body.supersteps:
        raise UnsupportedFieldError(
            "supersteps: dockyard does not create threads from supersteps; create the "
            "thread, then POST /threads/{id}/state",
            param="supersteps",
        )
    if body.graph_id is not None and body.graph_id not in rt.registry:
        raise NotFoundError(
            f"graph {body.graph_id!r} is not declared", code="graph_not_found", param="graph_id"
        )
    ttl, expires_at = _ttl(body.ttl, rt)
    thread_id = body.thread_id or new_id()
    value: dict[str, Any] = {
        "thread_id": thread_id,
        "metadata": dict(body.metadata or {}),
        "if_exists": body.if_exists,
    }
    flt = await tenancy.authorize("threads", "create", value)  # may add metadata
    metadata = tenancy.stamp(value["metadata"])
    if body.graph_id:
        metadata.setdefault("graph_id", body.graph_id)
    thread = await rt.storage.threads.create(
        thread_id=thread_id,
        metadata=metadata,
        if_exists=body.if_exists,
        ttl=ttl,
        expires_at=expires_at,
        graph_id=body.graph_id,
    )
    must_own(thread, f"thread {thread['thread_id']}", flt)
    return json_response(thread_out(thread))


@router.post("/search")
async def search_threads(body: ThreadSearch, rt: ProcessDep) -> Response:
    if body.extract:
        raise UnsupportedFieldError("extract: not supported; remove it", param="extract")
    items = await rt.storage.threads.search(
        ids=body.ids,
        metadata=await tenancy.search_metadata(
            "threads", body.metadata, {"status": body.status, "limit": body.limit}
        ),
        values=body.values,
        status=body.status,
        limit=body.limit + 1,
        offset=body.offset,
        sort_by=body.sort_by,
        sort_order=body.sort_order,
    )
    items, headers = page(items, body.limit, body.offset)
    out = [select_fields(thread_out(t), body.select) for t in items]
    return json_response(out, headers=headers)


@router.post("/count")
async def count_threads(body: ThreadCount, rt: ProcessDep) -> int:
    return await rt.storage.threads.count(
        metadata=await tenancy.search_metadata("threads", body.metadata, {"status": body.status}),
        values=body.values,
        status=body.status,
    )


@router.post("/prune")
async def prune_threads(body: ThreadPrune, rt: ProcessDep) -> dict[str, int]:
    pruned = 0
    for thread_id in body.thread_ids:
        try:
            await get_thread(rt, thread_id, "delete")
        except NotFoundError:
            continue
        if body.strategy == "delete":
            await _delete_thread(rt, thread_id)
        else:
            await rt.storage.checkpoint_admin.keep_latest(thread_id)
        pruned += 1
    return {"pruned_count": pruned}


def _ttl_out(thread: Thread) -> dict[str, Any] | None:
    if not thread["ttl"]:
        return None
    return {
        "strategy": thread["ttl"].get("strategy", "delete"),
        "ttl_minutes": thread["ttl"].get("ttl"),
        "expires_at": thread["expires_at"],
    }


@router.get("/{thread_id}")
async def read_thread(thread_id: str, rt: ProcessDep, include: str | None = None) -> Response:
    thread = await get_thread(rt, thread_id)
    out = thread_out(thread)
    wanted = {x.strip() for x in (include or "").split(",") if x.strip()}
    if wanted - {"ttl"}:
        raise InvalidRequestError(
            f"include: unknown value(s) {sorted(wanted - {'ttl'})}; supported: ttl",
            param="include",
        )
    if "ttl" in wanted:
        out["ttl"] = _ttl_out(thread)
    return json_response(out)


@router.patch("/{thread_id}")
async def update_thread(
    thread_id: str,
    body: ThreadUpdate,
    rt: ProcessDep,
    prefer: str | None = Header(None),
) -> Response:
    value: dict[str, Any] = {"thread_id": thread_id, "metadata": dict(body.metadata or {})}
    await get_thread(rt, thread_id, "update", value)
    metadata: dict[str, Any] | None = value["metadata"]
    if body.metadata is None and not metadata:
        metadata = None
    tenancy.check_metadata(metadata)
    ttl, expires_at = _ttl(body.ttl, rt) if body.ttl else (None, None)
    thread = await rt.storage.threads.update(
        thread_id, metadata=metadata, ttl=ttl, expires_at=expires_at
    )
    if prefer and "return=minimal" in prefer:
        return Response(status_code=204)
    return json_response(thread_out(thread))


async def _delete_thread(rt: DockyardProcess, thread_id: str) -> None:
    await rt.runs.delete_thread(thread_id)


@router.delete("/{thread_id}", status_code=204)
async def delete_thread(thread_id: str, rt: ProcessDep) -> Response:
    await get_thread(rt, thread_id, "delete")
    await _delete_thread(rt, thread_id)
    return Response(status_code=204)


@router.post("/{thread_id}/copy")
async def copy(thread_id: str, rt: ProcessDep) -> Response:
    src = await get_thread(rt, thread_id)
    new = await rt.storage.threads.create(
        thread_id=new_id(),
        metadata=dict(src["metadata"]),
        if_exists="raise",
        ttl=src["ttl"],
        expires_at=src["expires_at"],
        graph_id=src["graph_id"],
    )
    await copy_thread(rt.storage.checkpointer, thread_id, new["thread_id"])
    status = src["status"] if src["status"] != "busy" else "idle"
    await rt.storage.threads.set_state(
        new["thread_id"], status=status, values=src["values"], interrupts=src["interrupts"]
    )
    return json_response(thread_out(await get_thread(rt, new["thread_id"])))


def _select_state(state: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    """ThreadState fields named in ``select``; ``values.<key>`` keeps one state key."""
    if not select:
        return state
    out = {k: v for k, v in state.items() if k in select}
    value_keys = [s.removeprefix("values.") for s in select if s.startswith("values.")]
    if value_keys and "values" not in select:
        values = state["values"] if isinstance(state["values"], dict) else {}
        out["values"] = {k: values[k] for k in value_keys if k in values}
    return out


async def _snapshot(
    graph: Pregel[Any, Any, Any, Any],
    thread_id: str,
    checkpoint: dict[str, Any] | None,
    subgraphs: bool = False,
) -> StateSnapshot:
    snap = await graph.aget_state(_config(thread_id, checkpoint), subgraphs=subgraphs)
    if checkpoint and checkpoint.get("checkpoint_id") and not snap.created_at:
        raise NotFoundError(
            f"checkpoint {checkpoint['checkpoint_id']} not found on thread {thread_id}",
            code="checkpoint_not_found",
        )
    return snap


async def _state(
    rt: DockyardProcess,
    thread_id: str,
    checkpoint: dict[str, Any] | None,
    subgraphs: bool,
    select: list[str] | None = None,
) -> dict[str, Any]:
    check_state_select(select)
    thread = await get_thread(rt, thread_id)
    graph = await _thread_graph(rt, thread)
    if graph is None:
        return _select_state(empty_state(thread_id), select)
    return _select_state(
        state_out(await _snapshot(graph, thread_id, checkpoint, subgraphs)), select
    )


@router.get("/{thread_id}/state")
async def get_state(
    thread_id: str,
    rt: ProcessDep,
    subgraphs: bool = False,
    select: list[str] | None = Query(None),
) -> Response:
    return json_response(await _state(rt, thread_id, None, subgraphs, select))


@router.get("/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    thread_id: str,
    checkpoint_id: str,
    rt: ProcessDep,
    subgraphs: bool = False,
    select: list[str] | None = Query(None),
) -> Response:
    return json_response(
        await _state(rt, thread_id, {"checkpoint_id": checkpoint_id}, subgraphs, select)
    )


@router.post("/{thread_id}/state/checkpoint")
async def post_state_at(thread_id: str, body: StateAtCheckpoint, rt: ProcessDep) -> Response:
    checkpoint = body.checkpoint.model_dump(exclude_none=True)
    return json_response(await _state(rt, thread_id, checkpoint, body.subgraphs, body.select))


@router.post("/{thread_id}/state")
async def update_state(thread_id: str, body: StateUpdate, rt: ProcessDep) -> Response:
    thread = await get_thread(rt, thread_id, "update")
    if thread["status"] == "busy":
        raise ConflictError(
            f"thread {thread_id} is busy with a run; update its state when the run ends",
            code="thread_busy",
        )
    graph = await _thread_graph(rt, thread)
    if graph is None:
        raise InvalidRequestError(
            f"thread {thread_id} has no graph yet: create it with graph_id or run it once "
            "before updating its state",
            code="thread_has_no_graph",
        )
    checkpoint = body.checkpoint.model_dump(exclude_none=True) if body.checkpoint else {}
    if body.checkpoint_id:
        checkpoint["checkpoint_id"] = body.checkpoint_id
    if checkpoint.get("checkpoint_id"):
        # LangGraph would fork silently from an empty state; a typo must not do that.
        await _snapshot(graph, thread_id, checkpoint)
    # "__copy__" (Studio's "re-run from here"): LangGraph copies the checkpoint as a new one.
    if body.as_node not in (None, COPY_NODE) and body.as_node not in graph.nodes:
        raise InvalidRequestError(
            f"as_node: unknown node {body.as_node!r}; nodes: "
            f"{sorted(n for n in graph.nodes if not n.startswith('__'))} "
            f"(or {COPY_NODE!r} to copy the checkpoint)",
            param="as_node",
        )
    try:
        new_config = await graph.aupdate_state(
            _config(thread_id, checkpoint), body.values, as_node=body.as_node
        )
    except (ValueError, KeyError, TypeError, InvalidUpdateError) as e:  # LangGraph's word
        raise InvalidRequestError(f"state update rejected: {e}") from e
    snap = await graph.aget_state(_config(thread_id))
    interrupts = {t.id: to_jsonable(list(t.interrupts)) for t in snap.tasks if t.interrupts}
    await rt.storage.threads.set_state(
        thread_id,
        status="interrupted" if snap.next else "idle",
        values=to_jsonable(snap.values),
        interrupts=interrupts,
    )
    return json_response({"checkpoint": checkpoint_out(new_config)})


async def _history(
    rt: DockyardProcess,
    thread_id: str,
    limit: int,
    before: Any,
    metadata: dict[str, Any] | None,
    checkpoint: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    thread = await get_thread(rt, thread_id)
    graph = await _thread_graph(rt, thread)
    if graph is None:
        return []
    before_conf = None
    if isinstance(before, str):
        before_conf = _config(thread_id, {"checkpoint_id": before})
    elif isinstance(before, dict):
        before_conf = _config(thread_id, before)
    return [
        state_out(s)
        async for s in graph.aget_state_history(
            _config(thread_id, checkpoint), filter=metadata, before=before_conf, limit=limit
        )
    ]


@router.post("/{thread_id}/history")
async def post_history(thread_id: str, body: HistoryQuery, rt: ProcessDep) -> Response:
    before = (
        body.before.model_dump(exclude_none=True)
        if isinstance(body.before, CheckpointRef)
        else body.before
    )
    checkpoint = body.checkpoint.model_dump(exclude_none=True) if body.checkpoint else None
    states = await _history(rt, thread_id, body.limit, before, body.metadata, checkpoint)
    return json_response([_select_state(s, body.select) for s in states])


@router.get("/{thread_id}/history")
async def get_history(
    thread_id: str,
    rt: ProcessDep,
    limit: int = Query(10, ge=1, le=1000),
    before: str | None = None,
) -> Response:
    return json_response(await _history(rt, thread_id, limit, before, None, None))


@router.get("/{thread_id}/stream")
async def join_thread_stream(
    thread_id: str,
    rt: ProcessDep,
    stream_mode: list[str] | None = Query(None),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> Response:
    await get_thread(rt, thread_id)
    modes = [m for m in (stream_mode or []) if m != "run_modes"]
    if any(m in ("lifecycle", "state_update") for m in modes):
        raise UnsupportedFieldError(
            "stream_mode: thread streams support 'run_modes' only", param="stream_mode"
        )
    active = await rt.runs.active_runs(thread_id)
    return sse_events(rt, active[0] if active else None, modes or None, last_event_id)
