"""Assemble one process's runtime: storage, stream broker, signals, executor, periodic jobs.

The API server and ``dockyard worker`` both start here, so a run's code path is
the same everywhere. What differs is configuration: with ``redis_url`` the
stream broker and signals go through Redis (any process serves any run's
stream); with ``runs.in_process`` false the process executes nothing and only
queues runs for workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from dockyard.errors import ConfigError
from dockyard.extras import require_extra
from dockyard.observability import process_metrics
from dockyard.observability.logs import RunLogContext
from dockyard.observability.metrics_server import MetricsServer
from dockyard.observability.run_metrics import RunMetrics, context_windows
from dockyard.observability.run_tracing import RunTracer
from dockyard.observability.tracing import check_tracing, tracer_for
from dockyard.policies.budget import Budgets
from dockyard.policies.chain import ModelChain
from dockyard.policies.run_cost import RunCostLimit
from dockyard.prompt_source import use_source
from dockyard.prompts.cache import PromptCache
from dockyard.prompts.files import push_path
from dockyard.prompts.registry import PromptRegistry
from dockyard.rollouts import RolloutManager
from dockyard.runtime import quality
from dockyard.runtime.admission import Admission
from dockyard.runtime.alerting import alert_store
from dockyard.runtime.assistants import configured_ids
from dockyard.runtime.attempt import RunContext
from dockyard.runtime.broker import MemoryBroker, StreamBroker
from dockyard.runtime.components import start_on
from dockyard.runtime.crons import CronScheduler
from dockyard.runtime.executor import Executor
from dockyard.runtime.gate import LoadGate
from dockyard.runtime.graphs import GraphRegistry
from dockyard.runtime.ledger_writer import LedgerWriter
from dockyard.runtime.observers import RunObserver
from dockyard.runtime.prompt_uses import PromptRetention, PromptUses
from dockyard.runtime.rollouts import RolloutTask
from dockyard.runtime.service import RunService, default_assistant_id
from dockyard.runtime.signals import LocalSignals, Signals
from dockyard.runtime.sweeper import ThreadSweeper
from dockyard.runtime.webhook_urls import loopback_base
from dockyard.runtime.webhooks import RunView, WebhookDispatcher
from dockyard.settings import PoliciesConfig, Settings
from dockyard.storage.database import Storage, open_storage

log = logging.getLogger("dockyard.runtime")


@dataclass
class DockyardProcess:
    """What one process runs on, as ``open_runtime`` started it. Not named ``Runtime``:
    that is LangGraph's (``langgraph.runtime.Runtime``), which graphs import too."""

    settings: Settings
    storage: Storage
    registry: GraphRegistry
    broker: StreamBroker
    executor: Executor | None
    runs: RunService
    redis: Any = None  # redis.asyncio.Redis when redis_url is set
    # Usage rows of what no run settles (gateway calls), written in batches.
    ledger: LedgerWriter | None = None
    # The prompt registry's writes (API routes); its reads go through the process's cache.
    prompts: PromptRegistry | None = None
    # Rollouts' start, promote, abort and status (API routes).
    rollouts: RolloutManager | None = None

    async def ping(self) -> dict[str, str]:
        """Problems per dependency; empty when everything answers."""
        problems = await self.storage.ping()
        if self.redis is not None:
            try:
                async with asyncio.timeout(3.0):
                    await self.redis.ping()
            except TimeoutError:
                problems["redis"] = "no answer within 3s"
            except Exception as e:  # any client error means "not ready"
                problems["redis"] = f"{type(e).__name__}: {e}"
        return problems


def missing_for_processes(settings: Settings) -> list[str]:
    """What several processes sharing runs still lack: PostgreSQL (they share runs
    through it, not an embedded SQLite file) and Redis (run events and signals)."""
    missing = []
    if not (settings.database_url or "").startswith(("postgresql", "postgres")):
        missing.append("database_url = postgresql://... (DOCKYARD_DATABASE_URL)")
    if not settings.redis_url:
        missing.append("redis_url = redis://host:6379/0 (DOCKYARD_REDIS_URL)")
    return missing


def require_shared_layout(settings: Settings, who: str) -> None:
    if missing := missing_for_processes(settings):
        raise ConfigError(
            f"{who} needs {' and '.join(missing)}: worker processes share runs through "
            "PostgreSQL and send run events and take cancel signals through Redis"
        )


