"""Execute one claimed run: build its config, stream the graph, record the outcome.

This is the only code path that runs a graph, whether the executor lives in
the API process (embedded default) or in a worker process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from dockyard.errors import PolicyError, dockyard_cause
from dockyard.providers.registry import MODELS_KEY
from dockyard.runtime.events import EventTranslator, langgraph_modes
from dockyard.runtime.gate import UntilFirstCall
from dockyard.runtime.graphs import GraphRegistry
from dockyard.runtime.serde import dumps, to_jsonable
from dockyard.runtime.stream import StreamBroker, first_event
from dockyard.settings import Settings
from dockyard.storage.base import Run, RunStatus, ThreadStatus
from dockyard.storage.checkpoints import WriteKeys
from dockyard.storage.database import Storage

if TYPE_CHECKING:
    from dockyard.runtime.webhooks import WebhookDispatcher

log = logging.getLogger("dockyard.runtime")

# shutdown: hand the run back to the queue; lost: another worker took it over.
CancelAction = Literal["interrupt", "rollback", "shutdown", "lost"]


@dataclass
class RunContext:
    storage: Storage
    registry: GraphRegistry
    broker: StreamBroker
    settings: Settings
    webhooks: WebhookDispatcher | None = None
    # Runs whose outcome is being recorded: a cancel (or a heartbeat that no
    # longer sees them running) must not interrupt that half-way.
    settling: set[str] = field(default_factory=set)


def _merge_config(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    out = {**base, **(over or {})}
    for key in ("configurable", "metadata"):
        out[key] = {**base.get(key, {}), **((over or {}).get(key) or {})}
    out["tags"] = [*base.get("tags", []), *((over or {}).get("tags") or [])]
    return out


def build_config(run: Run, assistant: dict[str, Any]) -> RunnableConfig:
    kw = run["kwargs"]
    config = _merge_config(assistant["config"], kw.get("config"))
    configurable = config["configurable"]
    configurable.update(
        thread_id=run["thread_id"],
        run_id=run["run_id"],
        assistant_id=assistant["assistant_id"],
        graph_id=assistant["graph_id"],
    )
    checkpoint = kw.get("checkpoint") or {}
    checkpoint_id = kw.get("checkpoint_id") or checkpoint.get("checkpoint_id")
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    if checkpoint.get("checkpoint_ns"):
        configurable["checkpoint_ns"] = checkpoint["checkpoint_ns"]
    config["metadata"].update(run["metadata"])
    config["metadata"].update(
        run_id=run["run_id"],
        thread_id=run["thread_id"],
        assistant_id=assistant["assistant_id"],
        graph_id=assistant["graph_id"],
    )
    config["run_id"] = run["run_id"]
    if "recursion_limit" not in config:
        config["recursion_limit"] = 25
    return config  # type: ignore[return-value]


def _graph_input(kw: dict[str, Any]) -> Any:
    cmd = kw.get("command")
    if cmd:
        return Command(
            resume=cmd.get("resume"),
            update=cmd.get("update"),
            goto=cmd.get("goto") or (),
        )
    return kw.get("input")


def _error_body(exc: BaseException) -> dict[str, Any]:
    """The run's error as recorded and sent: a dockyard error (found under whatever wrapped
    it) with its code, a policy's refusal with the status its callers get too."""
    cause = dockyard_cause(exc)
    if isinstance(cause, PolicyError):
        return cause.to_run_error()
    if cause is exc:
        return {"error": type(exc).__name__, "message": str(exc), "code": cause.code}
    return {"error": type(exc).__name__, "message": str(exc)}


