"""Runs, model calls and tool calls into the metrics: a run observer and the LangChain
callback handler it adds to every attempt (``run_callbacks``).

A model call's tokens, cost, latency and time to first token are what the run's usage
tally (``runtime/usage.py``) parsed and priced: the handler reads the tally's calls as they
are added, never parses a response twice. What the tally does not keep (failed model
calls, tool calls) the handler sees itself.

Labels are bounded: ``assistant`` is a graph's or a configured assistant's name (an
assistant made over the API counts under its graph, learnt from the run's first model or
tool call; ``other`` when it makes none), ``tenant`` a tenant name, ``variant`` a rollout
variant (``stable``, ``candidate``, ``none``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Any, Protocol
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from dockyard import caller
from dockyard.errors import PolicyError, ProviderUnavailableError, dockyard_cause
from dockyard.observability.metrics import Metrics, current
from dockyard.providers.registry import MODEL_NAME_KEY, ModelRegistry
from dockyard.storage.base import Run
from dockyard.variants import variant_of

OTHER = "other"
_MAX_OPEN = 10_000  # attempts under way in one process, far above runs.max_concurrency


class CallLike(Protocol):
    """One finished model call as the usage tally records it (``runtime.usage.ModelCall``)."""

    @property
    def model(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cached_input_tokens(self) -> int: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def latency_ms(self) -> float: ...
    @property
    def first_token_ms(self) -> float | None: ...
    @property
    def cache_hit(self) -> bool: ...


class UsageLike(Protocol):
    """An attempt's usage tally (``runtime.usage.Usage``)."""

    @property
    def calls(self) -> Sequence[CallLike]: ...


def context_windows(models: ModelRegistry) -> dict[str, int]:
    """The context window (input tokens) of each configured model whose provider package
    knows it (LangChain's model profiles), by its ``models:`` name (the calls' label)."""
    out: dict[str, int] = {}
    for name in models.names:
        spec = models.spec(name)
        try:
            profile = getattr(models.raw(name), "profile", None) or {}
        except Exception:  # a model that cannot be built is not observed either
            continue
        window = profile.get("max_input_tokens")
        if spec is not None and isinstance(window, int) and window > 0:
            out[name] = window
    return out


@dataclass(frozen=True, slots=True)
class CallLabels:
    tenant: str
    assistant: str


def observe_calls(metrics: Metrics, calls: Sequence[CallLike], labels: CallLabels) -> None:
    """Count finished model calls: requests, latency, first token, tokens, cost, context."""
    for call in calls:
        if call.cache_hit:
            # Answered by the response cache, not the provider: dockyard_cache_requests_total.
            continue
        # The models: name, as the breaker, retries and fallbacks are labelled; the
        # provider's model name for a model dockyard's registry did not hand out.
        model = call.name or call.model
        metrics.model_requests.labels(model, "ok").inc()
        metrics.model_duration.labels(model).observe(call.latency_ms / 1000)
        if call.first_token_ms is not None:
            metrics.model_ttft.labels(model).observe(call.first_token_ms / 1000)
        tokens = metrics.model_tokens
        if call.input_tokens:
            tokens.labels(model, "input").inc(call.input_tokens)
        if call.output_tokens:
            tokens.labels(model, "output").inc(call.output_tokens)
        if call.cached_input_tokens:
            tokens.labels(model, "cached").inc(call.cached_input_tokens)
        if call.cost_usd:
            metrics.cost.labels(model, labels.tenant, labels.assistant).inc(call.cost_usd)
        window = metrics.windows.get(model)
        if window and call.input_tokens:
            metrics.context_ratio.labels(model).observe(min(call.input_tokens / window, 1.0))


def observe_quality(metrics: Metrics | None, assistant: str, score: float) -> None:
    """A quality score (0..1) of an assistant's answer; the quality gate calls this."""
    if metrics is not None:
        metrics.quality.labels(assistant).observe(score)


