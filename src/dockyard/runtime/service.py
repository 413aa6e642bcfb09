"""Run lifecycle operations the API calls: create (with multitask strategy), cancel, join."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from dockyard import caller
from dockyard.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PolicyError,
)
from dockyard.observability.origin import capture as run_origin
from dockyard.policies import tenancy
from dockyard.run_spec import RunSpec
from dockyard.runtime.admission import Admission
from dockyard.runtime.assistants import configured_assistant_id, ensure_configured_assistants
from dockyard.runtime.attempt import CancelAction, RunContext
from dockyard.runtime.broker import Announced, Event, first_event
from dockyard.runtime.executor import CancelResult, Executor
from dockyard.runtime.serde import dumps
from dockyard.runtime.signals import LocalSignals, Signals
from dockyard.runtime.webhooks import new_webhook, validate_webhook_url
from dockyard.sampling import config_problem
from dockyard.storage.base import (
    ACTIVE_RUN_STATUSES,
    FINISHED_RUN_STATUSES,
    Assistant,
    Run,
    RunStatus,
    Thread,
)
from dockyard.storage.database import Storage
from dockyard.storage.sql import new_thread_row

# How long a cancel with wait=True waits for a run executing in another process (one that
# died meanwhile is taken up by another worker, which sees the cancel stored on the run).
_CANCEL_WAIT_SECONDS = 30.0

# A fixed namespace so a graph's default assistant has the same id everywhere.
_ASSISTANT_NS = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def default_assistant_id(graph_id: str) -> str:
    return str(uuid.uuid5(_ASSISTANT_NS, graph_id))


def new_id() -> str:
    return str(uuid.uuid4())


class RunService:
    def __init__(
        self,
        ctx: RunContext,
        executor: Executor | None,
        signals: Signals | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.ctx = ctx
        # None in an API-only process: worker processes execute its runs.
        self.executor = executor
        self.signals: Signals = signals or LocalSignals(executor)
        self._admission = admission

    @property
    def admission(self) -> Admission:
        """The request-level policies; built on first use unless given (open_runtime
        builds it at start, so that a rule that cannot be used stops start-up)."""
        if self._admission is None:
            self._admission = Admission(self.ctx.settings, self.ctx.registry)
        return self._admission

    @property
    def storage(self) -> Storage:
        return self.ctx.storage

    async def ensure_default_assistants(self) -> None:
        for graph_id in self.ctx.registry.names:
            await self.storage.assistants.create(
                assistant_id=default_assistant_id(graph_id),
                graph_id=graph_id,
                config={},
                context={},
                metadata={"created_by": "system"},
                name=graph_id,
                description=None,
                if_exists="do_nothing",
            )
        await ensure_configured_assistants(self.ctx.settings, self.storage.assistants)

    async def resolve_assistant(self, assistant_id: str) -> Assistant:
        graph_name = assistant_id if assistant_id in self.ctx.registry else None
        configured = assistant_id in self.ctx.settings.assistants
        if graph_name is not None:
            assistant_id = default_assistant_id(graph_name)
        elif configured:
            assistant_id = configured_assistant_id(assistant_id)
        assistant: Assistant | None = await self.storage.assistants.get(assistant_id)
        if assistant is None and (graph_name is not None or configured):
            # A graph's or a configured assistant's name always answers, even after its
            # assistant was deleted.
            await self.ensure_default_assistants()
            assistant = await self.storage.assistants.get(assistant_id)
        if assistant is None or not tenancy.visible_or_shared(assistant["metadata"]):
            raise NotFoundError(
                f"assistant {assistant_id!r} not found; use an assistant id or one of the "
                f"names: {', '.join([*self.ctx.registry.names, *self.ctx.settings.assistants])}",
                code="assistant_not_found",
                param="assistant_id",
            )
        return assistant

    async def validate(
        self, spec: RunSpec, assistant: Assistant, thread_id: str | None = None
    ) -> RunSpec:
        """The checks a run request passes before anything is stored (crons run them when
        they are created, so a cron whose every firing would be refused is refused), the
        request-level policies last (runtime/admission.py). Returns the spec to run: a
        policy may annotate it (the input guardrail's flags in its metadata)."""
        # The caller's tenant and key, first: every policy after this one sees them.
        if caller.current() is not None:
            spec = spec.replace(metadata=tenancy.stamp(spec.metadata))
        hooks = self.ctx.settings.webhooks
        if spec.webhook and not self.ctx.settings.http.disable_webhooks:
            validate_webhook_url(spec.webhook, hooks.allowed_hosts, policy=hooks.url)
        if problem := config_problem(dict(spec.config) if spec.config is not None else None):
            raise InvalidRequestError(problem, param="config")
        for field, nodes in (
            ("interrupt_before", spec.interrupt_before),
            ("interrupt_after", spec.interrupt_after),
        ):
            if isinstance(nodes, tuple):
                graph = await self.ctx.registry.get(assistant["graph_id"])
                unknown = [n for n in nodes if n not in graph.nodes]
                if unknown:
                    raise InvalidRequestError(
                        f"{field}: unknown node(s) {unknown}; graph {assistant['graph_id']!r} "
                        f"has {sorted(n for n in graph.nodes if not n.startswith('__'))}",
                        param=field,
                    )
        return await self.admission.admit(spec, assistant, thread_id)

    def _run_row(
        self,
        thread_id: str,
        assistant: Assistant,
        spec: RunSpec,
        temporary: bool,
        run_id: str | None = None,
    ) -> Run:
        now = datetime.now(UTC)
        if temporary and spec.deletes_thread and not spec.durability:
            # The thread goes away when the run ends, so per-step checkpoints
            # would only be written to be deleted: save once, at exit. (A
            # stateless run cut short by a crash then starts over.)
            spec = spec.replace(durability="exit")
        after = spec.after_seconds
        return {
            "run_id": run_id or new_id(),
            "thread_id": thread_id,
            "assistant_id": assistant["assistant_id"],
            "status": "pending",
            "metadata": dict(spec.metadata),
            "multitask_strategy": spec.multitask_strategy,
            "kwargs": spec.stored(),
            "temporary": temporary,
            "attempts": 0,
            "error": None,
            "cancel_reason": None,
            "not_before": now + timedelta(seconds=after) if after else None,
            "started_at": None,
            "ended_at": None,
            "created_at": now,
            "updated_at": now,
            "worker_id": None,
            "lease_expires_at": None,
            "cancel_requested": None,
            "usage": None,
            # http.disable_webhooks: the run runs, its webhook is not sent (as LangGraph does).
            "webhook": new_webhook(spec.webhook)
            if spec.webhook and not self.ctx.settings.http.disable_webhooks
            else None,
        }

    def _new_thread(
        self, thread_id: str, graph_id: str, metadata: Mapping[str, Any] | None = None
    ) -> Thread:
        """A thread a run creates, with the configured default ttl."""
        strategy, minutes = self.ctx.settings.thread_ttl or (None, None)
        return new_thread_row(
            thread_id,
            {**(metadata or {}), "graph_id": graph_id},
            graph_id=graph_id,
            ttl={"strategy": strategy, "ttl": minutes} if minutes else None,
            expires_at=datetime.now(UTC) + timedelta(minutes=minutes) if minutes else None,
        )

    async def create(
        self,
        thread_id: str | None,
        spec: RunSpec,
        *,
        run_id: str | None = None,
        thread_metadata: Mapping[str, Any] | None = None,
    ) -> Run:
        """Create (and start or queue) a run. ``run_id`` makes creation idempotent: a
        second create with the same id raises ConflictError ``run_exists``."""
        run, _ = await self.start(thread_id, spec, run_id=run_id, thread_metadata=thread_metadata)
        return run

    async def start(
        self,
        thread_id: str | None,
        spec: RunSpec,
        *,
        run_id: str | None = None,
        thread_metadata: Mapping[str, Any] | None = None,
    ) -> tuple[Run, Announced]:
        """``create``, and the run's first event: whoever streams or waits for the run
        here follows its stream from there. ``thread_metadata``: ``thread_id`` is created
        with it when missing, once the request has passed its checks (a refused request
        leaves no thread behind)."""
        assistant = await self.resolve_assistant(spec.assistant_id)
        flt = None
        if tenancy.handlers_on():
            # The project's auth handler sees the run as LangGraph Platform shows it, and
            # may add metadata; its filter applies to the thread the run is on.
            value: dict[str, Any] = {
                "thread_id": thread_id,
                "assistant_id": assistant["assistant_id"],
                "run_id": run_id,
                "metadata": dict(spec.metadata),
                "kwargs": spec.stored(),
                "multitask_strategy": spec.multitask_strategy,
                "if_not_exists": spec.if_not_exists,
                "after_seconds": spec.after_seconds,
            }
            flt = await tenancy.authorize("threads", "create_run", value)
            spec = spec.replace(metadata=value["metadata"])
        spec = await self.validate(spec, assistant, thread_id)
        if (origin := run_origin()) is not None:
            spec = spec.replace(origin=origin)
        # A thread the run creates is its tenant's too.
        owner = tenancy.owner_of(spec.metadata)
        if thread_id is not None:
            await self._check_thread_visible(thread_id, flt)
        # The budget's hold goes first: a request refused leaves no thread behind.
        run_id = run_id or new_id()
        held = await self.admission.hold(run_id, spec)
        try:
            create_thread: Thread | None = None
            if thread_id is None:
                thread_id = new_id()
                temporary = True
                create_thread = self._new_thread(thread_id, assistant["graph_id"], owner)
                if spec.on_completion is None:
                    spec = spec.replace(on_completion="delete")
            else:
                temporary = False
                if spec.on_completion:
                    raise InvalidRequestError(
                        "on_completion applies to stateless runs (POST /runs/...) only; remove it",
                        param="on_completion",
                    )
                if spec.if_not_exists == "create":
                    create_thread = self._new_thread(thread_id, assistant["graph_id"], owner)
                elif thread_metadata is not None:
                    # Its own statement, as POST /threads with if_exists=do_nothing: two first
                    # requests of a new conversation racing both find it.
                    row = self._new_thread(
                        thread_id, assistant["graph_id"], {**thread_metadata, **owner}
                    )
                    await self.storage.threads.create(
                        thread_id=thread_id,
                        metadata=row["metadata"],
                        if_exists="do_nothing",
                        ttl=row["ttl"],
                        expires_at=row["expires_at"],
                        graph_id=row["graph_id"],
                    )
                if (
                    spec.strict_resume
                    and spec.command is not None
                    and spec.command.resume is not None
                ):
                    thread = await self.storage.threads.get(thread_id)
                    if thread is not None and thread["status"] != "interrupted":
                        raise ConflictError(
                            f"thread {thread_id} is {thread['status']}, not interrupted: "
                            "nothing to resume",
                            code="nothing_to_resume",
                        )
            run = self._run_row(thread_id, assistant, spec, temporary, run_id)
            # A stateless run starts on a thread nobody else can see: when this
            # process has a free place it is stored as running and started directly,
            # without a trip through the claim queue.
            direct = None
            if self.executor is not None and temporary and run["not_before"] is None:
                direct = self.executor.direct_start()
            if direct is not None:
                direct.claim(run)
            try:
                run, inflight = await self.storage.runs.create(
                    run,
                    reject_if_busy=spec.multitask_strategy == "reject",
                    create_thread=create_thread,
                    graph_id=assistant["graph_id"],
                )
            except BaseException:
                if direct is not None:
                    direct.abandon()
                raise
        except BaseException:
            if held:
                await self.admission.release(run_id)
            raise
        if spec.multitask_strategy in ("interrupt", "rollback"):
            action: CancelAction = spec.multitask_strategy  # type: ignore[assignment]
            for other in inflight:
                await self.cancel(other, action)
        # The first event goes out now, once the run is stored, not when the
        # executor picks the run up: a streaming client learns its run id at once.
        # It is not awaited in Redis (its id is known beforehand); a reader that
        # comes early waits for it there. The wake-up rides in the same round
        # trip, after it. While Redis is away the run still starts, and its events
        # follow when Redis is back.
        first = self.ctx.broker.announce(run["run_id"], "metadata", first_event(run["run_id"]))
        self.ctx.notify.created(run)
        if direct is None:
            await self.signals.wake(run["not_before"])
        else:
            direct.start(run)
        return run, first

    async def _check_thread_visible(self, thread_id: str, flt: dict[str, Any] | None) -> None:
        """Another tenant's thread, or one the project's auth filter does not match,
        answers as a missing one (a read only for such callers)."""
        if tenancy.tenant_of_caller() is None and not flt:
            return
        thread = await self.storage.threads.get(thread_id)
        if thread is not None and not tenancy.allowed(thread["metadata"], flt):
            raise NotFoundError(f"thread {thread_id} not found", code="thread_not_found")

    async def delete_thread(self, thread_id: str) -> None:
        """Stop the thread's runs, then remove it with its runs and checkpoints."""
        for run in await self.storage.runs.active(thread_id):
            await self.cancel(run, "interrupt", wait=True)
        await self.storage.threads.delete(thread_id)
        await self.storage.checkpointer.adelete_thread(thread_id)

    async def get_run(self, thread_id: str, run_id: str) -> Run:
        run: Run | None = await self.storage.runs.get(run_id, thread_id)
        if run is None or not tenancy.visible(run["metadata"]):
            raise NotFoundError(
                f"run {run_id} not found on thread {thread_id}", code="run_not_found"
            )
        return run

    async def find_run(self, run_id: str) -> Run | None:
        """The run by id alone (on any thread), or None once it is gone."""
        return await self.storage.runs.get(run_id)

    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: RunStatus | None
    ) -> list[Run]:
        return await self.storage.runs.list(thread_id, limit=limit, offset=offset, status=status)

    async def active_runs(self, thread_id: str) -> list[Run]:
        return await self.storage.runs.active(thread_id)

    async def runs_with_status(self, statuses: Sequence[RunStatus]) -> list[Run]:
        """The caller's runs with these statuses (every tenant's for an unscoped caller)."""
        return tenancy.only_visible(await self.storage.runs.with_status(statuses))

    async def delete_run(self, thread_id: str, run_id: str) -> None:
        """Delete a finished run; ConflictError ``run_active`` while it is pending or running.
        The status check and the delete are one statement, so a run that starts (or is
        requeued) after the check is never deleted under its executor."""
        while True:
            run = await self.get_run(thread_id, run_id)
            if run["status"] in ACTIVE_RUN_STATUSES:
                raise ConflictError(
                    f"run {run_id} is {run['status']}; cancel it before deleting it",
                    code="run_active",
                )
            if await self.storage.runs.delete(run_id, only_if=FINISHED_RUN_STATUSES):
                return
            # Its status changed after the read (or it was deleted): answer for the new one.

    async def cancel(self, run: Run, action: CancelAction, wait: bool = False) -> None:
        """Stop the run: the executor that has it (here, or through the signal), or,
        while it is pending, by settling it in storage directly."""
        run_id = run["run_id"]
        executor = self.executor
        if executor is not None and executor.cancel(run_id, action) is not CancelResult.NOT_HERE:
            if wait:
                await executor.wait_done(run_id)
            return
        if await self._cancel_pending(run, action):
            if executor is not None:
                executor.forget_cancel(run_id)
            return
        # Running: here (claimed meanwhile, about to start) or in another
        # process, which hears the signal or, failing that, sees the request
        # stored on the run at its next heartbeat.
        await self.storage.runs.request_cancel(run_id, action)
        if (
            executor is not None
            and executor.cancel(run_id, action, early=True) is not CancelResult.NOT_HERE
        ):
            if wait:
                await executor.wait_done(run_id)
            return
        await self.signals.cancel(run_id, action)
        if wait:
            # Its executor stores the outcome, then closes the run's stream: the end of
            # the stream is the end of the run, in whichever process it ran.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CANCEL_WAIT_SECONDS):
                    async for _ in self.events(run):
                        pass

    async def _cancel_pending(self, run: Run, action: CancelAction) -> bool:
        """Settle the run in storage if it is still pending; False if it is not."""
        run_id = run["run_id"]
        if action == "rollback":
            # Only while pending: a run running elsewhere is rolled back by its
            # owner, which also removes its checkpoints.
            settled = await self.storage.runs.delete(run_id, only_if=("pending",))
        else:
            settled = await self.storage.runs.finish(
                run_id, status="interrupted", cancel_reason="cancelled", only_if=("pending",)
            )
        if not settled:
            return False
        # It never ran: nothing was spent.
        await self.admission.release(run_id)
        end = {"run_id": run_id, "status": "interrupted"}
        self.ctx.broker.publish(run_id, "end", dumps(end))
        self.ctx.broker.close(run_id)
        if not await self.storage.runs.active(run["thread_id"]):
            thread = await self.storage.threads.get(run["thread_id"])
            if thread is not None and thread["status"] == "busy":
                await self.storage.threads.set_state(run["thread_id"], status="idle")
        return True

    async def cancel_by_id(
        self, thread_id: str, run_id: str, action: CancelAction, wait: bool
    ) -> None:
        run = await self.get_run(thread_id, run_id)
        if run["status"] not in ACTIVE_RUN_STATUSES:
            raise ConflictError(
                f"run {run_id} already finished with status {run['status']}; nothing to cancel",
                code="run_not_active",
            )
        await self.cancel(run, action, wait)

    async def events(
        self, run: Run, after: str | None = None, *, first: Announced | None = None
    ) -> AsyncIterator[Event]:
        """The run's events after ``after``; empty when it finished and is no longer kept.
        ``first``: the run's first event, from ``start`` in this process: it goes out
        at once, and the stream is known to exist."""
        broker = self.ctx.broker
        skip = None
        if first is not None:
            if after is None:
                yield first.event
                if first.alone:
                    after = first.event.id
                else:
                    # A worker that claimed the run (woken by another run) wrote its
                    # events before ``first``: read from the start, without ``first``.
                    skip = first.event.id
        elif not await broker.has(run["run_id"]):
            fresh: Run | None = await self.storage.runs.get(run["run_id"])
            if fresh is None or fresh["status"] not in ACTIVE_RUN_STATUSES:
                # A run executed here can end before this process's writer has sent
                # its first event: its stream is then on its way, not gone.
                await broker.flush()
                if not await broker.has(run["run_id"]):
                    return
        async for ev in broker.subscribe(run["run_id"], after):
            if ev.id != skip:
                yield ev

    async def wait_result(self, run: Run, *, first: Announced | None = None) -> bytes:
        """The run's final values as JSON (``__error__`` when it failed, as LangGraph's
        server answers); raises the PolicyError that refused it, whose status is the answer."""
        result: bytes | None = None
        error: bytes | None = None
        async for ev in self.events(run, first=first):
            if ev.event == "__result__":
                result = ev.data
            elif ev.event == "error":
                error = ev.data
        if error is not None:
            refusal = PolicyError.from_run_error(
                orjson.loads(error), run_id=run["run_id"], thread_id=run["thread_id"]
            )
            if refusal is not None:
                raise refusal
            return b'{"__error__":' + error + b"}"
        if result is not None:
            return result
        thread = await self.storage.threads.get(run["thread_id"])
        return dumps(thread["values"] if thread else None)
