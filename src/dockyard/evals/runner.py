"""Run dataset items through an assistant, on dockyard's real run path, and score them.

Each item under each variant becomes one run on its own thread, created through the
Agent Server API (``langgraph-sdk``): stored like any run, with its usage and cost, and
tagged with the experiment (``metadata.dockyard_experiment``: id, name, variant). The
variant's prompt and model travel in ``config.configurable`` (``dockyard.variants``).
Latency is what the client saw: from creating the run to its result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dockyard.evals.dataset import Item
from dockyard.quality import CombinedScorer, Sample, Score, text_of
from dockyard.storage.base import EvalResult
from dockyard.variants import EXPERIMENT_KEY, MODEL_KEY, PROMPT_KEY


@dataclass(frozen=True)
class Variant:
    """What one arm of an experiment runs with: a prompt version, a model, or neither
    (the assistant as configured)."""

    name: str
    prompt: dict[str, Any] | None = None
    model: str | None = None

    def configurable(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.prompt is not None:
            out[PROMPT_KEY] = self.prompt
        if self.model is not None:
            out[MODEL_KEY] = self.model
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "prompt": self.prompt, "model": self.model}


@dataclass
class Outcome:
    """A run's result as the client saw it."""

    output: Any = None
    run_id: str | None = None
    thread_id: str | None = None
    usage: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float = 0.0


@dataclass
class Experiment:
    experiment_id: str
    name: str
    assistant: str
    variants: Sequence[Variant]
    results: list[EvalResult] = field(default_factory=list)


def answer_text(values: Any) -> str:
    """The answer in a run's final values: the last message's text when the state has
    messages, else the values as JSON."""
    if isinstance(values, dict) and isinstance(values.get("messages"), list):
        messages = values["messages"]
        return text_of(messages[-1]) if messages else ""
    return text_of(values)


class ServerTarget:
    """Runs against a dockyard server (or any Agent Server) through ``langgraph-sdk``."""

    def __init__(
        self, url: str, assistant: str, *, api_key: str | None = None, timeout: float = 300.0
    ) -> None:
        from langgraph_sdk import get_client

        self.client = get_client(url=url, api_key=api_key, timeout=timeout)
        self.assistant = assistant

    async def run(self, item: Item, variant: Variant, tag: dict[str, Any]) -> Outcome:
        metadata = {EXPERIMENT_KEY: tag}
        started = time.perf_counter()
        out = Outcome()
        try:
            thread = await self.client.threads.create(metadata=metadata)
            out.thread_id = thread["thread_id"]
            run = await self.client.runs.create(
                out.thread_id,
                self.assistant,
                input=item.graph_input(),
                config={"configurable": variant.configurable()},
                metadata=metadata,
            )
            out.run_id = run["run_id"]
            values = await self.client.runs.join(out.thread_id, out.run_id)
            out.latency_ms = (time.perf_counter() - started) * 1000
            done = await self.client.runs.get(out.thread_id, out.run_id)
        except Exception as e:
            out.latency_ms = (time.perf_counter() - started) * 1000
            out.error = f"{type(e).__name__}: {e}"
            return out
        out.usage = done.get("usage")  # type: ignore[assignment]
        if done["status"] != "success":
            error = done.get("error") or {}
            detail = (
                error.get("message") or error.get("detail") if isinstance(error, dict) else error
            )
            out.error = f"run {done['status']}" + (f": {detail}" if detail else "")
        elif isinstance(values, dict) and "__error__" in values:
            out.error = f"run failed: {values['__error__']}"
        else:
            out.output = values
        return out

    async def aclose(self) -> None:
        await self.client.aclose()


def _usage_numbers(usage: dict[str, Any] | None) -> tuple[int, int, float | None]:
    if not usage:
        return 0, 0, None
    cost = usage.get("cost_usd")
    # A model without a price leaves the cost unknown, not zero.
    if usage.get("unpriced_models"):
        cost = None
    return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)), cost


async def score_outcome(scorer: CombinedScorer, item: Item, outcome: Outcome) -> Score:
    if outcome.error is not None:
        # An item that failed to run counts as a 0: a mean that skipped failures would
        # reward a prompt that breaks the graph.
        return Score(0.0, [f"no answer: {outcome.error}"], dict.fromkeys(scorer.names, 0.0))
    sample = Sample(
        answer=answer_text(outcome.output),
        source=item.source(),
        expected=item.expected,
        metadata=item.metadata,
        messages=(outcome.output or {}).get("messages", ())
        if isinstance(outcome.output, dict)
        else (),
    )
    return await scorer.score(sample)


ProgressHook = Callable[[EvalResult], None]


async def run_items(
    experiment: Experiment,
    items: Sequence[Item],
    target: Any,
    scorer: CombinedScorer,
    *,
    concurrency: int = 4,
    on_result: ProgressHook | None = None,
) -> list[EvalResult]:
    """Every item under every variant, ``concurrency`` runs at a time; the results in
    variant then dataset order. Items are interleaved across variants so that both arms
    of a comparison see the server in the same state."""
    gate = asyncio.Semaphore(max(1, concurrency))
    jobs = [(v, i, item) for i, item in enumerate(items) for v in experiment.variants]

    async def one(variant: Variant, position: int, item: Item) -> EvalResult:
        tag = {"id": experiment.experiment_id, "name": experiment.name, "variant": variant.name}
        async with gate:
            outcome = await target.run(item, variant, tag)
        score = await score_outcome(scorer, item, outcome)
        tokens_in, tokens_out, cost = _usage_numbers(outcome.usage)
        result = EvalResult(
            experiment_id=experiment.experiment_id,
            variant=variant.name,
            item_id=item.id,
            position=position,
            input=item.input,
            expected=item.expected,
            output=None if outcome.error else answer_text(outcome.output),
            score=score.value,
            parts=score.parts,
            reasons=score.reasons,
            latency_ms=round(outcome.latency_ms, 1),
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=cost,
            run_id=outcome.run_id,
            thread_id=outcome.thread_id,
            error=outcome.error,
            created_at=datetime.now(UTC),
        )
        if on_result is not None:
            on_result(result)
        return result

    results = await asyncio.gather(*(one(v, i, item) for v, i, item in jobs))
    order = {v.name: n for n, v in enumerate(experiment.variants)}
    return sorted(results, key=lambda r: (order[r["variant"]], r["position"]))
