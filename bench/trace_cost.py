"""What tracing a run costs, and dockyard's span handler against OpenInference's.

    .venv/bin/python bench/trace_cost.py [--runs 300] [--rounds 8]
    # with OpenInference's LangChain instrumentation on the path (not a dependency):
    pip install --target /tmp/oi openinference-instrumentation-langchain \
        openinference-instrumentation openinference-semantic-conventions \
        opentelemetry-instrumentation "wrapt<3" --no-deps
    PYTHONPATH=/tmp/oi .venv/bin/python bench/trace_cost.py

Runs a ``create_agent`` loop in-process (an offline model calls a tool, then answers: two
model calls, one tool call, three nodes), alternating rounds of:

- ``off``: what every run has (the usage tally), tracing off: no SDK, no handler;
- ``dockyard``: plus the run observer's span handler (observability/run_tracing.py), an
  SDK provider with a processor handing each span to an exporter that only counts;
- ``openinference``: OpenInference's ``LangChainInstrumentor`` on the same kind of
  provider, instead of dockyard's handler (when it is importable).

Prints µs per run (min and median over rounds), spans per run, and the attributes of one
model-call span of each, to compare what they record.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from dockyard.observability.run_tracing import RunTracer
from dockyard.observability.tracing import make_tracer
from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec
from dockyard.runtime.observers import Outcome
from dockyard.runtime.usage import Usage, UsageTally
from dockyard.settings import TracesConfig


class WeatherModel(FakeChatModelBase):
    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content=f"It is {messages[-1].text} in Paris.")
        call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call-1"}
        return AIMessage(content="Let me check.", tool_calls=[call])


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


GRAPH = create_agent(WeatherModel(), tools=[get_weather])
RUN: Any = {
    "run_id": "1f0c0000-0000-0000-0000-000000000001",
    "thread_id": "t",
    "assistant_id": "a",
    "attempts": 1,
    "metadata": {},
    "kwargs": {},
}


class Counting(SpanExporter):
    def __init__(self) -> None:
        self.spans = 0
        self.sample: dict[str, Any] = {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        for span in spans:
            attrs = dict(span.attributes or {})
            kind = attrs.get("gen_ai.operation.name") or attrs.get("openinference.span.kind")
            if kind in ("chat", "LLM") and not self.sample:
                self.sample = {"name": span.name, **attrs}
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


async def _once(tracer: RunTracer | None) -> None:
    usage = Usage()
    callbacks: list[Any] = [UsageTally(usage)]
    if tracer is not None:
        callbacks += tracer.run_callbacks(RUN, usage)
    config: Any = {"callbacks": callbacks, "run_id": RUN["run_id"]}
    await GRAPH.ainvoke({"messages": [("user", "weather in Paris?")]}, config)
    if tracer is not None:
        tracer.on_ended(RUN, Outcome("success", None, None), usage)


def _openinference(provider: TracerProvider) -> Any:
    try:
        from openinference.instrumentation.langchain import (  # type: ignore[import-not-found]
            LangChainInstrumentor,
        )
    except ImportError:
        return None
    return LangChainInstrumentor(), provider


async def main(runs: int, rounds: int) -> None:
    ours = Counting()
    # Both unbatched, to an exporter that only counts: the cost of making the spans.
    dockyard = RunTracer(make_tracer(TracesConfig(), ours, batch=False))
    theirs = Counting()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(theirs))
    oi = _openinference(provider)
    modes = ["off", "dockyard"] + (["openinference"] if oi else [])
    per_run: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(50):  # warm up imports and caches
        await _once(None)
    for _ in range(rounds):
        for mode in modes:
            if mode == "openinference":
                oi[0].instrument(tracer_provider=oi[1])
            start = time.perf_counter()
            for _ in range(runs):
                await _once(dockyard if mode == "dockyard" else None)
            per_run[mode].append((time.perf_counter() - start) / runs * 1e6)
            if mode == "openinference":
                oi[0].uninstrument()
    base = statistics.median(per_run["off"])
    total = runs * rounds
    counts = {"dockyard": ours, "openinference": theirs}
    for mode in modes:
        samples = per_run[mode]
        med = statistics.median(samples)
        extra = f"  (+{med - base:5.0f} µs)" if mode != "off" else ""
        spans = f"  spans/run {counts[mode].spans / total:.1f}" if mode in counts else ""
        print(f"{mode:>13}: min {min(samples):6.0f} µs/run  median {med:6.0f} µs/run{extra}{spans}")
    for mode in modes[1:]:
        print(f"\n{mode}: one model-call span")
        for key, value in counts[mode].sample.items():
            print(f"  {key} = {str(value)[:90]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.rounds))
