"""One attempt at a claimed run: prepare, stream the graph, settle the outcome.

This is the only code path that runs a graph, whether the executor lives in the API
process (embedded default) or in a worker process. Each step is a method, and the run
observers (:mod:`dockyard.runtime.observers`) hear when it started and how it ended.

The executor owns the attempt's cancel state (:mod:`dockyard.runtime.executor`): it
records what a cancel asks for in ``requested`` and cancels the task; the attempt reads
the record to decide what the cancel means.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from dockyard import events
from dockyard.caller import ids as caller_ids
from dockyard.errors import PolicyError, dockyard_cause
from dockyard.policies import tenancy
from dockyard.policies.prices import PriceTable
from dockyard.policies.routing import run_priority
from dockyard.providers.registry import MODELS_KEY, PRIORITY_KEY
from dockyard.run_spec import RunSpec
from dockyard.runtime.broker import StreamBroker, first_event
from dockyard.runtime.gate import UntilFirstCall
from dockyard.runtime.graphs import GraphRegistry
from dockyard.runtime.observers import Observers, Outcome, RunObserver
from dockyard.runtime.serde import dumps, to_jsonable
from dockyard.runtime.translate import EventTranslator, langgraph_modes
from dockyard.runtime.usage import Usage, UsageTally, add_usage
from dockyard.settings import Settings
from dockyard.storage.base import Run, ThreadStatus, UsageRecord, run_spec
from dockyard.storage.checkpoints import WriteKeys
from dockyard.storage.database import Storage
from dockyard.variants import rollout_of

log = logging.getLogger("dockyard.runtime")

# shutdown: hand the run back to the queue; lost: another worker took it over.
CancelAction = Literal["interrupt", "rollback", "shutdown", "lost"]


class Phase(enum.Enum):
    QUEUED = "queued"  # its task exists but has not begun: cancelling the task would lose it
    STARTING = "starting"  # waiting for a place, or preparing
    STREAMING = "streaming"
    SETTLING = "settling"  # its outcome is being stored: a cancel must not cut that short
    DONE = "done"


@dataclass
class RunContext:
    """What every attempt in a process shares."""

    storage: Storage
    registry: GraphRegistry
    broker: StreamBroker
    settings: Settings
    observers: Sequence[RunObserver] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.notify = Observers(self.observers)

    @functools.cached_property
    def prices(self) -> PriceTable:
        """The shipped prices with ``policies.prices`` over them (runtime.usage)."""
        return PriceTable.from_config(self.settings.policies.prices)


def _merge_config(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    out = {**base, **(over or {})}
    for key in ("configurable", "metadata"):
        out[key] = {**base.get(key, {}), **((over or {}).get(key) or {})}
    out["tags"] = [*base.get("tags", []), *((over or {}).get("tags") or [])]
    return out


def build_config(run: Run, spec: RunSpec, assistant: dict[str, Any]) -> RunnableConfig:
    config = _merge_config(assistant["config"], dict(spec.config) if spec.config else None)
    configurable = config["configurable"]
    configurable.update(
        thread_id=run["thread_id"],
        run_id=run["run_id"],
        assistant_id=assistant["assistant_id"],
        graph_id=assistant["graph_id"],
    )
    if checkpoint_id := spec.start_checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    if spec.checkpoint_ns:
        configurable["checkpoint_ns"] = spec.checkpoint_ns
    config["metadata"].update(run["metadata"])
    config["metadata"].update(
        run_id=run["run_id"],
        thread_id=run["thread_id"],
        assistant_id=assistant["assistant_id"],
        graph_id=assistant["graph_id"],
    )
    config["run_id"] = run["run_id"]
    return config  # type: ignore[return-value]


def graph_input(spec: RunSpec) -> Any:
    cmd = spec.command
    if cmd is not None:
        return Command(resume=cmd.resume, update=cmd.update, goto=cmd.goto or ())
    return spec.input


def error_body(exc: BaseException) -> dict[str, Any]:
    """The run's error as recorded and sent: a dockyard error (found under whatever wrapped
    it) with its code, a policy's refusal with the status its callers get too."""
    cause = dockyard_cause(exc)
    if isinstance(cause, PolicyError):
        events.refused(cause)
        return cause.to_run_error()
    if cause is exc:
        return {"error": type(exc).__name__, "message": str(exc), "code": cause.code}
    return {"error": type(exc).__name__, "message": str(exc)}


