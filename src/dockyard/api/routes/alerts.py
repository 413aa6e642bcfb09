"""/alerts (admin scope): the alert history, as ``dockyard alerts list`` shows it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Query, Response

from dockyard.api.deps import ProcessDep
from dockyard.api.responses import json_response
from dockyard.policies import tenancy
from dockyard.runtime.alerting import alert_store

router = APIRouter(tags=["alerts"])


@router.get("/alerts")
async def list_alerts(
    rt: ProcessDep,
    since: datetime | None = Query(None, description="started at or after (UTC unless given)"),
    state: Literal["firing", "resolved"] | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    """Alerts, newest first."""
    tenancy.require_admin("reading alerts")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    rows = await alert_store(rt.storage.engine).history(since=since, state=state, limit=limit)
    return json_response([r.as_dict() for r in rows])
