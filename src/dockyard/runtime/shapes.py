"""The Agent Server's resources in the shapes langgraph-sdk parses: assistants, threads,
runs and thread states (``ThreadState``).

The API's routes return them and the runtime sends runs in them (webhook bodies), so they
live below both, with no HTTP in them (``api.responses`` wraps them in responses).
"""

from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from dockyard.runtime.serde import to_jsonable
from dockyard.runtime.webhooks import public_webhook
from dockyard.storage.base import Assistant, Run, Thread


def checkpoint_out(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    c = config.get("configurable", {})
    return {
        "thread_id": c.get("thread_id"),
        "checkpoint_ns": c.get("checkpoint_ns", ""),
        "checkpoint_id": c.get("checkpoint_id"),
        "checkpoint_map": c.get("checkpoint_map"),
    }


def state_out(snap: StateSnapshot) -> dict[str, Any]:
    tasks = []
    for t in snap.tasks:
        sub_state = t.state
        tasks.append(
            {
                "id": t.id,
                "name": t.name,
                "path": list(t.path),
                "error": f"{type(t.error).__name__}: {t.error}" if t.error else None,
                "interrupts": to_jsonable(list(t.interrupts)),
                "checkpoint": checkpoint_out(sub_state) if isinstance(sub_state, dict) else None,
                "state": state_out(sub_state) if isinstance(sub_state, StateSnapshot) else None,
                "result": to_jsonable(t.result),
            }
        )
    return {
        "values": to_jsonable(snap.values),
        "next": list(snap.next),
        "checkpoint": checkpoint_out(snap.config),
        "metadata": to_jsonable(snap.metadata),
        "created_at": snap.created_at,
        "parent_checkpoint": checkpoint_out(snap.parent_config),
        "tasks": tasks,
        "interrupts": to_jsonable(list(snap.interrupts)),
    }


def empty_state(thread_id: str) -> dict[str, Any]:
    return {
        "values": {},
        "next": [],
        "checkpoint": None,
        "metadata": {},
        "created_at": None,
        "parent_checkpoint": None,
        "tasks": [],
        "interrupts": [],
    }


def assistant_out(a: Assistant) -> dict[str, Any]:
    return {
        "assistant_id": a["assistant_id"],
        "graph_id": a["graph_id"],
        "config": a["config"],
        "context": a["context"],
        "metadata": a["metadata"],
        "version": a["version"],
        "name": a["name"],
        "description": a["description"],
        "created_at": a["created_at"],
        "updated_at": a["updated_at"],
    }


def thread_out(t: Thread) -> dict[str, Any]:
    return {
        "thread_id": t["thread_id"],
        "created_at": t["created_at"],
        "updated_at": t["updated_at"],
        "metadata": t["metadata"],
        "status": t["status"],
        "config": {},
        "values": t["values"] if t["values"] is not None else {},
        "interrupts": t["interrupts"] or {},
    }


def run_out(r: Run) -> dict[str, Any]:
    # The quality gate's verdict is stored with the usage (one write as the run settles)
    # and shown beside it.
    usage = r.get("usage")
    quality = usage.get("quality") if usage else None
    if quality is not None:
        usage = {k: v for k, v in usage.items() if k != "quality"}  # type: ignore[union-attr]
    return {
        "run_id": r["run_id"],
        "thread_id": r["thread_id"],
        "assistant_id": r["assistant_id"],
        "created_at": r["created_at"],
        "updated_at": r["updated_at"],
        "status": r["status"],
        "metadata": r["metadata"],
        "multitask_strategy": r["multitask_strategy"],
        # Its origin (observability/origin.py) is dockyard's, not part of the shape.
        "kwargs": r["kwargs"]
        if "origin" not in r["kwargs"]
        else {k: v for k, v in r["kwargs"].items() if k != "origin"},
        "attempts": r["attempts"],
        "started_at": r["started_at"],
        "ended_at": r["ended_at"],
        "error": r["error"],
        "cancel_reason": r["cancel_reason"],
        "webhook": public_webhook(r.get("webhook")),
        # What its model calls used and cost (runtime/usage.py); None: no model call.
        "usage": usage,
        # The quality gate's score, parts, decision and attempts (docs/quality.md); None:
        # no answer of the run was scored.
        "quality": quality,
    }
