"""Liveness and readiness (``router``); version and features (``meta``, which
``http.disable_meta`` leaves out)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from dockyard import __version__
from dockyard.api.deps import ProcessDep
from dockyard.api.responses import json_response

router = APIRouter(tags=["ops"])
meta = APIRouter(tags=["ops"])


@router.get("/health")
@router.get("/ok")
async def health() -> dict[str, bool]:
    """The process is alive (it answers); says nothing about its dependencies."""
    return {"ok": True}


@router.get("/ready")
async def ready(rt: ProcessDep) -> Response:
    problems = await rt.ping()
    if problems:
        return json_response(
            {
                "ready": False,
                "code": "not_ready",
                "detail": f"unreachable: {', '.join(sorted(problems))}",
                "problems": problems,
            },
            status_code=503,
        )
    return json_response(
        {"ready": True, "backend": rt.storage.backend, "redis": rt.redis is not None}
    )


@meta.get("/info")
async def info(rt: ProcessDep) -> dict[str, object]:
    http = rt.settings.http
    return {
        "name": "dockyard",
        "version": __version__,
        "graphs": rt.registry.names,
        "storage": rt.storage.backend,
        "flags": {
            "assistants": not http.disable_assistants,
            "crons": not http.disable_runs,
            "store": not http.disable_store,
        },
    }
