"""POST /chat: the simplest way to talk to an agent, one conversation per user session.

``{user_id, session_id, message, assistant_id?}`` → ``{reply, thread_id, run_id,
interrupt?}``. Each (user_id, session_id) pair owns one thread, whose id is derived from
the pair (uuid5), so the conversation continues without the client keeping any id; the
thread's metadata records both. A session stays with the graph it started on.

``assistant_id`` (an assistant id or a graph name) may be left out only when the project
declares exactly one graph. When the graph stops at an interrupt, ``interrupt`` holds
``{"id", "value"}`` and the session's next ``message`` answers it (its text, or the JSON it
holds when it is a JSON object or array).
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from dockyard.api.conversation import (
    find_thread,
    outcome_of,
    pending_interrupts,
    resume_command,
    start_run,
    state_messages,
)
from dockyard.api.deps import DockyardProcess, ProcessDep
from dockyard.api.responses import json_response
from dockyard.errors import InvalidRequestError
from dockyard.policies import tenancy
from dockyard.storage.base import Assistant

router = APIRouter(tags=["chat"])

# Fixed: a session's thread id is the same on every server and after every restart.
_SESSION_NS = uuid.UUID("0b7f3c1e-5d0a-5f4e-9d55-6b8f1f2a9c33")

Key = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Key
    session_id: Key
    message: Annotated[str, StringConstraints(min_length=1)]
    assistant_id: Key | None = None


class ChatReply(BaseModel):
    reply: str
    thread_id: str
    run_id: str
    interrupt: dict[str, Any] | None = Field(
        default=None, description="the pending interrupt {id, value}; absent when none"
    )


def session_thread_id(user_id: str, session_id: str) -> str:
    """The thread of one user's session: deterministic, and never shared between pairs
    (nor between tenants: the same user id in two tenants is two people)."""
    tenant = tenancy.tenant_of_caller()
    key = [user_id, session_id] if tenant is None else [tenant, user_id, session_id]
    return str(uuid.uuid5(_SESSION_NS, json.dumps(key)))


async def _assistant(rt: DockyardProcess, assistant_id: str | None) -> Assistant:
    if assistant_id is not None:
        return await rt.runs.resolve_assistant(assistant_id)
    names = rt.registry.names
    if len(names) != 1:
        raise InvalidRequestError(
            f"assistant_id is required: this project declares {len(names)} graphs "
            f"({', '.join(names)}); name one of them or an assistant id",
            code="assistant_required",
            param="assistant_id",
        )
    return await rt.runs.resolve_assistant(names[0])


@router.post("/chat", response_model=ChatReply, response_model_exclude_none=True)
async def chat(body: ChatRequest, rt: ProcessDep) -> Response:
    assistant = await _assistant(rt, body.assistant_id)
    thread_id = session_thread_id(body.user_id, body.session_id)
    thread = await find_thread(rt, thread_id, assistant)
    metadata = {"user_id": body.user_id, "session_id": body.session_id}
    values = thread["values"] if thread is not None else None
    known = {str(m["id"]) for m in state_messages(values) if m.get("id")}
    if thread is not None and pending_interrupts(thread):
        run = await start_run(
            rt,
            assistant,
            thread_id,
            command=resume_command(thread, body.message),
            metadata=metadata,
        )
    else:
        message = {"role": "user", "content": body.message, "id": str(uuid.uuid4())}
        known.add(message["id"])
        run = await start_run(
            rt,
            assistant,
            thread_id,
            graph_input={"messages": [message]},
            metadata=metadata,
            new_thread=None if thread is not None else {**metadata, "created_by": "chat"},
        )
    out = await outcome_of(rt, run, known)
    out.raise_for_error()
    result: dict[str, Any] = {"reply": out.text, "thread_id": thread_id, "run_id": run["run_id"]}
    if out.interrupts:
        first = out.interrupts[0]
        result["interrupt"] = {"id": first.get("id"), "value": first.get("value")}
    return json_response(result)