def check_layout(settings: Settings) -> None:
    """Refuse process layouts that cannot work, before anything starts."""
    # The packages a setting needs, checked here so that `dockyard serve` stops with
    # the pip command before uvicorn starts (the embedded mode needs no extra).
    if (settings.database_url or "").startswith(("postgresql", "postgres")):
        require_extra("postgres", "database_url (PostgreSQL)")
    if settings.redis_url:
        require_extra("redis", "redis_url")
    index = settings.store.index
    if index is not None and index.embed.startswith("local:"):
        require_extra("local-embeddings", f"store.index.embed {index.embed!r}")
    if not settings.runs.in_process:
        require_shared_layout(settings, "runs.in_process = False (serve --no-workers)")
    check_tracing(settings)


def _open_redis(settings: Settings) -> Any:
    from redis.asyncio import Redis  # check_layout has made sure it is installed

    assert settings.redis_url is not None
    # Blocking XREADs wait up to 5 s: the socket timeout must outlast them.
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=15,
        socket_connect_timeout=5,
        health_check_interval=15,
        retry_on_timeout=True,
        # RESP2: redis-py 8 speaks RESP3 by default and converts every XREAD reply
        # back to the RESP2 shape in Python.
        protocol=2,
    )


async def _drain(executor: Executor, signals: Signals, seconds: float) -> None:
    left = await executor.drain(seconds)
    if left:
        log.warning("handed %d unfinished run(s) back to the queue", left)
        await signals.wake()


