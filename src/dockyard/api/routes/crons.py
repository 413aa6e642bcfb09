"""/runs/crons and /threads/{id}/runs/crons: scheduled runs, as langgraph-sdk's crons client
calls them. Both create calls answer the Cron (the Agent Server's OpenAPI says so; the SDK
annotates them ``-> Run`` but returns the JSON as it comes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from dockyard.api.cron_schemas import CronCount, CronCreate, CronSearch, CronUpdate
from dockyard.api.deps import DockyardProcess, ProcessDep, get_thread
from dockyard.api.responses import json_response, page
from dockyard.errors import InvalidRequestError, NotFoundError
from dockyard.policies import tenancy
from dockyard.run_spec import RunSpec
from dockyard.runtime.crons import run_payload
from dockyard.runtime.service import default_assistant_id, new_id
from dockyard.storage.base import Assistant, Cron
from dockyard.storage.schedule import check_schedule, next_run, zone
from dockyard.storage.sql import utcnow

router = APIRouter(tags=["crons"])


def cron_out(c: Cron, select: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cron_id": c["cron_id"],
        "assistant_id": c["assistant_id"],
        "thread_id": c["thread_id"],
        "on_run_completed": c["on_run_completed"],
        "end_time": c["end_time"],
        "schedule": c["schedule"],
        "timezone": c["timezone"],
        "created_at": c["created_at"],
        "updated_at": c["updated_at"],
        # What each firing sends, so a client sees exactly what will run.
        "payload": run_payload(c),
        "user_id": c["user_id"],
        "next_run_date": c["next_run_date"],
        "metadata": c["metadata"],
        "enabled": c["enabled"],
    }
    if not select:
        return out
    out["now"] = utcnow()
    return {k: v for k, v in out.items() if k in select}


async def _checked_payload(
    rt: DockyardProcess, assistant: Assistant, fields: dict[str, Any]
) -> None:
    # The run path's own checks, now: a cron whose every firing would be
    # refused (unknown node, disallowed webhook host...) is refused at once.
    spec = RunSpec.from_request({**fields, "assistant_id": assistant["assistant_id"]})
    await rt.runs.validate(spec, assistant)


async def _get(rt: DockyardProcess, cron_id: str, action: str = "read") -> Cron:
    flt = await tenancy.authorize("crons", action, {"cron_id": cron_id})
    cron = await rt.storage.crons.get(cron_id)
    if cron is None or not tenancy.allowed(cron["metadata"], flt):
        raise NotFoundError(f"cron {cron_id} not found", code="cron_not_found")
    return cron


def _stateless_only(thread_id: str | None, on_run_completed: str | None) -> None:
    if thread_id is not None and on_run_completed is not None:
        raise InvalidRequestError(
            "on_run_completed applies to stateless crons (POST /runs/crons) only: a thread "
            "cron's runs stay on its thread; remove it",
            param="on_run_completed",
        )


async def _create(rt: DockyardProcess, thread_id: str | None, body: CronCreate) -> Response:
    check_schedule(body.schedule)
    zone(body.timezone)
    if thread_id is not None:
        await get_thread(rt, thread_id)
    _stateless_only(thread_id, body.on_run_completed)
    assistant = await rt.runs.resolve_assistant(body.assistant_id)
    fields = body.run_fields()
    fields.setdefault("stream_mode", ["values"])
    await _checked_payload(rt, assistant, fields)
    value: dict[str, Any] = {
        "payload": fields,
        "schedule": body.schedule,
        "thread_id": thread_id,
        "end_time": body.end_time,
        "metadata": dict(body.metadata or {}),
    }
    await tenancy.authorize("crons", "create", value)
    now = utcnow()
    cron: Cron = {
        "cron_id": new_id(),
        "assistant_id": assistant["assistant_id"],
        "thread_id": thread_id,
        "schedule": body.schedule,
        "timezone": body.timezone,
        "payload": fields,
        # Its runs inherit this: the tenant and key they count against.
        "metadata": tenancy.stamp(value["metadata"]),
        "enabled": body.enabled is not False,
        "end_time": body.end_time,
        "next_run_date": next_run(body.schedule, body.timezone, now, body.end_time),
        "on_run_completed": body.on_run_completed if thread_id is None else None,
        "user_id": None,
        "created_at": now,
        "updated_at": now,
    }
    return json_response(cron_out(await rt.storage.crons.create(cron)))


@router.post("/runs/crons")
async def create_cron(body: CronCreate, rt: ProcessDep) -> Response:
    return await _create(rt, None, body)


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(thread_id: str, body: CronCreate, rt: ProcessDep) -> Response:
    return await _create(rt, thread_id, body)


@router.patch("/runs/crons/{cron_id}")
async def update_cron(cron_id: str, body: CronUpdate, rt: ProcessDep) -> Response:
    current = await _get(rt, cron_id, "update")
    tenancy.check_metadata(body.metadata)
    if body.schedule is not None:
        check_schedule(body.schedule)
    if body.timezone is not None:
        zone(body.timezone)
    _stateless_only(current["thread_id"], body.on_run_completed)
    payload = None
    if changed := body.run_fields():
        payload = {**current["payload"], **changed}
        assistant = await rt.runs.resolve_assistant(current["assistant_id"])
        await _checked_payload(rt, assistant, payload)
    # The SDK sends "end_time": null to clear it and leaves the key out to keep it.
    clear_end_time = "end_time" in body.model_fields_set and body.end_time is None
    cron = await rt.storage.crons.update(
        cron_id,
        now=utcnow(),
        schedule=body.schedule,
        timezone=body.timezone,
        end_time=body.end_time,
        clear_end_time=clear_end_time,
        enabled=body.enabled,
        payload=payload,
        metadata=body.metadata,
        on_run_completed=body.on_run_completed,
    )
    return json_response(cron_out(cron))


@router.delete("/runs/crons/{cron_id}", status_code=204)
async def delete_cron(cron_id: str, rt: ProcessDep) -> Response:
    await _get(rt, cron_id, "delete")
    if not await rt.storage.crons.delete(cron_id):
        raise NotFoundError(f"cron {cron_id} not found", code="cron_not_found")
    return Response(status_code=204)


def _assistant_filter(rt: DockyardProcess, assistant_id: str | None) -> str | None:
    # The SDK documents "assistant ID or graph name", as runs take it.
    if assistant_id is not None and assistant_id in rt.registry:
        return default_assistant_id(assistant_id)
    return assistant_id


@router.post("/runs/crons/search")
async def search_crons(body: CronSearch, rt: ProcessDep) -> Response:
    items = await rt.storage.crons.search(
        assistant_id=_assistant_filter(rt, body.assistant_id),
        thread_id=body.thread_id,
        enabled=body.enabled,
        metadata=await tenancy.search_metadata(
            "crons", body.metadata, {"assistant_id": body.assistant_id, "thread_id": body.thread_id}
        ),
        limit=body.limit + 1,
        offset=body.offset,
        sort_by=body.sort_by,
        sort_order=body.sort_order,
    )
    items, headers = page(items, body.limit, body.offset)
    select: list[str] | None = list(body.select) if body.select else None
    return json_response([cron_out(c, select) for c in items], headers=headers)


@router.post("/runs/crons/count")
async def count_crons(body: CronCount, rt: ProcessDep) -> int:
    return await rt.storage.crons.count(
        assistant_id=_assistant_filter(rt, body.assistant_id),
        thread_id=body.thread_id,
        metadata=await tenancy.search_metadata(
            "crons", body.metadata, {"assistant_id": body.assistant_id, "thread_id": body.thread_id}
        ),
    )
