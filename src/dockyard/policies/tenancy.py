"""Tenant scoping: a caller with a tenant sees only what its tenant made.

What a request creates (threads, runs, crons, assistants) carries its tenant and key in
reserved metadata keys (``dockyard.caller.TENANT_KEY`` / ``KEY_ID_KEY``), stamped here.
Reads check them: a record of another tenant answers exactly as a missing one (404, the
same message), and searches add the tenant to their metadata filter, so another tenant's
records are never listed or counted. An ``admin`` key, and the anonymous caller of an open
server (``auth.required: false`` without a key), see every tenant.

Store namespaces: a tenant's requests and its runs' graphs see the store under the
prefix ("dockyard_tenant", T) without knowing it (``storage/prefixed.py``).

A client cannot forge or change the stamp: metadata it sends with reserved keys of another
tenant is refused (422 ``reserved_metadata``); an admin may set them, to act for a tenant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from langgraph.store.base import BaseStore

from dockyard.caller import KEY_ID_KEY, RESERVED_METADATA, TENANT_KEY, Caller, current
from dockyard.errors import ForbiddenError, InvalidRequestError
from dockyard.policies.project_auth import Filter, as_containment, matches
from dockyard.storage.prefixed import PrefixedStore

R = TypeVar("R", bound=Mapping[str, Any])


def _scoped() -> Caller | None:
    who = current()
    return who if who is not None and who.scoped else None


def visible(metadata: Mapping[str, Any] | None) -> bool:
    """Whether the current caller may see a record with this metadata."""
    who = _scoped()
    return who is None or (metadata or {}).get(TENANT_KEY) == who.tenant


def visible_or_shared(metadata: Mapping[str, Any] | None) -> bool:
    """Assistants: those of no tenant (the graphs' own, an admin's shared ones) are
    everyone's to read and run; a tenant's are its own."""
    tenant = (metadata or {}).get(TENANT_KEY)
    return tenant is None or visible(metadata)


def check_writable(metadata: Mapping[str, Any] | None, what: str) -> None:
    """A shared record (no tenant) is changed by an admin (or an open server) only."""
    who = _scoped()
    if who is not None and (metadata or {}).get(TENANT_KEY) is None:
        raise ForbiddenError(f"{what} is shared by every tenant: only an admin key may change it")


def only_visible(records: Iterable[R]) -> list[R]:
    return [r for r in records if visible(r.get("metadata"))]


def search_filter(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A search's metadata filter, narrowed to the caller's tenant."""
    who = _scoped()
    if who is None:
        return dict(metadata) if metadata is not None else None
    out = dict(metadata or {})
    if out.get(TENANT_KEY, who.tenant) != who.tenant:
        # Asks for another tenant's records: a filter that matches nothing.
        out[TENANT_KEY] = {"$never": True}
        return out
    out[TENANT_KEY] = who.tenant
    return out


def check_metadata(metadata: Mapping[str, Any] | None) -> None:
    """Refuse metadata that would set another tenant's stamp (for creates and updates)."""
    who = current()
    if who is None or who.is_admin or not metadata:
        return
    own = {TENANT_KEY: who.tenant, KEY_ID_KEY: who.key_id}
    for key in RESERVED_METADATA & metadata.keys():
        if metadata[key] != own[key]:
            raise InvalidRequestError(
                f"metadata.{key} is set by dockyard from the API key; remove it",
                code="reserved_metadata",
                param=f"metadata.{key}",
            )


def stamp(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metadata of a record the current caller creates: with its tenant and key."""
    check_metadata(metadata)
    who = current()
    if who is None or (who.is_admin and RESERVED_METADATA & (metadata or {}).keys()):
        return dict(metadata or {})  # anonymous, or an admin acting for a tenant
    return who.stamp(metadata)


def owner_of(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Just the reserved keys of ``metadata``: what a record made for it inherits."""
    return {k: v for k, v in (metadata or {}).items() if k in RESERVED_METADATA}


def require_admin(action: str) -> None:
    """Key management and the like: an admin key only, on an open server too."""
    who = current()
    if who is None or not who.is_admin:
        raise ForbiddenError(f"{action} needs an API key with the admin scope")


def tenant_store(store: BaseStore, tenant: str | None) -> BaseStore:
    """``store`` as ``tenant`` sees it: its namespaces under ("dockyard_tenant", tenant)."""
    return store if tenant is None else PrefixedStore(store, (TENANT_KEY, tenant))


def store_for_caller(store: BaseStore) -> BaseStore:
    return tenant_store(store, tenant_of_caller())


# -- a project's LangGraph auth handlers (policies/project_auth.py) -------------------------


def handlers_on() -> bool:
    who = current()
    return who is not None and who.project_auth is not None


async def authorize(resource: str, action: str, value: dict[str, Any]) -> Filter | None:
    """The project's handler for this action: None (allowed), a filter the records must
    match, or its refusal. ``value`` may come back changed (metadata, a namespace)."""
    who = current()
    if who is None or who.project_auth is None:
        return None
    result: Filter | None = await who.project_auth.authorize(who, resource, action, value)
    return result


def allowed(record_metadata: Mapping[str, Any] | None, flt: Filter | None) -> bool:
    """Whether the caller may act on a record: its tenant's, and the handler's filter."""
    return visible(record_metadata) and matches(record_metadata, flt)


async def search_metadata(
    resource: str, metadata: Mapping[str, Any] | None, value: dict[str, Any]
) -> dict[str, Any] | None:
    """A search's metadata filter: the client's, the caller's tenant, the handler's."""
    flt = await authorize(resource, "search", {"metadata": dict(metadata or {}), **value})
    return with_filter(search_filter(metadata), flt)


def with_filter(metadata: Mapping[str, Any] | None, flt: Filter | None) -> dict[str, Any] | None:
    """A search's metadata filter narrowed by a handler's filter."""
    if not flt:
        return dict(metadata) if metadata is not None else None
    out = dict(metadata or {})
    for key, want in as_containment(flt).items():
        # The client asked for one value, the handler allows another: nothing matches.
        out[key] = want if out.get(key, want) == want else {"$never": True}
    return out


def tenant_of_caller() -> str | None:
    """The tenant the caller is limited to (None: it sees every tenant)."""
    who = _scoped()
    return who.tenant if who is not None else None
