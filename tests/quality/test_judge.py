"""The LLM judge on real provider SDKs against the mock OpenAI and Anthropic servers:
the scripted verdict is read, the rubric and the texts reach the model, a model that
answers off-format or fails is scored as the docs say."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.providers.registry import ModelRegistry
from dockyard.quality import (
    CombinedScorer,
    ContainsScorer,
    JudgeScorer,
    Sample,
    build_scorer,
    parse_specs,
)
from dockyard.settings import ModelSpec
from dockyard.testing import MockAnthropicServer, MockOpenAIServer

SAMPLE = Sample(
    answer="Order A-1001 arrived broken; offer a refund.",
    source="Customer says order A-1001 arrived broken and wants a refund.",
    expected="Refund order A-1001.",
)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[MockOpenAIServer, MockAnthropicServer]]:
    with MockOpenAIServer() as oa, MockAnthropicServer() as an:
        yield oa, an


@pytest.fixture
def registry(
    tmp_path: Path, servers: tuple[MockOpenAIServer, MockAnthropicServer]
) -> ModelRegistry:
    oa, an = servers
    oa.reset()
    an.reset()
    (tmp_path / "key").write_text("test-key")
    return ModelRegistry(
        {
            "grader": ModelSpec(
                model="openai:gpt-4o-mini",
                base_url=oa.base_url,
                api_key_file=Path("key"),
                max_retries=0,
            ),
            "claude": ModelSpec(
                model="anthropic:claude-sonnet-4-6",
                base_url=an.base_url,
                api_key_file=Path("key"),
                max_retries=0,
            ),
        },
        tmp_path,
    )


async def test_openai_judge_reads_the_scripted_json_verdict(
    registry: ModelRegistry, servers: tuple[MockOpenAIServer, MockAnthropicServer]
) -> None:
    oa, _ = servers
    oa.enqueue_text(json.dumps({"score": 4, "reasons": ["does not name the courier"]}))
    judge = JudgeScorer(
        "Grade faithfulness from 0 to 5.", model="grader", models=registry.get, scale=5
    )
    score = await judge.score(SAMPLE)
    assert score.value == pytest.approx(0.8)
    assert score.reasons == ["does not name the courier"]
    [request] = oa.requests
    sent = json.dumps(request.body)
    for text in ("Grade faithfulness from 0 to 5.", SAMPLE.answer, SAMPLE.source, SAMPLE.expected):
        assert text in sent
    assert "a number from 0 to 5" in sent


async def test_anthropic_judge_with_a_rubric_callable_that_places_the_texts(
    registry: ModelRegistry, servers: tuple[MockOpenAIServer, MockAnthropicServer]
) -> None:
    _, an = servers
    an.enqueue_text('Here is my verdict:\n```json\n{"score": 0.3, "reasons": "too vague"}\n```')
    calls: list[str] = []

    async def rubric() -> str:  # e.g. the prompt registry's current "production" version
        calls.append("read")
        return 'ANSWER<<{answer}>> SOURCE<<{source}>> {"format": "json"}'

    judge = JudgeScorer(rubric, model="claude", models=registry.get)
    score = await judge.score(SAMPLE)
    assert score.value == pytest.approx(0.3) and score.reasons == ["too vague"]
    assert calls == ["read"]
    sent = json.dumps(an.requests[-1].body)
    assert f"ANSWER<<{SAMPLE.answer}>>" in sent and '{\\"format\\": \\"json\\"}' in sent


async def test_off_format_reply_scores_zero_and_a_failed_call_is_a_part_not_a_crash(
    registry: ModelRegistry, servers: tuple[MockOpenAIServer, MockAnthropicServer]
) -> None:
    oa, _ = servers
    oa.enqueue_text("Looks fine to me!")
    judge = JudgeScorer("Grade it.", model="grader", models=registry.get)
    off = await judge.score(SAMPLE)
    assert off.value == 0.0 and off.reasons == ["the judge's reply holds no score"]

    oa.fail_next(500, times=1)
    combined = CombinedScorer([(ContainsScorer(["refund"]), 1.0), (judge, 1.0)])
    score = await combined.score(SAMPLE)
    assert score.parts == {"contains": 1.0, "judge": 0.0}
    assert score.value == 0.5
    assert any(r.startswith("judge: failed: ") and "500" in r for r in score.reasons)


async def test_judge_declared_in_a_spec_uses_the_given_models(
    registry: ModelRegistry, servers: tuple[MockOpenAIServer, MockAnthropicServer]
) -> None:
    oa, _ = servers
    oa.enqueue_text('{"score": 1, "reasons": []}')
    scorer = build_scorer(
        parse_specs(
            [
                {"type": "judge", "model": "grader", "rubric": "Faithful?", "weight": 3},
                {"type": "contains", "values": ["courier"]},
            ]
        ),
        models=registry.get,
    )
    score = await scorer.score(SAMPLE)
    assert score.parts == {"judge": 1.0, "contains": 0.0}
    assert score.value == pytest.approx(0.75)
