"""The quality gate layer on its own (policies/quality_gate.py): the decisions, the marks,
the sync and streamed paths, and what it leaves alone. The live path (a server, the
mock providers, the cache, the run) is tests/quality/test_gate_live.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from dockyard.policies.quality_gate import META_KEY, QualityGate, marked_score
from dockyard.providers.offline.base import to_chunks
from dockyard.providers.wrapper import ModelCall, ToolBinding
from dockyard.quality import Sample, Score
from dockyard.settings import QualityConfig

USAGE = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}


def config(**over: Any) -> QualityConfig:
    return QualityConfig.model_validate({"scorers": [{"type": "length", "max_words": 5}], **over})


def call(tools: ToolBinding | None = None) -> ModelCall:
    model = GenericFakeChatModel(messages=iter([]))
    return ModelCall("default", model, [HumanMessage("the ticket")], None, {}, tools=tools)


def answer(text: str, **kw: Any) -> ChatResult:
    message = AIMessage(text, usage_metadata=dict(USAGE), **kw)  # type: ignore[arg-type]
    return ChatResult(generations=[ChatGeneration(message=message)])


class Script:
    """The rest of the chain: answers from a list, counting calls by model."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.models: list[str] = []

    async def __call__(self, c: ModelCall) -> ChatResult:
        return self.sync(c)

    def sync(self, c: ModelCall) -> ChatResult:
        self.models.append(c.name)
        return answer(self.texts.pop(0))


def by_text(scores: dict[str, float]) -> Any:
    """A grader scoring each answer text as the table says."""

    async def grade(text: str, messages: Sequence[BaseMessage]) -> Score:
        assert [m.text for m in messages] == ["the ticket"]
        return Score(
            scores[text],
            [] if scores[text] == 1 else [f"rule: {text} is weak"],
            {"rule": scores[text]},
        )

    return grade


def mark(result: ChatResult) -> dict[str, Any]:
    message = result.generations[0].message
    assert isinstance(message, AIMessage)
    return message.response_metadata[META_KEY]  # type: ignore[no-any-return]


async def test_accepted_at_once() -> None:
    gate = QualityGate(config(), by_text({"good": 0.9}), name="default")
    script = Script("good")
    out = mark(await gate.agenerate(call(), script))
    assert (out["decision"], out["accepted"], out["score"]) == ("accept", True, 0.9)
    assert out["attempts"] == [{"model": "default", "score": 0.9}]
    assert script.models == ["default"]


async def test_retry_band_asks_again_and_keeps_the_best_when_none_passes() -> None:
    gate = QualityGate(
        config(max_retries=2), by_text({"a": 0.7, "b": 0.65, "c": 0.5}), name="default"
    )
    result = await gate.agenerate(call(), Script("a", "b", "c"))
    out = mark(result)
    assert (out["decision"], out["accepted"], out["score"]) == ("reject", False, 0.7)
    assert [a["score"] for a in out["attempts"]] == [0.7, 0.65, 0.5]
    assert out["parts"] == {"rule": {"score": 0.7, "reasons": ["a is weak"]}}
    message = result.generations[0].message
    assert message.text == "a"
    # The run paid for three calls: their usage is on the answer kept.
    assert isinstance(message, AIMessage) and message.usage_metadata is not None
    assert message.usage_metadata["total_tokens"] == 36


async def test_accepted_after_a_retry() -> None:
    gate = QualityGate(config(), by_text({"a": 0.7, "b": 0.95}), name="default")
    out = mark(await gate.agenerate(call(), Script("a", "b")))
    assert (out["decision"], out["score"], out["model"]) == ("retry", 0.95, "default")


async def test_below_fallback_goes_to_the_fallback_model_once() -> None:
    backup = Script("fb", "fb2")
    gate = QualityGate(
        config(fallback_model="backup", max_retries=1),
        by_text({"bad": 0.1, "fb": 0.3, "fb2": 0.85}),
        name="default",
        fallback=lambda c: backup(c.for_model("backup", c.model)),
    )
    primary = Script("bad")
    out = mark(await gate.agenerate(call(), primary))
    # 0.1: the fallback; its 0.3 is below fallback again, but it is not asked twice as
    # a fallback: its one retry goes to it, the model now answering.
    assert out["decision"] == "fallback" and out["model"] == "backup"
    assert [a["model"] for a in out["attempts"]] == ["default", "backup", "backup"]
    assert (primary.models, backup.models) == (["default"], ["backup", "backup"])


