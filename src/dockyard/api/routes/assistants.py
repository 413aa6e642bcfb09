"""/assistants: CRUD, search, versions, graph and schemas."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response

from dockyard.api.deps import DockyardProcess, ProcessDep
from dockyard.api.responses import json_response, page, select_fields
from dockyard.api.schemas import (
    AssistantCount,
    AssistantCreate,
    AssistantLatest,
    AssistantSearch,
    AssistantUpdate,
    AssistantVersions,
)
from dockyard.errors import ConflictError, InvalidRequestError, NotFoundError
from dockyard.policies import project_auth, tenancy
from dockyard.runtime.graph_schemas import graph_schemas
from dockyard.runtime.service import new_id
from dockyard.runtime.shapes import assistant_out
from dockyard.sampling import config_problem
from dockyard.storage.base import Assistant

router = APIRouter(prefix="/assistants", tags=["assistants"])


def _check_graph(rt: DockyardProcess, graph_id: str) -> None:
    if graph_id not in rt.registry:
        raise NotFoundError(
            f"graph {graph_id!r} is not declared; declared graphs: {', '.join(rt.registry.names)}",
            code="graph_not_found",
            param="graph_id",
        )


def _check_config(config: dict[str, Any] | None) -> None:
    if problem := config_problem(config):
        raise InvalidRequestError(problem, param="config")


async def _get(
    rt: DockyardProcess,
    assistant_id: str,
    action: str = "read",
    value: dict[str, Any] | None = None,
) -> Assistant:
    flt = await tenancy.authorize("assistants", action, value or {"assistant_id": assistant_id})
    a = await rt.runs.resolve_assistant(assistant_id)
    if not project_auth.matches(a["metadata"], flt):
        raise NotFoundError(f"assistant {assistant_id!r} not found", code="assistant_not_found")
    return a


async def _writable(
    rt: DockyardProcess, assistant_id: str, action: str, value: dict[str, Any] | None = None
) -> Assistant:
    a = await _get(rt, assistant_id, action, value)
    tenancy.check_writable(a["metadata"], f"assistant {a['assistant_id']}")
    return a


# A scoped caller's searches are filtered here, not in SQL ("its own or no tenant's" is
# not a containment filter): up to this many assistants are read per search.
_SCOPED_SEARCH_MAX = 10_000


@router.post("")
async def create_assistant(body: AssistantCreate, rt: ProcessDep) -> Response:
    _check_graph(rt, body.graph_id)
    _check_config(body.config)
    assistant_id = body.assistant_id or new_id()
    value: dict[str, Any] = {
        "assistant_id": assistant_id,
        "graph_id": body.graph_id,
        "config": body.config or {},
        "context": body.context or {},
        "metadata": dict(body.metadata or {}),
        "if_exists": body.if_exists,
        "name": body.name,
        "description": body.description,
    }
    flt = await tenancy.authorize("assistants", "create", value)
    a = await rt.storage.assistants.create(
        assistant_id=assistant_id,
        graph_id=body.graph_id,
        config=body.config or {},
        context=body.context or {},
        metadata=tenancy.stamp(value["metadata"]),
        name=body.name or "Untitled",
        description=body.description,
        if_exists=body.if_exists,
    )
    if not tenancy.visible_or_shared(a["metadata"]) or not project_auth.matches(a["metadata"], flt):
        raise ConflictError(
            f"assistant {a['assistant_id']} is taken; choose another id", code="assistant_exists"
        )
    return json_response(assistant_out(a))


@router.post("/search")
async def search_assistants(body: AssistantSearch, rt: ProcessDep) -> Response:
    scoped = tenancy.tenant_of_caller() is not None
    items = await rt.storage.assistants.search(
        graph_id=body.graph_id,
        name=body.name,
        metadata=await _search_metadata(body.metadata, body.graph_id),
        limit=_SCOPED_SEARCH_MAX if scoped else body.limit + 1,
        offset=0 if scoped else body.offset,
        sort_by=body.sort_by,
        sort_order=body.sort_order,
    )
    if scoped:
        mine = [a for a in items if tenancy.visible_or_shared(a["metadata"])]
        items = mine[body.offset : body.offset + body.limit + 1]
    items, headers = page(items, body.limit, body.offset)
    out = [select_fields(assistant_out(a), body.select) for a in items]
    return json_response(out, headers=headers)


@router.post("/count")
async def count_assistants(body: AssistantCount, rt: ProcessDep) -> int:
    if tenancy.tenant_of_caller() is not None:
        items = await rt.storage.assistants.search(
            graph_id=body.graph_id,
            name=body.name,
            metadata=await _search_metadata(body.metadata, body.graph_id),
            limit=_SCOPED_SEARCH_MAX,
        )
        return sum(1 for a in items if tenancy.visible_or_shared(a["metadata"]))
    return await rt.storage.assistants.count(
        graph_id=body.graph_id,
        name=body.name,
        metadata=await _search_metadata(body.metadata, body.graph_id),
    )


async def _search_metadata(
    metadata: dict[str, Any] | None, graph_id: str | None
) -> dict[str, Any] | None:
    """The client's filter and the project's auth handler's (assistants are not tenant
    filtered in SQL: shared ones are everyone's)."""
    flt = await tenancy.authorize(
        "assistants", "search", {"metadata": dict(metadata or {}), "graph_id": graph_id}
    )
    return tenancy.with_filter(metadata, flt)


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: str, rt: ProcessDep) -> Response:
    return json_response(assistant_out(await _get(rt, assistant_id)))


