"""``policies.quality``: the quality gate, a layer of the model chain (policies/chain.py).

It sits inside the cache (cache → gate → PII → ... → provider), so the cache only ever
sees the answer the gate let through. Each final answer of a call (an ``AIMessage``
without tool calls, or a structured output's JSON) is scored by the grader the runtime
gives it (``runtime/quality.py`` builds it from ``quality/``, which policies do not
import). Then, with ``accept``, ``retry`` and ``fallback`` the configured thresholds:

* score >= accept: the answer goes out;
* score < fallback, and a ``fallback_model`` not asked yet: the call goes to it (once);
* otherwise, while retries are left (``max_retries``): the model last asked is asked
  again — between ``fallback`` and ``retry`` too (without a fallback model, or once it
  answered, another try is all there is);
* none left: the best answer goes out, ``decision`` ``reject`` (not accepted).

The answer kept carries ``response_metadata["dockyard_quality"]`` (``META_KEY``): its
score, the parts (scorer → score and reasons), the decision and every attempt (model,
score). The cache's ``min_quality`` reads the score from there (``marked_score``), the
run's usage tally stores it on the run. The usage of the attempts not kept is added to
the answer's (the run paid for them). Tool-call steps pass untouched.

A streamed call is buffered by default (``streaming: buffer``: its answer streams once
it passed; discarded attempts never reach the client); ``streaming: score`` streams as
it comes and only scores the answer at its end (nothing can be taken back). Calls the
grader makes (an LLM judge) pass the gate unscored.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.messages.ai import UsageMetadata, add_ai_message_chunks, add_usage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from dockyard.providers.offline.base import to_chunks
from dockyard.providers.wrapper import (
    AsyncNext,
    AsyncStreamNext,
    ModelCall,
    ModelLayer,
    SyncNext,
    SyncStreamNext,
)
from dockyard.settings import QualityConfig

META_KEY = "dockyard_quality"
STRUCTURED = "ls_structured_output_format"
"""The ``bind_tools`` argument ``with_structured_output`` passes: its tool call is the answer."""

Decision = Literal["accept", "retry", "fallback", "reject"]


class Graded(Protocol):
    """A score as ``quality.Score`` gives it."""

    @property
    def value(self) -> float: ...
    @property
    def reasons(self) -> list[str]: ...
    @property
    def parts(self) -> dict[str, float]: ...


Grader = Callable[[str, Sequence[BaseMessage]], Awaitable[Graded]]
"""Scores an answer's text given the call's messages."""
SyncGrader = Callable[[str, Sequence[BaseMessage]], Graded]

# Set while the grader runs: its own model calls (a judge's) are not gated.
_GRADING: contextvars.ContextVar[bool] = contextvars.ContextVar("dockyard_grading", default=False)


def marked_score(messages: Sequence[BaseMessage], message: AIMessage) -> float:
    """The cache's quality hook (``min_quality``): the score the gate marked on the
    answer; 0 for an answer it did not score (a tool-call step, no gate), never stored."""
    mark = message.response_metadata.get(META_KEY)
    score = mark.get("score") if isinstance(mark, dict) else None
    return float(score) if isinstance(score, int | float) else 0.0


def answer_text(call: ModelCall, message: AIMessage) -> str | None:
    """What the gate scores of ``message``: its text, a structured output's JSON; None
    for a step that calls tools (not an answer yet)."""
    if message.tool_calls:
        if call.tools is not None and STRUCTURED in call.tools.kwargs:
            return json.dumps(message.tool_calls[0]["args"], ensure_ascii=False)
        return None
    return message.text


@dataclass
class _Round:
    """The attempts of one gated call, and what to do after each."""

    config: QualityConfig
    name: str
    fallback_name: str | None
    on_fallback: bool = False
    retries: int = 0
    attempts: list[dict[str, Any]] = field(default_factory=list)
    results: list[tuple[ChatResult, AIMessage, Graded]] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.fallback_name if self.on_fallback and self.fallback_name else self.name

    def add(self, result: ChatResult, message: AIMessage, graded: Graded) -> str:
        """Record an attempt; "done", "retry" or "fallback"."""
        c = self.config
        self.results.append((result, message, graded))
        self.attempts.append({"model": self.model, "score": round(graded.value, 4)})
        if graded.value >= c.accept:
            return "done"
        if graded.value < c.fallback and self.fallback_name and not self.on_fallback:
            self.on_fallback = True
            return "fallback"
        if self.retries < c.max_retries:
            self.retries += 1
            return "retry"
        return "done"

    def finish(self) -> ChatResult:
        """The best attempt's result, marked, carrying every attempt's usage."""
        best, mark, extra = self.verdict()
        result, message, _ = self.results[best]
        usage = message.usage_metadata
        if extra is not None:
            usage = add_usage(usage, extra)
        update: dict[str, Any] = {
            "response_metadata": {**message.response_metadata, META_KEY: mark}
        }
        if usage is not None:
            update["usage_metadata"] = usage
        kept = message.model_copy(update=update)
        generation = ChatGeneration(
            message=kept, generation_info=result.generations[0].generation_info
        )
        return ChatResult(generations=[generation], llm_output=result.llm_output)

    def verdict(self) -> tuple[int, dict[str, Any], UsageMetadata | None]:
        """The best attempt's index, its mark, and the usage of the attempts not kept."""
        best = max(range(len(self.results)), key=lambda i: self.results[i][2].value)
        graded = self.results[best][2]
        accepted = graded.value >= self.config.accept
        decision: Decision = "reject"
        if accepted:
            model = self.attempts[best]["model"]
            decision = "accept" if best == 0 else "fallback" if model != self.name else "retry"
        extra: UsageMetadata | None = None
        for i, (_, other, _) in enumerate(self.results):
            if i != best and other.usage_metadata:
                extra = add_usage(extra, other.usage_metadata)
        mark = {
            "score": round(graded.value, 4),
            "decision": decision,
            "accepted": accepted,
            "model": self.attempts[best]["model"],
            "parts": _parts(graded),
            "attempts": self.attempts,
        }
        return best, mark, extra


