"""/keys (admin scope): make, list and revoke API keys; /usage: a tenant's own spend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field

from dockyard.api.deps import ProcessDep
from dockyard.api.responses import json_response
from dockyard.api.schemas import Strict
from dockyard.errors import InvalidRequestError, NotFoundError
from dockyard.policies import tenancy
from dockyard.policies.auth import key_record, new_key, public_key

router = APIRouter(tags=["keys"])


class KeyCreate(Strict):
    tenant: str = Field(min_length=1, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    scopes: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None
    # The key's own limits: {"rate_limit": {"requests_per_minute": 60}}.
    policies: dict[str, Any] = Field(default_factory=dict)


@router.post("/keys")
async def create_key(body: KeyCreate, rt: ProcessDep) -> Response:
    tenancy.require_admin("making API keys")
    expires = body.expires_at
    if expires is not None:
        expires = expires if expires.tzinfo is not None else expires.replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            raise InvalidRequestError("expires_at is in the past", param="expires_at")
    key = new_key()
    row = key_record(
        key,
        tenant=body.tenant,
        name=body.name,
        scopes=body.scopes,
        policies=body.policies,
        expires_at=expires,
    )
    row = await rt.storage.keys.create(row)
    return json_response({**public_key(row), "key": key}, status_code=201)


@router.get("/keys")
async def list_keys(
    rt: ProcessDep, tenant: str | None = None, include_revoked: bool = False
) -> Response:
    tenancy.require_admin("listing API keys")
    rows = await rt.storage.keys.list(tenant=tenant, include_revoked=include_revoked)
    return json_response([public_key(r) for r in rows])


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, rt: ProcessDep) -> Response:
    tenancy.require_admin("revoking API keys")
    if await rt.storage.keys.revoke(key_id, datetime.now(UTC)) is None:
        raise NotFoundError(f"key {key_id} not found", code="key_not_found")
    return Response(status_code=204)


@router.get("/usage")
async def usage(
    rt: ProcessDep,
    by: Literal["model", "assistant", "key", "tenant"] = "model",
    since: datetime | None = None,
    tenant: str | None = Query(None, description="admin keys: one tenant's usage"),
) -> Response:
    """Model usage and cost per UTC day: the caller's tenant's only, unless admin."""
    own = tenancy.tenant_of_caller()
    if own is not None:
        if tenant is not None and tenant != own:
            raise NotFoundError(f"tenant {tenant} not found", code="tenant_not_found")
        tenant = own
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    rows = await rt.storage.usage.summary(by=by, since=since, tenant_id=tenant)
    return json_response([{**r, "day": r["day"].isoformat()} for r in rows])
