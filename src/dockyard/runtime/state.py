"""LangGraph state snapshots in the ThreadState shape langgraph-sdk expects."""

from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from dockyard.runtime.serde import to_jsonable


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
