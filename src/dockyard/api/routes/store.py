"""/store: LangGraph's key-value store with namespaces, TTL and search."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Response
from langgraph.store.base import BaseStore, Item, SearchItem

from dockyard.api.deps import DockyardProcess, ProcessDep
from dockyard.api.responses import json_response, page
from dockyard.api.schemas import StoreItemDelete, StoreItemPut, StoreNamespaces, StoreSearch
from dockyard.errors import InvalidRequestError, NotFoundError
from dockyard.policies import tenancy

router = APIRouter(prefix="/store", tags=["store"])

T = TypeVar("T")


async def _checked(call: Awaitable[T]) -> T:
    """LangGraph's store raises ValueError for bad input (a dotted namespace
    label, an unknown filter operator): that is the client's mistake, not a 500."""
    try:
        return await call
    except ValueError as e:
        raise InvalidRequestError(f"store refused the request: {e}") from e


def _store(rt: DockyardProcess) -> BaseStore:
    """The store as the caller's tenant sees it (its own namespaces only)."""
    return tenancy.store_for_caller(rt.storage.store)


async def _authorize(action: str, value: dict[str, Any]) -> dict[str, Any]:
    """The project's store handler for ``action``: it may change the namespace (to put
    the user's id in front, as LangGraph's examples do) or refuse; returns ``value``."""
    if tenancy.handlers_on():
        if await tenancy.authorize("store", action, value):
            raise TypeError(
                f"the store.{action} auth handler returned a filter: store handlers change "
                "value['namespace'] or refuse, they cannot filter"
            )
        ns = value.get("namespace")
        if ns is not None:
            value["namespace"] = _check_namespace(list(ns))
    return value


def _utc(value: datetime) -> datetime:
    # The SQLite store keeps naive UTC timestamps; clients need the offset.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _check_namespace(namespace: list[str]) -> tuple[str, ...]:
    if not namespace:
        raise InvalidRequestError("namespace: must have at least one label", param="namespace")
    for label in namespace:
        if not label or "." in label:
            raise InvalidRequestError(
                f"namespace label {label!r}: labels must be non-empty and contain no '.'",
                param="namespace",
            )
    return tuple(namespace)


def _operators(flt: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{"k": v}`` as ``{"k": {"$eq": v}}``: the SQLite store has a looser path of its
    own for the short form, and the operator form means the same on every backend."""
    if flt is None:
        return None
    return {k: v if isinstance(v, dict) else {"$eq": v} for k, v in flt.items()}


def _item_out(item: Item | SearchItem) -> dict[str, Any]:
    out: dict[str, Any] = {
        "namespace": list(item.namespace),
        "key": item.key,
        "value": item.value,
        "created_at": _utc(item.created_at),
        "updated_at": _utc(item.updated_at),
    }
    if isinstance(item, SearchItem):
        out["score"] = item.score
    return out


@router.put("/items", status_code=204)
async def put_item(body: StoreItemPut, rt: ProcessDep) -> Response:
    ns = _check_namespace(body.namespace)
    value: dict[str, Any] = {
        "namespace": ns,
        "key": body.key,
        "value": body.value,
        "index": body.index,
    }
    ns = (await _authorize("put", value))["namespace"]
    kwargs: dict[str, Any] = {}
    if body.ttl is not None:
        kwargs["ttl"] = body.ttl
    if body.index is not None:
        if body.index is not False and rt.settings.store.index is None:
            raise InvalidRequestError(
                "index: this server's store has no embedding index configured; set "
                "store.index in dockyard.yaml or drop the field",
                param="index",
            )
        kwargs["index"] = body.index
    await _checked(_store(rt).aput(ns, body.key, value["value"], **kwargs))
    return Response(status_code=204)


@router.get("/items")
async def get_item(
    rt: ProcessDep,
    namespace: str = Query(...),
    key: str = Query(...),
    refresh_ttl: bool | None = None,
) -> Response:
    ns = _check_namespace(namespace.split("."))
    ns = (await _authorize("get", {"namespace": ns, "key": key}))["namespace"]
    item = await _store(rt).aget(ns, key, refresh_ttl=refresh_ttl)
    if item is None:
        raise NotFoundError(f"no item {key!r} in namespace {namespace!r}", code="item_not_found")
    return json_response(_item_out(item))


@router.delete("/items", status_code=204)
async def delete_item(body: StoreItemDelete, rt: ProcessDep) -> Response:
    ns = _check_namespace(body.namespace)
    ns = (await _authorize("delete", {"namespace": ns, "key": body.key}))["namespace"]
    await _store(rt).adelete(ns, body.key)
    return Response(status_code=204)


@router.post("/items/search")
async def search_items(body: StoreSearch, rt: ProcessDep) -> Response:
    if body.query and rt.settings.store.index is None:
        raise InvalidRequestError(
            "query: semantic search needs an embedding index; set store.index in "
            "dockyard.yaml, or search with filter only",
            param="query",
        )
    value: dict[str, Any] = {
        "namespace": tuple(body.namespace_prefix),
        "filter": body.filter,
        "limit": body.limit,
        "offset": body.offset,
        "query": body.query,
    }
    # A prefix may be empty: not checked as a namespace.
    if tenancy.handlers_on() and await tenancy.authorize("store", "search", value):
        raise TypeError("the store.search auth handler returned a filter")
    # One row past the page says whether a next page exists; it counts as read (its
    # TTL is refreshed with the page's).
    items = await _checked(
        _store(rt).asearch(
            tuple(value["namespace"]),
            query=body.query,
            filter=_operators(body.filter),
            limit=body.limit + 1,
            offset=body.offset,
            refresh_ttl=body.refresh_ttl,
        )
    )
    items, headers = page(items, body.limit, body.offset)
    return json_response({"items": [_item_out(i) for i in items]}, headers=headers)


@router.post("/namespaces")
async def list_namespaces(body: StoreNamespaces, rt: ProcessDep) -> Response:
    value: dict[str, Any] = {
        "namespace": tuple(body.prefix) if body.prefix else None,
        "suffix": tuple(body.suffix) if body.suffix else None,
        "max_depth": body.max_depth,
        "limit": body.limit,
        "offset": body.offset,
    }
    if tenancy.handlers_on() and await tenancy.authorize("store", "list_namespaces", value):
        raise TypeError("the store.list_namespaces auth handler returned a filter")
    namespaces = await _checked(
        _store(rt).alist_namespaces(
            prefix=tuple(value["namespace"]) if value["namespace"] else None,
            suffix=tuple(body.suffix) if body.suffix else None,
            max_depth=body.max_depth,
            limit=body.limit + 1,
            offset=body.offset,
        )
    )
    namespaces, headers = page(namespaces, body.limit, body.offset)
    return json_response({"namespaces": [list(n) for n in namespaces]}, headers=headers)