@dataclass
class Prepared:
    """What streaming needs, once the graph and its config are ready."""

    graph: Any
    config: RunnableConfig
    input: Any
    stream_kwargs: dict[str, Any]
    # The thread's pending writes before the run: what a rollback must keep.
    start: WriteKeys | None


class RunAttempt:
    def __init__(
        self,
        ctx: RunContext,
        run: Run,
        *,
        requested: CancelAction | None = None,
    ) -> None:
        self.ctx = ctx
        self.run = run
        self.spec = run_spec(run)
        self.run_id: str = run["run_id"]
        self.phase = Phase.QUEUED
        # Set by the executor: what a cancel of this attempt means.
        self.requested: CancelAction | None = requested
        asked = run.get("cancel_requested")
        if asked in ("interrupt", "rollback") and requested is None:
            self.requested = asked  # type: ignore[assignment]  # asked before we claimed it
        # The thread goes when the run ends: its checkpoints need not reach storage.
        self.ephemeral = run["temporary"] and self.spec.deletes_thread
        self.usage = Usage()
        self.translator = EventTranslator(self.spec.stream_mode or ("values",), self._publish)
        self.prepared: Prepared | None = None

    def _publish(self, event: str, data: bytes) -> None:
        self.ctx.broker.publish(self.run_id, event, data)

    # -- the whole attempt -----------------------------------------------------------------

    async def execute(self, *, on_first_call: Callable[[], None] | None = None) -> None:
        """Run to an outcome and settle it. A cancel for shutdown (the run goes back to the
        queue) or for a lost lease (another worker has it) propagates unsettled.
        ``on_first_call``: called when the graph first calls a model or a tool
        (runtime.gate: the run stops holding its place there)."""
        self.phase = Phase.STARTING
        try:
            if self.requested is not None:  # cancelled between its claim and its start
                raise asyncio.CancelledError
            prepared = await self.prepare(on_first_call)
            self.ctx.notify.started(self.run)
            await self.stream(prepared)
            outcome = Outcome("success", None, self.translator.last_values)
        except asyncio.CancelledError:
            outcome = await self._cancelled()
        except TimeoutError:
            outcome = self.outcome_of_timeout()
        except Exception as e:  # a graph's failure is the run's outcome, not the server's
            log.warning("run %s failed: %s: %s", self.run_id, type(e).__name__, e)
            outcome = Outcome("error", error_body(e), self.translator.last_values)
        await self.settle(outcome)

    # -- the steps --------------------------------------------------------------------------

    async def prepare(self, on_first_call: Callable[[], None] | None = None) -> Prepared:
        """Announce the attempt, load the assistant and the graph, build the config."""
        run, spec, ctx, broker = self.run, self.spec, self.ctx, self.ctx.broker
        # The first attempt's metadata went out when the run was created. In a shared
        # stream it may not be there yet (this worker claimed the run at once): the
        # same event under the same fixed id, whichever lands first stays. A resumed
        # attempt, or one created by a process whose in-memory events are gone,
        # announces itself. (No Redis round trip here: redis-py lets a cancel
        # landing in one go unseen.)
        if run["attempts"] == 1 and broker.shared:
            broker.announce(self.run_id, "metadata", first_event(self.run_id))
        elif run["attempts"] > 1 or not await broker.has(self.run_id):
            self._publish("metadata", dumps({"run_id": self.run_id, "attempt": run["attempts"]}))
        assistant = await ctx.storage.assistants.get(run["assistant_id"])
        if assistant is None:
            raise LookupError(f"assistant {run['assistant_id']} was deleted before the run started")
        config = build_config(run, spec, dict(assistant))
        # chat_model(...) finds the process's models here, on every call, under the
        # assistant's policies (a client's value under these keys is replaced).
        models = config["configurable"][MODELS_KEY] = ctx.registry.models_for(
            assistant["assistant_id"]
        )
        config["configurable"].pop(PRIORITY_KEY, None)
        context = {**(assistant["context"] or {}), **(spec.context or {})} or None
        if models.router is not None and (priority := run_priority(spec.input, context)):
            config["configurable"][PRIORITY_KEY] = priority
        callbacks: list[Any] = [UsageTally(self.usage, ctx.prices)]
        callbacks += ctx.notify.callbacks(run, self.usage)
        if on_first_call is not None:
            callbacks.append(UntilFirstCall(on_first_call))
        config["callbacks"] = callbacks
        graph = await ctx.registry.get(assistant["graph_id"], config, ephemeral=self.ephemeral)
        # A graph that sets its own limit (deepagents' ``with_config(recursion_limit=...)``:
        # a deep agent takes hundreds of steps) keeps it unless the run or assistant sets one.
        config.setdefault("recursion_limit", (graph.config or {}).get("recursion_limit", 25))
        tenant, _ = caller_ids(run["metadata"])
        if tenant is not None and graph.store is not None:
            # The tenant's graph sees its own store namespaces, as its API requests do.
            graph = graph.copy(update={"store": tenancy.tenant_store(graph.store, tenant)})
        start = None
        if not run["temporary"]:
            start = await ctx.storage.checkpoint_admin.pending_write_keys(run["thread_id"])
        modes = langgraph_modes(spec.stream_mode)
        # Subgraph message chunks are streamed even without stream_subgraphs (as on
        # LangGraph's server); other subgraph chunks are dropped by the translator
        # unless asked for. Asking LangGraph for namespaces costs ~0.3 ms per run,
        # so only when something from a subgraph can go out.
        namespaced = spec.stream_subgraphs or "messages" in modes or "events" in spec.stream_mode
        stream_kwargs: dict[str, Any] = {
            "stream_mode": modes,
            "subgraphs": namespaced,
            "interrupt_before": _nodes(spec.interrupt_before),
            "interrupt_after": _nodes(spec.interrupt_after),
        }
        if context is not None:
            stream_kwargs["context"] = context
        if spec.durability:
            stream_kwargs["durability"] = spec.durability
        elif self.ephemeral:
            # Its checkpoints live in memory and go with its thread: saving each
            # step (~0.4 ms per run) buys nothing; the last one is still saved.
            stream_kwargs["durability"] = "exit"
        self.translator.subgraphs = spec.stream_subgraphs
        self.prepared = Prepared(graph, config, graph_input(spec), stream_kwargs, start)
        return self.prepared

    async def stream(self, p: Prepared) -> None:
        """Stream the graph into the run's events, within the run timeout."""
        self.phase = Phase.STREAMING
        translator = self.translator
        async with asyncio.timeout(self.ctx.settings.runs.timeout_seconds):
            if "events" in self.spec.stream_mode:
                async for ev in p.graph.astream_events(
                    p.input, p.config, version="v2", **p.stream_kwargs
                ):
                    translator.event(dict(ev))
            elif p.stream_kwargs["subgraphs"]:
                async for ns, mode, chunk in p.graph.astream(p.input, p.config, **p.stream_kwargs):
                    translator.chunk(ns, mode, chunk)
            else:
                async for mode, chunk in p.graph.astream(p.input, p.config, **p.stream_kwargs):
                    translator.chunk((), mode, chunk)

    def outcome_of_timeout(self) -> Outcome:
        seconds = self.ctx.settings.runs.timeout_seconds
        error = {"error": "TimeoutError", "message": f"run exceeded {seconds}s"}
        return Outcome("timeout", error, self.translator.last_values)

    async def _cancelled(self) -> Outcome:
        """What a cancel means for this attempt; re-raises when it is not an outcome."""
        action = self.requested or "shutdown"
        if action == "lost":
            raise asyncio.CancelledError
        if action == "shutdown":
            # Hand the run back: it resumes from its last checkpoint, here after a
            # restart or at once in another worker (whose events continue this
            # stream, so a shared stream stays open).
            self.phase = Phase.DONE
            runs = self.ctx.storage.runs
            # What it used so far stays with the run: the next attempt adds to it.
            usage, ledger = self._spent()
            if self.run.get("worker_id"):
                await runs.release(
                    self.run_id,
                    self.run["worker_id"],  # type: ignore[arg-type]
                    usage=usage,
                    ledger=ledger,
                )
            else:
                await runs.finish(
                    self.run_id,
                    status="pending",
                    only_if=("running",),
                    usage=usage,
                    ledger=ledger,
                )
            if not self.ctx.broker.shared:
                self.ctx.broker.close(self.run_id)
            raise asyncio.CancelledError
        return Outcome(
            "interrupted", None, self.translator.last_values, rollback=action == "rollback"
        )

    async def settle(self, outcome: Outcome) -> None:
        """Store the outcome, then send the last events and tell the observers. The outcome
        is stored before the last event goes out: a client that sees the end of the stream
        then reads a settled run and thread."""
        self.phase = Phase.SETTLING
        ctx, run = self.ctx, self.run
        settled = False
        try:
            settled = await self._record(outcome)
        finally:
            self.phase = Phase.DONE
            if self.ephemeral:
                await ctx.registry.ephemeral.adelete_thread(run["thread_id"])
            if settled or not await self._taken_over():
                if outcome.error is not None:
                    self._publish("error", dumps(outcome.error))
                else:
                    # Not an SSE event: runs.wait and join read the final values from it.
                    self._publish("__result__", dumps(outcome.values))
                    # langgraph-sdk ends a stream at `end` (or `error`) without asking
                    # the server for the run's status.
                    end = {"run_id": self.run_id, "status": outcome.status}
                    self._publish("end", dumps(end))
                ctx.broker.close(self.run_id)
            else:
                log.warning(
                    "run %s: taken over by another worker; its outcome is theirs", self.run_id
                )
        if settled:
            ctx.notify.ended(run, outcome, self.usage)

    def _spent(self) -> tuple[dict[str, Any] | None, list[UsageRecord]]:
        """The run's usage with this attempt's added, and this attempt's ledger rows;
        (None, []) when no model was called and no registry prompt used. The run's own
        copy is updated too, so that observers (webhooks) see it."""
        if not self.usage.used:
            return None, []
        run = self.run
        usage = add_usage(run.get("usage"), self.usage)
        run["usage"] = usage
        tenant, key_id = caller_ids(run["metadata"])
        rollout = rollout_of(run["metadata"])
        return usage, self.usage.ledger(
            self.run_id,
            run["assistant_id"],
            tenant_id=tenant,
            key_id=key_id,
            variant=":".join(rollout) if rollout else None,
        )

    async def _record(self, outcome: Outcome) -> bool:
        """Store the run's outcome and the thread's state; False if the run was not ours.
        The run's usage and this attempt's ledger rows go with the outcome, in one
        transaction; when the run itself goes, the ledger rows still do (the spend
        outlives the run)."""
        storage, run, spec = self.ctx.storage, self.run, self.spec
        run_id, thread_id = self.run_id, run["thread_id"]
        usage, ledger = self._spent()
        if self.ephemeral:
            # The stateless run's thread goes, and its runs and checkpoints with it
            # (they were in memory); its spend goes to the ledger in the same transaction.
            await storage.threads.delete(thread_id, ledger=ledger)
            return True
        if outcome.rollback:
            start = self.prepared.start if self.prepared is not None else None
            await storage.checkpoint_admin.delete_run(thread_id, run_id, start)
            await storage.runs.delete(run_id)
            await storage.usage.record(ledger)
        elif not await storage.runs.finish(
            run_id,
            status=outcome.status,
            error=outcome.error,
            only_if=("running",),
            worker_id=run.get("worker_id"),
            usage=usage,
            ledger=ledger,
        ):
            return False
        thread_status: ThreadStatus = "idle"
        interrupts: dict[str, Any] = {}
        values: Any = ...
        last_values = outcome.values
        graph = self.prepared.graph if self.prepared is not None else None
        if outcome.status == "error":
            thread_status = "error"
        elif graph is not None and (
            outcome.rollback
            or outcome.status != "success"
            or spec.has_breakpoints
            or (isinstance(last_values, dict) and "__interrupt__" in last_values)
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
            thread_id, status=thread_status, values=values, interrupts=interrupts
        )
        return True

    async def _taken_over(self) -> bool:
        """Is the run still active under another worker (this one lost its lease)?"""
        try:
            current = await self.ctx.storage.runs.get(self.run_id)
        except Exception:
            return False
        return (
            current is not None
            and current["status"] in ("pending", "running")
            and current["worker_id"] != self.run.get("worker_id")
        )


def _nodes(value: str | tuple[str, ...] | None) -> str | list[str] | None:
    return list(value) if isinstance(value, tuple) else value