def _parts(graded: Graded) -> dict[str, dict[str, Any]]:
    """Each scorer's score with its own reasons (a combination prefixes them ``name: ``)."""
    return {
        name: {
            "score": round(value, 4),
            "reasons": [
                r.removeprefix(f"{name}: ") for r in graded.reasons if r.startswith(f"{name}: ")
            ],
        }
        for name, value in graded.parts.items()
    }


def _single(result: ChatResult) -> AIMessage | None:
    if len(result.generations) != 1:
        return None
    message = result.generations[0].message
    return message if isinstance(message, AIMessage) else None


def _collected(chunks: Sequence[ChatGenerationChunk]) -> ChatResult:
    parts = [c.message for c in chunks if isinstance(c.message, AIMessageChunk)]
    if not parts:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])
    # One merge over all the chunks: adding them pairwise copies the text each time.
    total = add_ai_message_chunks(parts[0], *parts[1:]) if len(parts) > 1 else parts[0]
    return ChatResult(generations=[ChatGeneration(message=message_chunk_to_message(total))])


class QualityGate(ModelLayer):
    """The gate of one model name: ``fallback`` sends a call to ``config.fallback_model``
    through that model's own inner layers (the chain gives it); ``check``: the grader
    as a plain call when every scorer is a rule (the sync paths need it)."""

    def __init__(
        self,
        config: QualityConfig,
        grade: Grader,
        *,
        name: str,
        fallback: AsyncNext | None = None,
        sync_fallback: SyncNext | None = None,
        check: SyncGrader | None = None,
    ) -> None:
        self.config = config
        self.grade = grade
        self.name = name
        self.fallback = fallback
        self.sync_fallback = sync_fallback
        self.check = check

    def _round(self, sync: bool) -> _Round:
        has_fallback = (self.sync_fallback if sync else self.fallback) is not None
        return _Round(self.config, self.name, self.config.fallback_model if has_fallback else None)

    async def _graded(self, text: str, call: ModelCall) -> Graded:
        token = _GRADING.set(True)
        try:
            return await self.grade(text, call.messages)
        finally:
            _GRADING.reset(token)

    async def agenerate(self, call: ModelCall, call_next: AsyncNext) -> ChatResult:
        if _GRADING.get():
            return await call_next(call)
        return await self._gate(call, call_next)

    async def _gate(self, call: ModelCall, ask: AsyncNext) -> ChatResult:
        round_, result = await self._gated(call, ask)
        return result if round_ is None else round_.finish()

    async def _gated(self, call: ModelCall, ask: AsyncNext) -> tuple[_Round | None, ChatResult]:
        """The attempts of ``call`` (None: its first answer was no answer to score, e.g. a
        tool call; returned as it came)."""
        # Attempts do not stream tokens to the run's callbacks: only the answer kept is
        # the call's.
        quiet = replace(call, run_manager=None)
        round_ = self._round(sync=False)
        result = await ask(quiet)
        while True:
            message = _single(result)
            text = answer_text(call, message) if message is not None else None
            if message is None or text is None:
                return (None, result) if not round_.results else (round_, result)
            step = round_.add(result, message, await self._graded(text, call))
            if step == "done":
                return round_, result
            if round_.on_fallback:
                assert self.fallback is not None
                result = await self.fallback(quiet)
            else:
                result = await ask(quiet)

    def generate(self, call: ModelCall, call_next: SyncNext) -> ChatResult:
        if _GRADING.get() or self.check is None:
            # A judge is awaited: a sync call is not gated (docs/quality.md).
            return call_next(call)
        quiet = replace(call, run_manager=None)
        round_ = self._round(sync=True)
        result = call_next(quiet)
        while True:
            message = _single(result)
            text = answer_text(call, message) if message is not None else None
            if message is None or text is None:
                return result if not round_.results else round_.finish()
            step = round_.add(result, message, self.check(text, call.messages))
            if step == "done":
                return round_.finish()
            if round_.on_fallback:
                assert self.sync_fallback is not None
                result = self.sync_fallback(quiet)
            else:
                result = call_next(quiet)

    async def astream(  # type: ignore[override]
        self, call: ModelCall, call_next: AsyncStreamNext
    ) -> AsyncIterator[ChatGenerationChunk]:
        if _GRADING.get():
            async for chunk in call_next(call):
                yield chunk
            return
        if self.config.streaming == "score":
            chunks: list[ChatGenerationChunk] = []
            async for chunk in call_next(call):
                chunks.append(chunk)
                yield chunk
            result = _collected(chunks)
            text = _text_of(call, result)
            if text is not None:
                yield self._mark_chunk(result, await self._graded(text, call))
            return

        streamed: dict[int, list[ChatGenerationChunk]] = {}

        async def buffered(c: ModelCall) -> ChatResult:
            chunks = [chunk async for chunk in call_next(c)]
            result = _collected(chunks)
            streamed[id(result.generations[0].message)] = chunks
            return result

        round_, result = await self._gated(call, buffered)
        if round_ is None:  # not an answer: as it came
            for chunk in streamed.get(id(_single(result))) or _result_chunks(result):
                yield chunk
            return
        best, verdict, extra = round_.verdict()
        kept = streamed.get(id(round_.results[best][1]))
        if kept is None:  # the fallback model's, asked without streaming
            for chunk in _result_chunks(round_.finish()):
                yield chunk
            return
        # The kept attempt's chunks as they came, then its mark (and the usage of the
        # attempts thrown away) on an empty last chunk.
        for chunk in kept:
            yield chunk
        last = AIMessageChunk(
            content="", response_metadata={META_KEY: verdict}, usage_metadata=extra
        )
        yield ChatGenerationChunk(message=last)

    def stream(self, call: ModelCall, call_next: SyncStreamNext) -> Iterator[ChatGenerationChunk]:
        if _GRADING.get() or self.check is None:
            yield from call_next(call)
            return
        if self.config.streaming == "score":
            chunks: list[ChatGenerationChunk] = []
            for chunk in call_next(call):
                chunks.append(chunk)
                yield chunk
            result = _collected(chunks)
            text = _text_of(call, result)
            if text is not None:
                yield self._mark_chunk(result, self.check(text, call.messages))
            return
        result = self.generate(call, lambda c: _collected(list(call_next(c))))
        yield from _result_chunks(result)

    def _mark_chunk(self, result: ChatResult, graded: Graded) -> ChatGenerationChunk:
        """A streamed answer's verdict, as an empty last chunk (``streaming: score``)."""
        message = _single(result)
        assert message is not None
        round_ = _Round(self.config, self.name, None, retries=self.config.max_retries)
        round_.add(result, message, graded)
        _, verdict, _ = round_.verdict()
        return ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata={META_KEY: verdict})
        )


def _text_of(call: ModelCall, result: ChatResult) -> str | None:
    message = _single(result)
    return answer_text(call, message) if message is not None else None


def _result_chunks(result: ChatResult) -> list[ChatGenerationChunk]:
    message = _single(result)
    if message is None:
        return []
    return to_chunks(message)
