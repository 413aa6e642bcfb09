"""A run's spans: the run, its graph's nodes, their model calls and tool calls.

``RunTracer`` is a run observer, installed only when traces are exported. Each attempt
gets a run span (a child of the request that made the run, from the ``traceparent`` the
run carries, also in a worker) and a LangChain callback handler, ``SpanHandler``, that
opens a span per graph node, model call and tool call below it, following LangChain's
parent run ids. Model spans carry the GenAI semantic-convention attributes and the cost
the usage tally priced (runtime/usage.py runs first and records the call the handler
then reads). Message contents are not recorded: they may hold personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langgraph.errors import GraphBubbleUp
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from dockyard.caller import ids as caller_ids
from dockyard.observability.origin import of_run, parent_context
from dockyard.storage.base import Run


class RunTracer:
    """The run observer that traces each attempt (see the module's docstring)."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        # Run spans between an attempt's start and its end, by run id. An attempt handed
        # back to the queue never ends here: its next attempt in this process ends it.
        self._open: dict[str, Span] = {}

    def on_created(self, run: Run) -> None:
        return None

    def on_started(self, run: Run) -> None:
        return None

    def run_callbacks(self, run: Run, usage: Any) -> Sequence[Any]:
        run_id = run["run_id"]
        if (stale := self._open.pop(run_id, None)) is not None:
            stale.end()
        origin = of_run(run["kwargs"])
        tenant, _ = caller_ids(run["metadata"])
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.id": run["assistant_id"],
            "gen_ai.conversation.id": run["thread_id"],
            "dockyard.run_id": run_id,
            "dockyard.thread_id": run["thread_id"],
            "dockyard.assistant_id": run["assistant_id"],
            "dockyard.run.attempt": run["attempts"],
        }
        if tenant is not None:
            attributes["dockyard.tenant"] = tenant
        if request_id := origin.get("request_id"):
            attributes["dockyard.request_id"] = request_id
        span = self.tracer.start_span(
            "invoke_agent", context=parent_context(origin), attributes=attributes
        )
        if not span.is_recording():
            # Not sampled (observability.traces.sample_ratio, or the client's traceparent
            # said so): nothing below it would be recorded either, and without a handler
            # LangChain has no callback to call for the graph's every step.
            return ()
        self._open[run_id] = span
        return (SpanHandler(self.tracer, span, usage),)

    def on_ended(self, run: Run, outcome: Any, usage: Any) -> None:
        span = self._open.pop(run["run_id"], None)
        if span is None:
            return
        span.set_attribute("dockyard.run.status", outcome.status)
        if usage.model_calls:
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
            span.set_attribute("gen_ai.usage.cost", usage.cost_usd)
        if outcome.error is not None:
            span.set_attribute("error.type", str(outcome.error.get("error") or outcome.status))
            span.set_status(Status(StatusCode.ERROR, str(outcome.error.get("message") or "")))
        elif outcome.status != "success":
            span.set_status(Status(StatusCode.ERROR, outcome.status))
        span.end()