@router.patch("/{assistant_id}")
async def update_assistant(assistant_id: str, body: AssistantUpdate, rt: ProcessDep) -> Response:
    value: dict[str, Any] = {"assistant_id": assistant_id, "metadata": dict(body.metadata or {})}
    current = await _writable(rt, assistant_id, "update", value)
    metadata: dict[str, Any] | None = value["metadata"]
    if body.metadata is None and not metadata:
        metadata = None
    tenancy.check_metadata(metadata)
    if body.graph_id is not None:
        _check_graph(rt, body.graph_id)
    _check_config(body.config)
    a = await rt.storage.assistants.update(
        current["assistant_id"],
        graph_id=body.graph_id,
        config=body.config,
        context=body.context,
        metadata=metadata,
        name=body.name,
        description=body.description,
    )
    return json_response(assistant_out(a))


@router.delete("/{assistant_id}", status_code=204)
async def delete_assistant(
    assistant_id: str, rt: ProcessDep, delete_threads: bool = False
) -> Response:
    current = await _writable(rt, assistant_id, "delete")
    if delete_threads:
        raise InvalidRequestError(
            "delete_threads is not supported; delete the threads with DELETE /threads/{id}",
            code="unsupported_field",
            param="delete_threads",
        )
    await rt.storage.assistants.delete(current["assistant_id"])
    return Response(status_code=204)


@router.post("/{assistant_id}/versions")
async def assistant_versions(
    assistant_id: str, body: AssistantVersions, rt: ProcessDep
) -> Response:
    current = await _get(rt, assistant_id)
    versions = await rt.storage.assistants.versions(
        current["assistant_id"], metadata=body.metadata, limit=body.limit + 1, offset=body.offset
    )
    versions, headers = page(versions, body.limit, body.offset)
    return json_response(versions, headers=headers)


@router.post("/{assistant_id}/latest")
async def set_latest(assistant_id: str, body: AssistantLatest, rt: ProcessDep) -> Response:
    current = await _writable(rt, assistant_id, "update")
    a = await rt.storage.assistants.set_latest(current["assistant_id"], body.version)
    return json_response(assistant_out(a))


@router.get("/{assistant_id}/graph")
async def assistant_graph(assistant_id: str, rt: ProcessDep, xray: int | bool = False) -> Any:
    a = await _get(rt, assistant_id)
    graph = await rt.registry.get(a["graph_id"])
    drawable = await graph.aget_graph(xray=xray)
    return drawable.to_json()


async def _schemas(graph: Any, graph_id: str) -> dict[str, Any]:
    # Off the event loop: a graph's first description takes pydantic a while.
    return {"graph_id": graph_id, **await asyncio.to_thread(graph_schemas, graph)}


@router.get("/{assistant_id}/schemas")
async def assistant_schemas(assistant_id: str, rt: ProcessDep) -> Response:
    a = await _get(rt, assistant_id)
    graph = await rt.registry.get(a["graph_id"])
    return json_response(await _schemas(graph, a["graph_id"]))


@router.get("/{assistant_id}/subgraphs")
@router.get("/{assistant_id}/subgraphs/{namespace}")
async def assistant_subgraphs(
    assistant_id: str, rt: ProcessDep, namespace: str | None = None, recurse: bool = False
) -> Response:
    a = await _get(rt, assistant_id)
    graph = await rt.registry.get(a["graph_id"])
    out = {
        ns: await _schemas(sub, a["graph_id"])
        async for ns, sub in graph.aget_subgraphs(namespace=namespace, recurse=recurse)
    }
    return json_response(out)
