"""What the rule scorers cost per answer: ``check`` on a typical ticket summary, in
process, p50 / p99 in microseconds (docs/evals.md; docs/perf.md, "Quality scorers").

    .venv/bin/python bench/scorer_bench.py [--repeat 5000]

The answer: a 5-line summary of a support ticket (~400 characters, English and Korean
cases), scored against the ticket (~600 characters) by each rule scorer alone, then by
all of them combined (the quality gate's rule set). The JSON Schema case scores a JSON
answer. The LLM judge is a model call and is not measured here.

Then the quality gate's own cost per answer (policies/quality_gate.py): one model call
through the gate, its answer accepted at once, against the same call without the gate, the
model being a function returning a finished answer (so only the gate's work is left):
with a grader that does nothing (the gate alone: scoring dispatch, the mark, the copy of
the answer), with the eight rules (what an answer costs in all), and a streamed call
buffered by the gate against the same stream passed through.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import platform
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from dockyard.quality import (
    CombinedScorer,
    ContainsScorer,
    ExactScorer,
    ForbiddenScorer,
    JsonSchemaScorer,
    LanguageScorer,
    LengthScorer,
    OverlapScorer,
    PiiLeakScorer,
    RegexScorer,
    RequiredScorer,
    RuleScorer,
    Sample,
    Score,
)

TICKET_EN = (
    "Customer kim.minji@example.com (phone 010-2345-6789) writes: I ordered the blue jacket "
    "(order A-10234) on December 1st and it arrived yesterday with a torn sleeve. I would "
    "like a replacement in the same size, or a full refund if the size is out of stock. "
    "I already sent photos to your support address twice and nobody answered. This is the "
    "second time an order arrived damaged; the first was order A-9981 in October. Please "
    "tell me by Friday what you will do, otherwise I will dispute the charge with my bank."
)
ANSWER_EN = (
    "## Summary\nOrder A-10234 (blue jacket) arrived with a torn sleeve; second damaged order "
    "after A-9981.\n## Request\nReplacement in the same size, or a full refund if out of "
    "stock.\n## Urgency\nHigh: the customer wants an answer by Friday and may dispute the "
    "charge.\n## Action\nReply to kim.minji@example.com with a replacement offer today."
)
TICKET_KO = (
    "고객 kim.minji@example.com (010-2345-6789) 문의: "
    "12월 1일에 주문한 파란 재킷(주문 A-10234)이 어제 "
    "도착했는데 소매가 찢어져 있었습니다. 같은 사이즈로 "
    "교환을 원하고, 재고가 없으면 전액 환불을 원합니다. "
    "사진을 두 번 보냈지만 답변이 없었습니다. 10월 주문 "
    "A-9981도 파손되어 도착했습니다. 금요일까지 답변이 "
    "없으면 카드사에 이의를 제기하겠다고 합니다."
)
ANSWER_KO = (
    "## 요약\n주문 A-10234 파란 재킷이 소매가 찢어진 채 "
    "도착했습니다. A-9981에 이은 두 번째 파손입니다.\n"
    "## 요청\n같은 사이즈 교환, 재고가 없으면 전액 환불.\n"
    "## 긴급도\n높음: 금요일까지 답변을 원하며 "
    "카드사 이의 제기 가능성이 있습니다.\n"
    "## 조치\n오늘 교환을 제안하는 답장을 보냅니다."
)
SCHEMA = {
    "type": "object",
    "required": ["summary", "priority", "order_ids"],
    "properties": {
        "summary": {"type": "string", "maxLength": 400},
        "priority": {"enum": ["low", "normal", "high"]},
        "order_ids": {"type": "array", "items": {"type": "string", "pattern": "^A-\\d+$"}},
    },
}
JSON_ANSWER = json.dumps(
    {
        "summary": "Torn sleeve on A-10234; wants replacement",
        "priority": "high",
        "order_ids": ["A-10234", "A-9981"],
    }
)


SECTIONS = {
    "en": ["Summary", "Request", "Urgency", "Action"],
    "ko": ["요약", "요청", "긴급도", "조치"],
}


def rules(language: str) -> list[tuple[str, RuleScorer]]:
    return [
        ("exact", ExactScorer("Order A-10234 arrived damaged.")),
        ("contains", ContainsScorer(["A-10234", "refund", "Friday"])),
        ("regex", RegexScorer(r"A-\d{4,}")),
        ("length", LengthScorer(min_words=20, max_words=120)),
        ("required sections", RequiredScorer(sections=SECTIONS[language])),
        ("language", LanguageScorer(language)),
        ("forbidden", ForbiddenScorer(["as an AI", "I cannot help", "I'm sorry, but"])),
        ("pii leak", PiiLeakScorer()),
        ("overlap", OverlapScorer(min_ratio=0.3, max_ratio=0.9)),
    ]


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    for _ in range(min(200, repeat)):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def ameasure(fn: Callable[[], Awaitable[object]], repeat: int) -> tuple[float, float]:
    for _ in range(min(200, repeat)):
        await fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        await fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def gate_cases(repeat: int) -> list[tuple[str, float, float]]:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    from dockyard.policies.quality_gate import QualityGate
    from dockyard.providers.offline.base import to_chunks
    from dockyard.providers.wrapper import ModelCall
    from dockyard.settings import QualityConfig

    usage = {"input_tokens": 150, "output_tokens": 90, "total_tokens": 240}
    call = ModelCall(
        "default", GenericFakeChatModel(messages=iter([])), [HumanMessage(TICKET_EN)], None, {}
    )

    async def model(c: ModelCall) -> ChatResult:
        message = AIMessage(ANSWER_EN, usage_metadata=dict(usage))  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def stream(c: ModelCall) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in to_chunks(AIMessage(ANSWER_EN, usage_metadata=dict(usage))):  # type: ignore[arg-type]
            yield chunk

    async def nothing(text: str, messages: Sequence[BaseMessage]) -> Score:
        return Score(1.0)

    combined = CombinedScorer([(s, 1.0) for n, s in rules("en") if n != "exact"])

    async def eight(text: str, messages: Sequence[BaseMessage]) -> Score:
        return combined.check(Sample(answer=text, source=TICKET_EN, messages=messages))

    config = QualityConfig(
        scorers=[{"type": "length", "max_words": 500}], accept=0, retry=0, fallback=0
    )
    bare = QualityGate(config, nothing, name="default")
    ruled = QualityGate(config, eight, name="default")

    async def drain(it: AsyncIterator[ChatGenerationChunk]) -> None:
        async for _ in it:
            pass

    out = []
    for name, fn in (
        ("model call, no gate", lambda: model(call)),
        ("through the gate, grader does nothing", lambda: bare.agenerate(call, model)),
        ("through the gate, eight rules", lambda: ruled.agenerate(call, model)),
        ("streamed, no gate", lambda: drain(stream(call))),
        ("streamed, buffered by the gate", lambda: drain(bare.astream(call, stream))),
    ):
        p50, p99 = await ameasure(fn, repeat)
        out.append((name, p50, p99))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5000)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, repeat {args.repeat}")
    print(f"{'case':<34}{'p50 µs':>10}{'p99 µs':>10}")
    for lang, ticket, answer in (("en", TICKET_EN, ANSWER_EN), ("ko", TICKET_KO, ANSWER_KO)):
        sample = Sample(answer=answer, source=ticket)
        scorers = rules(lang)
        for name, scorer in scorers:
            p50, p99 = measure(functools.partial(scorer.check, sample), args.repeat)
            print(f"{lang} {name:<31}{p50:>10.1f}{p99:>10.1f}")
        combined = CombinedScorer([(s, 1.0) for _, s in scorers if _ != "exact"])
        p50, p99 = measure(functools.partial(combined.check, sample), args.repeat)
        print(f"{lang} {'all rules combined (8)':<31}{p50:>10.1f}{p99:>10.1f}")
    schema = JsonSchemaScorer(SCHEMA)
    json_sample = Sample(answer=JSON_ANSWER)
    p50, p99 = measure(functools.partial(schema.check, json_sample), args.repeat)
    print(f"{'json schema (3 fields)':<34}{p50:>10.1f}{p99:>10.1f}")
    for name, p50, p99 in asyncio.run(gate_cases(args.repeat)):
        print(f"gate: {name:<40}{p50:>10.1f}{p99:>10.1f}")


if __name__ == "__main__":
    main()