class SpanHandler(BaseCallbackHandler):
    """Spans for one attempt's nodes, model calls and tool calls (see the module)."""

    run_inline = True  # in the loop, without a thread hop
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def __init__(self, tracer: Tracer, run_span: Span, usage: Any) -> None:
        self.tracer = tracer
        self.run_span = run_span
        self.root = trace.set_span_in_context(run_span)
        self.usage = usage
        self._seen_calls = len(usage.calls)
        # LangChain run id (as an int) -> the context its children's spans start in.
        self._context: dict[int | str, Context] = {}
        # LangChain run id -> the span it opened, to end with it.
        self._spans: dict[int | str, Span] = {}

    def _parent(self, parent_run_id: UUID | None) -> Context:
        if parent_run_id is None:
            return self.root
        return self._context.get(_key(parent_run_id), self.root)

    def _open(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        name: str,
        kind: SpanKind,
        attributes: dict[str, Any],
    ) -> Span:
        span = self.tracer.start_span(
            name,
            context=self._parent(parent_run_id),
            kind=kind,
            attributes={k: v for k, v in attributes.items() if v is not None},
        )
        self._spans[_key(run_id)] = span
        self._context[_key(run_id)] = trace.set_span_in_context(span)
        return span

    def _close(self, run_id: UUID, error: BaseException | None = None) -> Span | None:
        self._context.pop(_key(run_id), None)
        span = self._spans.pop(_key(run_id), None)
        if span is not None and error is not None:
            if isinstance(error, GraphBubbleUp):
                # An interrupt (or a Command to a parent graph) is control flow.
                span.set_attribute("langgraph.interrupted", True)
            else:
                span.set_attribute("error.type", type(error).__qualname__)
                span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
        return span

    # -- graph nodes ------------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        meta = metadata or {}
        if parent_run_id is None:  # the graph itself: the run span stands for it
            if graph := meta.get("graph_id"):
                self.run_span.update_name(f"invoke_agent {graph}")
                self.run_span.set_attribute("gen_ai.agent.name", graph)
            self._context[_key(run_id)] = self.root
            return
        node = meta.get("langgraph_node")
        if node is not None and kwargs.get("name") == node:
            self._open(
                run_id,
                parent_run_id,
                f"node {node}",
                SpanKind.INTERNAL,
                {"langgraph.node": node, "langgraph.step": meta.get("langgraph_step")},
            )
        else:
            # The runnables inside a node: their children belong to the node's span.
            self._context[_key(run_id)] = self._parent(parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if (span := self._close(run_id)) is not None:
            span.end()

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if (span := self._close(run_id, error)) is not None:
            span.end()

    # -- model calls ------------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(run_id, parent_run_id, metadata, kwargs.get("invocation_params"))

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(run_id, parent_run_id, metadata, kwargs.get("invocation_params"))

    def _model_start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        params: dict[str, Any] | None,
    ) -> None:
        meta, params = metadata or {}, params or {}
        model = meta.get("ls_model_name") or params.get("model") or params.get("model_name")
        provider = meta.get("ls_provider")
        self._open(
            run_id,
            parent_run_id,
            f"chat {model}" if model else "chat",
            SpanKind.CLIENT,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.system": provider,
                "gen_ai.request.model": model,
                "gen_ai.request.temperature": _number(
                    meta.get("ls_temperature", params.get("temperature"))
                ),
                "gen_ai.request.max_tokens": _number(
                    meta.get("ls_max_tokens", params.get("max_tokens"))
                ),
            },
        )

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        span = self._close(run_id)
        if span is None:
            return
        served, response_id, reasons = _response_facts(response)
        if served:
            span.set_attribute("gen_ai.response.model", served)
        if response_id:
            span.set_attribute("gen_ai.response.id", response_id)
        if reasons:
            span.set_attribute("gen_ai.response.finish_reasons", reasons)
        calls = self.usage.calls
        if len(calls) > self._seen_calls:  # the usage tally priced this call just now
            self._seen_calls = len(calls)
            call = calls[-1]
            span.set_attribute("gen_ai.usage.input_tokens", call.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", call.output_tokens)
            if call.cached_input_tokens:
                span.set_attribute("gen_ai.usage.cache_read.input_tokens", call.cached_input_tokens)
            if call.cost_usd is not None:
                span.set_attribute("gen_ai.usage.cost", call.cost_usd)
            if call.cache_hit:
                span.set_attribute("dockyard.cache_hit", True)
        span.end()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if (span := self._close(run_id, error)) is not None:
            span.end()

    # -- tool calls -------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        self._open(
            run_id,
            parent_run_id,
            f"execute_tool {name}",
            SpanKind.INTERNAL,
            {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": kwargs.get("tool_call_id"),
            },
        )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if (span := self._close(run_id)) is not None:
            span.end()

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if (span := self._close(run_id, error)) is not None:
            span.end()


def _key(run_id: UUID | str) -> int | str:
    # An int, not the UUID: UUID.__hash__ is Python code. The graph's own run id is the
    # string dockyard put in its config.
    if isinstance(run_id, UUID):
        return run_id.int
    try:
        return UUID(run_id).int
    except ValueError:
        return run_id


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _response_facts(response: LLMResult) -> tuple[str | None, str | None, list[str]]:
    """(model that answered, response id, finish reasons) of a model call's result."""
    served: str | None = None
    response_id: str | None = None
    reasons: list[str] = []
    for generations in response.generations:
        for gen in generations:
            info = gen.generation_info or {}
            reason = info.get("finish_reason")
            message = gen.message if isinstance(gen, ChatGeneration) else None
            if isinstance(message, AIMessage):
                meta = message.response_metadata
                served = served or meta.get("model_name") or meta.get("model")
                response_id = response_id or message.id
                reason = reason or meta.get("finish_reason") or meta.get("stop_reason")
            if isinstance(reason, str):
                reasons.append(reason)
    if not served and response.llm_output:
        served = response.llm_output.get("model_name") or response.llm_output.get("model")
    return served, response_id, reasons
