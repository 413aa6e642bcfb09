"""/prompts: the prompt registry (docs/prompts.md). Reads for any caller the server lets
in; writes (new versions, labels, rollbacks) for admin keys only."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field

from dockyard.api.deps import ProcessDep
from dockyard.api.responses import json_response
from dockyard.api.schemas import Strict
from dockyard.caller import current
from dockyard.policies import tenancy
from dockyard.prompt_template import PromptVersion
from dockyard.prompts.registry import Draft, PromptRegistry

router = APIRouter(tags=["prompts"])


class VersionCreate(Strict):
    type: Literal["text", "chat"]
    template: str | None = None
    messages: list[dict[str, Any]] | None = None
    variables: list[str] | None = None
    sample: dict[str, Any] | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=list)
    message: str = Field(default="", max_length=2000)
    # Only store a version when the content differs from the latest (as `prompts push`).
    if_changed: bool = False


class LabelSet(Strict):
    version: int = Field(ge=1)


class RenderBody(Strict):
    variables: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    version: int | None = Field(default=None, ge=1)


def _registry(rt: ProcessDep) -> PromptRegistry:
    assert rt.prompts is not None  # open_runtime always sets it
    return rt.prompts


def _author() -> str:
    """The admin key's name (its id when it has none): who wrote, never a secret."""
    who = current()
    if who is None:
        return "anonymous"
    return who.name or who.key_id or "anonymous"


async def _shown(registry: PromptRegistry, version: PromptVersion) -> dict[str, Any]:
    labels = await registry.store.labels(version.name)
    latest = await registry.store.get(version.name)
    on_it = sorted(label for label, v in labels.items() if v == version.version)
    if latest is not None and latest.version == version.version:
        on_it.append("latest")
    return {**version.as_dict(), "labels": on_it}


@router.get("/prompts")
async def list_prompts(rt: ProcessDep) -> Response:
    return json_response(await _registry(rt).overview())


@router.get("/prompts/{name}")
async def get_prompt(
    name: str,
    rt: ProcessDep,
    label: str | None = None,
    version: int | None = Query(None, ge=1),
    cached: bool = Query(False, description="what this process's graphs are served now"),
) -> Response:
    """One version: ``?label=`` (default ``latest``) or ``?version=``. With ``cached``, the
    version this process's cache serves (``dockyard.prompt()``), not the database's."""
    registry = _registry(rt)
    if cached and registry.cache is not None:
        served = registry.cache.lookup(name, label, version)
        return json_response({**served.as_dict(), "revision": registry.cache.revision})
    found = await registry.get(name, label=label, version=version)
    return json_response(await _shown(registry, found))


@router.get("/prompts/{name}/versions")
async def list_versions(name: str, rt: ProcessDep) -> Response:
    registry = _registry(rt)
    summary = await registry.summary(name)  # 404 for an unknown name
    versions = [v.as_dict() for v in await registry.store.versions(name)]
    return json_response({**summary, "versions": versions})


@router.get("/prompts/{name}/history")
async def label_history(name: str, rt: ProcessDep, label: str | None = None) -> Response:
    """Every label move (who, when, from which version to which), oldest first."""
    registry = _registry(rt)
    await registry.summary(name)
    return json_response([m.as_dict() for m in await registry.store.history(name, label)])


@router.post("/prompts/{name}/versions")
async def create_version(name: str, body: VersionCreate, rt: ProcessDep) -> Response:
    tenancy.require_admin("pushing prompt versions")
    draft = Draft(
        name=name,
        kind=body.type,
        template=body.template,
        messages=body.messages,
        variables=body.variables,
        sample=body.sample,
        config=body.config,
        labels=tuple(body.labels),
        message=body.message,
    )
    registry = _registry(rt)
    pushed = await registry.push(draft, author=_author(), if_changed=body.if_changed)
    out = {**await _shown(registry, pushed.version), "created": pushed.created}
    return json_response(out, status_code=201 if pushed.created else 200)


@router.put("/prompts/{name}/labels/{label}")
async def set_label(name: str, label: str, body: LabelSet, rt: ProcessDep) -> Response:
    tenancy.require_admin("setting prompt labels")
    move = await _registry(rt).set_label(name, label, body.version, author=_author())
    return json_response(move.as_dict())


@router.post("/prompts/{name}/labels/{label}/rollback")
async def rollback(name: str, label: str, rt: ProcessDep) -> Response:
    """Move the label back to the version it pointed at before its last move."""
    tenancy.require_admin("rolling prompt labels back")
    move = await _registry(rt).rollback(name, label, author=_author())
    return json_response(move.as_dict())


@router.get("/prompts/{name}/diff")
async def diff(name: str, rt: ProcessDep, a: int = Query(ge=1), b: int = Query(ge=1)) -> Response:
    """Version ``b`` against version ``a``, as a unified diff."""
    return json_response(
        {"name": name, "a": a, "b": b, "diff": await _registry(rt).diff(name, a, b)}
    )


@router.post("/prompts/{name}/render")
async def render(name: str, body: RenderBody, rt: ProcessDep) -> Response:
    """The version (``label``, default ``latest``, or ``version``) with ``variables`` in."""
    found, out = await _registry(rt).render(
        name, body.variables, label=body.label, version=body.version
    )
    key = "text" if isinstance(out, str) else "messages"
    return json_response(
        {
            "name": found.name,
            "version": found.version,
            "label": body.label,
            "kind": found.kind,
            key: out,
        }
    )