async def execute_run(
    ctx: RunContext,
    run: Run,
    cancel_action: dict[str, CancelAction],
    *,
    on_first_call: Callable[[], None] | None = None,
) -> None:
    """Run ``run`` to its outcome. ``on_first_call``: called when the graph first calls
    a model or a tool (runtime.gate: the run stops holding its place there)."""
    storage, broker = ctx.storage, ctx.broker
    run_id = run["run_id"]
    kw = run["kwargs"]
    requested: list[str] = kw.get("stream_mode") or ["values"]

    def publish(event: str, data: bytes) -> None:
        broker.publish(run_id, event, data)

    translator = EventTranslator(requested, publish)
    # The thread goes when the run ends: its checkpoints need not reach storage.
    ephemeral = run["temporary"] and kw.get("on_completion", "delete") == "delete"
    status: RunStatus = "success"
    error: dict[str, Any] | None = None
    rollback = False
    graph = None
    config: RunnableConfig | None = None
    start: WriteKeys | None = None
    try:
        asked = run.get("cancel_requested")
        if asked in ("interrupt", "rollback"):  # asked before we claimed it
            cancel_action.setdefault(run_id, asked)  # type: ignore[arg-type]
        if run_id in cancel_action:  # cancelled between its claim and its start
            raise asyncio.CancelledError
        # The first attempt's metadata went out when the run was created. In a shared
        # stream it may not be there yet (this worker claimed the run at once): the
        # same event under the same fixed id, whichever lands first stays. A resumed
        # attempt, or one created by a process whose in-memory events are gone,
        # announces itself. (No Redis round trip here: redis-py lets a cancel
        # landing in one go unseen.)
        if run["attempts"] == 1 and broker.shared:
            broker.announce(run_id, "metadata", first_event(run_id))
        elif run["attempts"] > 1 or not await broker.has(run_id):
            publish("metadata", dumps({"run_id": run_id, "attempt": run["attempts"]}))
        assistant = await storage.assistants.get(run["assistant_id"])
        if assistant is None:
            raise LookupError(f"assistant {run['assistant_id']} was deleted before the run started")
        config = build_config(run, dict(assistant))
        # chat_model(...) finds the process's models here, on every call (a client's
        # value under this key is replaced).
        config["configurable"][MODELS_KEY] = ctx.registry.models
        if on_first_call is not None:
            config["callbacks"] = [UntilFirstCall(on_first_call)]
        graph = await ctx.registry.get(assistant["graph_id"], config, ephemeral=ephemeral)
        if not run["temporary"]:
            start = await storage.checkpoint_admin.pending_write_keys(run["thread_id"])
        context = {**(assistant["context"] or {}), **(kw.get("context") or {})} or None
        subgraphs = bool(kw.get("stream_subgraphs"))
        modes = langgraph_modes(requested)
        # Subgraph message chunks are streamed even without stream_subgraphs (as on
        # LangGraph's server); other subgraph chunks are dropped by the translator
        # unless asked for. Asking LangGraph for namespaces costs ~0.3 ms per run,
        # so only when something from a subgraph can go out.
        namespaced = subgraphs or "messages" in modes or "events" in requested
        stream_kwargs: dict[str, Any] = {
            "stream_mode": modes,
            "subgraphs": namespaced,
            "interrupt_before": kw.get("interrupt_before"),
            "interrupt_after": kw.get("interrupt_after"),
        }
        if context is not None:
            stream_kwargs["context"] = context
        if kw.get("durability"):
            stream_kwargs["durability"] = kw["durability"]
        elif ephemeral:
            # Its checkpoints live in memory and go with its thread: saving each
            # step (~0.4 ms per run) buys nothing; the last one is still saved.
            stream_kwargs["durability"] = "exit"
        translator.subgraphs = subgraphs
        timeout = ctx.settings.runs.timeout_seconds
        graph_input = _graph_input(kw)
        async with asyncio.timeout(timeout):
            if "events" in requested:
                async for ev in graph.astream_events(
                    graph_input, config, version="v2", **stream_kwargs
                ):
                    translator.event(dict(ev))
            elif namespaced:
                async for ns, mode, chunk in graph.astream(graph_input, config, **stream_kwargs):
                    translator.chunk(ns, mode, chunk)
            else:
                async for mode, chunk in graph.astream(graph_input, config, **stream_kwargs):
                    translator.chunk((), mode, chunk)
    except asyncio.CancelledError:
        action = cancel_action.get(run_id, "shutdown")
        if action == "lost":
            raise
        if action == "shutdown":
            # Hand the run back: it resumes from its last checkpoint, here after
            # a restart or at once in another worker (whose events continue
            # this stream, so a shared stream stays open).
            if run.get("worker_id"):
                await storage.runs.release(run_id, run["worker_id"])  # type: ignore[arg-type]
            else:
                await storage.runs.finish(run_id, status="pending", only_if=("running",))
            if not broker.shared:
                broker.close(run_id)
            raise
        status = "interrupted"
        rollback = action == "rollback"
    except TimeoutError:
        status = "timeout"
        error = {
            "error": "TimeoutError",
            "message": f"run exceeded {ctx.settings.runs.timeout_seconds}s",
        }
    except Exception as e:  # a graph's failure is the run's outcome, not the server's
        log.warning("run %s failed: %s: %s", run_id, type(e).__name__, e)
        status, error = "error", _error_body(e)
    # The outcome is stored before the last event goes out: a client that
    # sees the end of the stream then reads a settled run and thread.
    settled = False
    ctx.settling.add(run_id)
    try:
        settled = await _record_outcome(
            ctx, run, status, error, rollback, translator.last_values, graph, config, start
        )
    finally:
        ctx.settling.discard(run_id)
        if ephemeral:
            await ctx.registry.ephemeral.adelete_thread(run["thread_id"])
        if settled or not await _taken_over(ctx, run):
            if error is not None:
                publish("error", dumps(error))
            else:
                # Not an SSE event: runs.wait and join read the final values from it.
                publish("__result__", dumps(translator.last_values))
                # langgraph-sdk ends a stream at `end` (or `error`) without asking
                # the server for the run's status.
                publish("end", dumps({"run_id": run_id, "status": status}))
            broker.close(run_id)
        else:
            log.warning("run %s: taken over by another worker; its outcome is theirs", run_id)
    if settled and ctx.webhooks is not None:
        ctx.webhooks.run_ended(run, status, error, translator.last_values)