class CallMetrics(BaseCallbackHandler):
    """Per attempt: model calls as the tally records them, failed model calls, tool calls,
    and the graph the run belongs to (for an assistant made over the API: learnt from its
    first model or tool call; a run of such an assistant that makes none counts as
    ``other``)."""

    # No chain events: listening to them makes LangChain dispatch every node of every
    # run to the handler (bench/metrics_cost.py: +40% of the trivial graph's time). Tool
    # events are "agent" events to LangChain (ignore_agent would hide them).
    run_inline = True
    ignore_chain = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, metrics: Metrics, usage: UsageLike, labels: CallLabels) -> None:
        self.metrics = metrics
        self.usage = usage
        self.labels = labels
        self.seen = 0
        self.graph: str | None = None
        self._models: dict[int, str] = {}
        self._tools: dict[int, tuple[str, float]] = {}

    def flush(self) -> None:
        """Count the tally's calls not counted yet."""
        calls = self.usage.calls
        if len(calls) > self.seen:
            observe_calls(self.metrics, calls[self.seen :], self.labels)
            self.seen = len(calls)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start_model(run_id, metadata, kwargs.get("invocation_params"))

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start_model(run_id, metadata, kwargs.get("invocation_params"))

    def _learn_graph(self, metadata: dict[str, Any] | None) -> None:
        # A call's metadata has its run's (the attempt put graph_id there).
        graph = metadata.get("graph_id") if metadata else None
        if isinstance(graph, str):
            self.graph = graph
            if self.labels.assistant == OTHER:
                self.labels = CallLabels(self.labels.tenant, graph)

    def _start_model(
        self, run_id: UUID, metadata: dict[str, Any] | None, params: dict[str, Any] | None
    ) -> None:
        if self.graph is None:
            self._learn_graph(metadata)
        meta = metadata or {}
        model = meta.get(MODEL_NAME_KEY) or meta.get("ls_model_name")
        if not model and params:
            model = params.get("model") or params.get("model_name")
        self._models[run_id.int] = model if isinstance(model, str) and model else "unknown"

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._models.pop(run_id.int, None)
        self.flush()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        model = self._models.pop(run_id.int, "unknown")
        cause = dockyard_cause(error)
        if isinstance(cause, PolicyError) and not isinstance(cause, ProviderUnavailableError):
            return  # refused before the provider (a limit, a budget): a refusal, not an error
        self.metrics.model_requests.labels(model, "error").inc()

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        if self.graph is None:
            self._learn_graph(kwargs.get("metadata"))
        name = kwargs.get("name") or (serialized or {}).get("name") or "unknown"
        self._tools[run_id.int] = (str(name), perf_counter())

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._tool_done(run_id, "ok")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._tool_done(run_id, "error")

    def _tool_done(self, run_id: UUID, status: str) -> None:
        started = self._tools.pop(run_id.int, None)
        if started is None:
            return
        name, at = started
        self.metrics.tool_calls.labels(name, status).inc()
        self.metrics.tool_duration.labels(name).observe(perf_counter() - at)


def call_handlers(usage: UsageLike, tenant: str | None, assistant: str) -> list[CallMetrics]:
    """The handler for model calls made outside a run (the gateway's): none when this
    process keeps no metrics."""
    metrics = current()
    if metrics is None:
        return []
    return [CallMetrics(metrics, usage, CallLabels(tenant or "", assistant))]


class RunMetrics:
    """The run observer: runs by assistant and status, their duration and queue wait; adds
    ``CallMetrics`` to every attempt."""

    def __init__(self, metrics: Metrics, assistants: Mapping[str, str]) -> None:
        self.metrics = metrics
        # assistant id -> name, for the graphs' default assistants and configured ones.
        self.assistants = dict(assistants)
        self._handlers: dict[str, CallMetrics] = {}

    def _labels(self, run: Run) -> CallLabels:
        tenant, _ = caller.ids(run["metadata"])
        return CallLabels(tenant or "", self.assistants.get(run["assistant_id"], OTHER))

    def on_created(self, run: Run) -> None:
        return None

    def on_started(self, run: Run) -> None:
        if run["attempts"] <= 1:
            waited = (datetime.now(UTC) - run["created_at"]).total_seconds()
            self.metrics.queue_wait.labels(self._labels(run).assistant).observe(max(waited, 0.0))

    def run_callbacks(self, run: Run, usage: UsageLike) -> Sequence[Any]:
        handler = CallMetrics(self.metrics, usage, self._labels(run))
        if len(self._handlers) >= _MAX_OPEN:
            # Attempts handed back or taken over never end here: forget the oldest.
            del self._handlers[next(iter(self._handlers))]
        self._handlers[run["run_id"]] = handler
        return (handler,)

    def on_ended(self, run: Run, outcome: Any, usage: UsageLike) -> None:
        handler = self._handlers.pop(run["run_id"], None)
        assistant = self.assistants.get(run["assistant_id"])
        if handler is not None:
            handler.flush()
            assistant = assistant or handler.graph
        assistant = assistant or OTHER
        status = "cancelled" if getattr(outcome, "rollback", False) else str(outcome.status)
        # stable | candidate | none: bounded, one rollout per assistant at a time.
        variant = variant_of(run["metadata"])
        self.metrics.runs.labels(assistant, status, variant).inc()
        started = run["started_at"] or run["created_at"]
        ended = run["ended_at"] or datetime.now(UTC)
        self.metrics.run_duration.labels(assistant, variant).observe(
            max((ended - started).total_seconds(), 0.0)
        )