async def test_without_a_fallback_model_a_low_answer_is_retried() -> None:
    gate = QualityGate(config(max_retries=1), by_text({"bad": 0.1, "ok": 0.8}), name="default")
    out = mark(await gate.agenerate(call(), Script("bad", "ok")))
    assert (out["decision"], out["score"]) == ("retry", 0.8)


async def test_tool_calls_pass_untouched_and_structured_output_is_scored_as_json() -> None:
    tool_call = {"name": "lookup", "args": {"order": "A1"}, "id": "c1"}
    seen: list[str] = []

    async def grade(text: str, messages: Sequence[BaseMessage]) -> Score:
        seen.append(text)
        return Score(1.0)

    gate = QualityGate(config(), grade, name="default")

    async def tool_step(c: ModelCall) -> ChatResult:
        return answer("", tool_calls=[tool_call])

    result = await gate.agenerate(call(), tool_step)
    assert META_KEY not in result.generations[0].message.response_metadata and seen == []
    structured = ToolBinding([], {"ls_structured_output_format": {"schema": {}}})
    result = await gate.agenerate(call(structured), tool_step)
    assert mark(result)["decision"] == "accept" and seen == ['{"order": "A1"}']


def test_the_sync_path_needs_rules() -> None:
    from dockyard.quality import LengthScorer

    scorer = LengthScorer(max_words=1)

    def check(text: str, messages: Sequence[BaseMessage]) -> Score:
        return scorer.check(Sample(text))

    gate = QualityGate(config(max_retries=1), by_text({}), name="default", check=check)
    script = Script("two words", "one")
    out = mark(gate.generate(call(), script.sync))
    assert (out["decision"], [a["score"] for a in out["attempts"]]) == ("retry", [0.0, 1.0])
    # With a judge (no sync check) a sync call is passed through unscored.
    plain = QualityGate(config(), by_text({}), name="default")
    result = plain.generate(call(), Script("x").sync)
    assert META_KEY not in result.generations[0].message.response_metadata


@pytest.mark.parametrize("streaming", ["buffer", "score"])
async def test_streamed_calls(streaming: str) -> None:
    texts = ["weak answer", "good answer"]

    async def stream(c: ModelCall) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in to_chunks(AIMessage(texts.pop(0))):
            yield chunk

    gate = QualityGate(
        config(streaming=streaming),
        by_text({"weak answer": 0.7, "good answer": 1.0}),
        name="default",
    )
    chunks = [c async for c in gate.astream(call(), stream)]
    total = chunks[0].message
    for c in chunks[1:]:
        total = total + c.message
    out = total.response_metadata[META_KEY]
    if streaming == "buffer":  # held until it passed: only the kept answer streams
        assert total.text == "good answer" and out["decision"] == "retry"
    else:  # streamed as it came, then scored: nothing taken back
        assert total.text == "weak answer" and out["decision"] == "reject"
        assert out["attempts"] == [{"model": "default", "score": 0.7}]


def test_the_cache_hook_reads_the_mark() -> None:
    marked = AIMessage("x", response_metadata={META_KEY: {"score": 0.85}})
    assert marked_score([], marked) == 0.85
    assert marked_score([], AIMessage("unscored")) == 0.0


@pytest.mark.parametrize("streaming", ["buffer", "score"])
def test_sync_streamed_calls_with_rules(streaming: str) -> None:
    texts = ["two words", "one"]

    def stream(c: ModelCall) -> Iterator[ChatGenerationChunk]:
        yield from to_chunks(AIMessage(texts.pop(0)))

    def check(text: str, messages: Sequence[BaseMessage]) -> Score:
        return Score(1.0 if len(text.split()) == 1 else 0.7)

    gate = QualityGate(config(streaming=streaming), by_text({}), name="default", check=check)
    chunks = list(gate.stream(call(), stream))
    total = chunks[0].message
    for c in chunks[1:]:
        total = total + c.message
    out = total.response_metadata[META_KEY]
    expected = ("one", "retry") if streaming == "buffer" else ("two words", "reject")
    assert (total.text, out["decision"]) == expected
