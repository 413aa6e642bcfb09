"""A LangGraph Platform auth file, as its docs write one: bearer tokens name users, each
user sees what it made, the store is per user, some actions need a permission."""

from __future__ import annotations

from typing import Any

from langgraph_sdk import Auth

auth = Auth()

USERS = {
    "token-alice": {"identity": "alice", "permissions": ["runs:create"]},
    "token-bob": {"identity": "bob", "permissions": ["runs:create"]},
    "token-carol": {"identity": "carol", "permissions": []},
}


@auth.authenticate
async def authenticate(
    authorization: str | None, path: str, method: str
) -> Auth.types.MinimalUserDict:
    token = (authorization or "").removeprefix("Bearer ").strip()
    if token not in USERS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="unknown token")
    return USERS[token]  # type: ignore[return-value]


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
    filters = {"owner": ctx.user.identity}
    if isinstance(value.get("metadata"), dict):
        value["metadata"].update(filters)
    return filters


@auth.on.threads.create_run
async def may_run(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any]:
    if "runs:create" not in ctx.permissions:
        raise Auth.exceptions.HTTPException(status_code=403, detail="runs:create needed")
    value["metadata"]["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}


@auth.on.assistants.delete
async def no_deletes(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> bool:
    return False


@auth.on.store
async def own_namespace(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> None:
    namespace = tuple(value.get("namespace") or ())
    value["namespace"] = (ctx.user.identity, *namespace)