async def _open_prompts(
    stack: contextlib.AsyncExitStack, settings: Settings, storage: Storage
) -> tuple[PromptRegistry, PromptCache]:
    """The project's prompt files pushed (when asked), the cache loaded and kept fresh,
    and made the source of ``dockyard.prompt()`` outside runs; old versions swept."""
    cfg = settings.prompts
    registry = PromptRegistry(storage.prompts)
    folder = cfg.dir if cfg.dir.is_absolute() else settings.project_dir / cfg.dir
    if cfg.push_on_start and folder.is_dir():
        pushed = await push_path(registry, folder, author="project", message="pushed on start")
        if created := [f"{p.version.name}@{p.version.version}" for p in pushed if p.created]:
            log.info("prompts pushed from %s: %s", folder, ", ".join(created))
    cache = await start_on(stack, PromptCache(storage.prompts, cfg.refresh_seconds))
    registry.cache = cache
    previous = use_source(cache)
    stack.callback(use_source, previous)
    if cfg.retention_days is not None:
        await start_on(
            stack, PromptRetention(storage.prompts, cfg.retention_days, cfg.retention_sweep_seconds)
        )
    return registry, cache


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    registry: GraphRegistry,
    *,
    execute: bool,
    run_view: RunView,
) -> AsyncIterator[DockyardProcess]:
    """Everything a process needs, started; stopped in reverse order on exit.

    ``execute``: this process claims and runs runs (the API in the embedded
    default, every ``dockyard worker``).
    """
    check_layout(settings)
    # What is started here stops in reverse order, also when a later start fails: crons
    # and the sweeper stop creating work, the executor drains (its runs may still
    # publish, signal and send webhooks), then signals, webhooks, the broker, Redis and
    # storage close.
    async with contextlib.AsyncExitStack() as stack:
        storage = await stack.enter_async_context(open_storage(settings))
        # Stopped (what is queued written) before storage closes, after the executor drained.
        ledger = await start_on(stack, LedgerWriter(storage.usage))
        registry.bind(storage.checkpointer, storage.store)
        if isinstance(registry.models.wrap, ModelChain):
            registry.models.wrap.bind_keys(storage.keys)
        # Closed after the executor drained: its runs' model calls use the policies.
        stack.push_async_callback(registry.models.aclose)
        redis = None
        broker: StreamBroker
        redis_broker = None
        if settings.redis_url:
            from dockyard.runtime.redis_broker import RedisBroker

            redis = _open_redis(settings)
            stack.push_async_callback(redis.aclose)
            broker = redis_broker = await start_on(
                stack,
                RedisBroker(
                    redis,
                    settings.redis_prefix,
                    settings.runs.stream_retention_seconds,
                    settings.runs.stream_max_events,
                ),
            )
        else:
            broker = MemoryBroker(
                settings.runs.stream_retention_seconds,
                settings.runs.stream_max_events,
                settings.runs.stream_retention_max_bytes,
            )
        prompts, prompt_cache = await _open_prompts(stack, settings, storage)
        if redis is not None:
            from dockyard.runtime.prompt_notices import RedisPromptNotices

            notices = RedisPromptNotices(redis, settings.redis_prefix, prompt_cache)
            prompts.notify = (await start_on(stack, notices)).publish
        observers: list[RunObserver] = []
        # Each attempt's log lines carry its run's ids; its spans continue the request's
        # trace (observability/): first, so that the other observers' lines have them.
        if settings.observability.logs.enabled:
            observers.append(RunLogContext())
        if (tracer := tracer_for(settings)) is not None:
            observers.append(RunTracer(tracer))
        observers.append(PromptUses(prompt_cache))
        budgets = Budgets.from_settings(settings, storage, redis)
        if budgets is not None:
            # Settles the holds of runs that end here; closed after the executor drained.
            observers.append(await start_on(stack, budgets))
        # Started before the executor and stopped after it: runs resumed at
        # start-up and runs ending during shutdown both find it running.
        if not settings.http.disable_webhooks:
            webhooks = WebhookDispatcher(
                storage, settings.webhooks, run_view, loopback_base=loopback_base(settings)
            )
            observers.append(await start_on(stack, webhooks))
        if settings.observability.alerts.enabled:
            from dockyard.runtime.alerting import AlertTask

            # Stopped after the executor drained: the outcomes of its last runs are written.
            alerts = await start_on(stack, AlertTask(settings, storage.engine, registry))
            observers.append(alerts.recorder)
        # Stopped after the executor drained, like the alerts (its outcomes written).
        rollout_task = await start_on(stack, RolloutTask(settings, storage))
        if rollout_task.recorder is not None:
            observers.append(rollout_task.recorder)
        metrics = process_metrics.install(settings)
        names = {default_assistant_id(g): g for g in registry.names}
        names.update({i: name for name, i in configured_ids(settings).items()})
        if (run_cost := _run_cost_limit(settings)) is not None:
            observers.append(run_cost)
        if quality.recorder_needed(settings):
            # Stopped after the executor drained: its last runs' scores are written.
            store = alert_store(storage.engine)
            observers.append(await start_on(stack, quality.QualityRecorder(store, metrics, names)))
        if metrics is not None:
            metrics.windows.update(context_windows(registry.models))
            observers.append(RunMetrics(metrics, names))
            port = settings.observability.metrics.port
            if port is not None:

                async def counts() -> Any:
                    return await process_metrics.scraped_counts(storage)

                await start_on(stack, MetricsServer(metrics, counts, settings.host, port))
        ctx = RunContext(
            storage=storage,
            registry=registry,
            broker=broker,
            settings=settings,
            observers=observers,
        )
        executor = (
            Executor(
                ctx,
                settings.runs.max_concurrency,
                lease_seconds=settings.runs.lease_seconds,
                requeue_on_start=storage.backend == "sqlite",
                gate=LoadGate(settings.runs.max_concurrency)
                if settings.runs.adaptive_concurrency
                else None,
            )
            if execute
            else None
        )
        signals: Signals
        if redis is not None:
            from dockyard.runtime.redis_signals import RedisSignals

            signals = await start_on(
                stack, RedisSignals(redis, settings.redis_prefix, executor, redis_broker)
            )
        else:
            signals = LocalSignals(executor)
        admission = Admission(settings, registry, budgets, rollout_task.board)
        service = RunService(ctx, executor, signals, admission)
        rollouts = RolloutManager(settings, storage.rollouts, prompts, alert_store(storage.engine))
        runtime = DockyardProcess(
            settings, storage, registry, broker, executor, service, redis, ledger, prompts, rollouts
        )
        await service.ensure_default_assistants()
        if executor is not None:
            await executor.start()
            # Its stop is a drain: running runs get drain_seconds to finish.
            stack.push_async_callback(_drain, executor, signals, settings.runs.drain_seconds)
        cp_ttl = settings.checkpointer.ttl
        await start_on(
            stack,
            ThreadSweeper(
                service,
                settings.thread_sweep_interval_seconds,
                limit=cp_ttl.sweep_limit if cp_ttl is not None else 1000,
            ),
        )
        await start_on(stack, CronScheduler(service, settings.crons.poll_interval_seconds))
        yield runtime


def _run_cost_limit(settings: Settings) -> RunCostLimit | None:
    """The per-run spending cap's observer, when the default policies or an assistant's
    set ``limits.cost_usd_per_run``."""

    def cap(policies: PoliciesConfig) -> float | None:
        return policies.limits.cost_usd_per_run if policies.limits is not None else None

    default = cap(settings.policies)
    own = {
        assistant_id: cap(settings.assistant_policies(name))
        for name, assistant_id in configured_ids(settings).items()
    }
    if default is None and all(limit is None for limit in own.values()):
        return None
    return RunCostLimit(lambda assistant_id: own.get(assistant_id, default))
