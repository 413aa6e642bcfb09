"""/rollouts (admin scope): gradual rollouts (docs/rollouts.md), as ``dockyard rollout``
shows and changes them, and rollouts made over the API."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import Field

from dockyard.api.deps import ProcessDep
from dockyard.api.responses import json_response
from dockyard.api.schemas import Strict
from dockyard.caller import current
from dockyard.policies import tenancy
from dockyard.rollouts import RolloutManager
from dockyard.settings import RolloutConfig

router = APIRouter(tags=["rollouts"])


class RolloutCreate(RolloutConfig):
    name: str = Field(min_length=1, max_length=128)


class AbortBody(Strict):
    reason: str | None = Field(default=None, max_length=2000)


def _manager(rt: ProcessDep) -> RolloutManager:
    assert rt.rollouts is not None  # open_runtime always sets it
    return rt.rollouts


def _who() -> str:
    """The admin key's name (its id when it has none), never a secret."""
    who = current()
    if who is None:
        return "anonymous"
    return who.name or who.key_id or "anonymous"


@router.get("/rollouts")
async def list_rollouts(rt: ProcessDep) -> Response:
    """Every rollout with each variant's numbers over its window."""
    tenancy.require_admin("reading rollouts")
    return json_response(await _manager(rt).status())


@router.get("/rollouts/{name}")
async def get_rollout(name: str, rt: ProcessDep) -> Response:
    tenancy.require_admin("reading rollouts")
    return json_response((await _manager(rt).status(name))[0])


@router.post("/rollouts", status_code=201)
async def create_rollout(body: RolloutCreate, rt: ProcessDep) -> Response:
    """Start a rollout (one of the same name made over the API is replaced)."""
    tenancy.require_admin("starting rollouts")
    config = RolloutConfig.model_validate(body.model_dump(exclude={"name"}))
    record = await _manager(rt).start(body.name, config, by=_who())
    return json_response(record.as_dict(), status_code=201)


@router.post("/rollouts/{name}/promote")
async def promote_rollout(name: str, rt: ProcessDep) -> Response:
    tenancy.require_admin("promoting rollouts")
    return json_response((await _manager(rt).promote(name, by=_who())).as_dict())


@router.post("/rollouts/{name}/abort")
async def abort_rollout(name: str, rt: ProcessDep, body: AbortBody | None = None) -> Response:
    tenancy.require_admin("aborting rollouts")
    reason = body.reason if body is not None else None
    return json_response((await _manager(rt).abort(name, by=_who(), reason=reason)).as_dict())