async def _record_outcome(
    ctx: RunContext,
    run: Run,
    status: RunStatus,
    error: dict[str, Any] | None,
    rollback: bool,
    last_values: Any,
    graph: Any,
    config: RunnableConfig | None,
    start: WriteKeys | None,
) -> bool:
    """Store the run's outcome and the thread's state; False if the run was not ours to settle."""
    storage = ctx.storage
    run_id, thread_id = run["run_id"], run["thread_id"]
    kw = run["kwargs"]
    if run["temporary"] and kw.get("on_completion", "delete") == "delete":
        # The stateless run's thread goes, and its runs and checkpoints with it.
        await storage.threads.delete(thread_id)  # its checkpoints were in memory
        return True
    if rollback:
        await storage.checkpoint_admin.delete_run(thread_id, run_id, start)
        await storage.runs.delete(run_id)
    elif not await storage.runs.finish(
        run_id, status=status, error=error, only_if=("running",), worker_id=run.get("worker_id")
    ):
        return False
    thread_status: ThreadStatus = "idle"
    interrupts: dict[str, Any] = {}
    values: Any = ...
    if status == "error":
        thread_status = "error"
    elif (
        graph is not None
        and config is not None
        and (
            rollback
            or status != "success"
            or kw.get("interrupt_before")
            or kw.get("interrupt_after")
            or (isinstance(last_values, dict) and "__interrupt__" in last_values)
        )
    ):
        state_config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        state = await graph.aget_state(state_config)
        values = to_jsonable(state.values) if state.values is not None else None
        if state.next:
            thread_status = "interrupted"
        for task in state.tasks:
            if task.interrupts:
                interrupts[task.id] = to_jsonable(list(task.interrupts))
    if values is ... and last_values is not None:
        lv = dict(last_values) if isinstance(last_values, dict) else last_values
        if isinstance(lv, dict):
            lv.pop("__interrupt__", None)
        values = to_jsonable(lv)
    if await storage.runs.active(thread_id):
        thread_status = "busy"
    await storage.threads.set_state(
        thread_id,
        status=thread_status,
        values=values,
        interrupts=interrupts,
    )
    return True


async def _taken_over(ctx: RunContext, run: Run) -> bool:
    """Is the run still active under another worker (this one lost its lease)?"""
    try:
        current = await ctx.storage.runs.get(run["run_id"])
    except Exception:
        return False
    return (
        current is not None
        and current["status"] in ("pending", "running")
        and current["worker_id"] != run.get("worker_id")
    )
