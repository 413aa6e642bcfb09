"""Each scorer kind on answers it should pass and fail, the weighted combination, and
scorers declared as data (YAML/JSON specs)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from dockyard.quality import (
    CallableScorer,
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
    Sample,
    Score,
    build_scorer,
    load_specs,
    parse_specs,
    parse_verdict,
    script_ratios,
    text_of,
)

TICKET = (
    "Customer hong@example.com reports that order A-1001 arrived broken. "
    "They ask for a refund or a replacement before Friday."
)
SUMMARY = "## Summary\nOrder A-1001 arrived broken.\n## Action\nOffer a refund or replacement."


def check(scorer: object, answer: str, **kw: object) -> Score:
    return asyncio.run(scorer.score(Sample(answer=answer, **kw)))  # type: ignore[attr-defined, arg-type]


def test_score_clamps_and_text_of_reads_messages() -> None:
    assert Score(1.7).value == 1.0 and Score(-0.2).value == 0.0 and Score(float("nan")).value == 0
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert text_of(messages) == "hello"
    assert text_of({"messages": messages}) == "hello"
    assert text_of({"role": "ai", "content": [{"type": "text", "text": "a"}, "b"]}) == "ab"
    assert Sample.of(messages, {"messages": messages[:1]}).source == "hi"


def test_exact() -> None:
    s = ExactScorer()
    assert check(s, "  Shipped \n", expected="Shipped").value == 1.0
    assert check(s, "shipped", expected="Shipped").value == 0.0
    assert check(ExactScorer(case_sensitive=False), "shipped", expected="Shipped").value == 1.0
    structured = {"priority": "high", "ids": [1, 2]}
    assert check(s, '```json\n{"ids": [1,2], "priority": "high"}\n```', expected=structured).value
    assert check(s, '{"ids": [2, 1], "priority": "high"}', expected=structured).value == 0.0
    missing = check(s, "x")
    assert missing.value == 0.0 and "no expected value" in missing.reasons[0]


def test_contains_all_any_and_expected_list() -> None:
    s = ContainsScorer(["refund", "A-1001", "Friday"])
    score = check(s, SUMMARY)
    assert score.value == pytest.approx(2 / 3) and score.reasons == ["missing 'Friday'"]
    assert check(ContainsScorer(["friday", "refund"], mode="any"), SUMMARY).value == 1.0
    assert check(ContainsScorer(), SUMMARY, expected=["REFUND", "broken"]).value == 1.0


def test_regex_must_and_must_not() -> None:
    assert check(RegexScorer(r"A-\d{4}"), SUMMARY).value == 1.0
    assert check(RegexScorer(r"^## Action$"), SUMMARY).value == 1.0  # multiline
    banned = check(RegexScorer(r"(?i)as an ai", must_match=False), "As an AI, I think")
    assert banned.value == 0.0 and "must not" in banned.reasons[0]


def test_json_schema_fenced_answer_and_violations() -> None:
    schema = {
        "type": "object",
        "required": ["summary", "priority"],
        "properties": {"summary": {"type": "string"}, "priority": {"enum": ["low", "high"]}},
    }
    s = JsonSchemaScorer(schema)
    good = 'Here you go:\n```json\n{"summary": "broken order", "priority": "high"}\n```'
    assert check(s, good).value == 1.0
    bad = check(s, '{"summary": 3, "priority": "urgent"}')
    assert bad.value == 0.0 and bad.parts == {"json": 1.0, "schema": 0.0}
    assert any(r.startswith("priority:") for r in bad.reasons)
    assert any(r.startswith("summary:") for r in bad.reasons)
    assert check(s, "not json at all").reasons == ["answer is not JSON"]
    # The schema may come with the item instead.
    assert check(JsonSchemaScorer(), '{"a": 1}', metadata={"schema": {"type": "object"}}).value == 1
    with pytest.raises(Exception, match="is not valid"):
        JsonSchemaScorer({"type": "nonsense"})


def test_length_bounds_degrade_linearly() -> None:
    s = LengthScorer(min_words=5, max_words=10)
    assert check(s, "one two three four five six").value == 1.0
    short = check(s, "one two")
    assert short.value == pytest.approx(2 / 5) and "expected at least 5" in short.reasons[0]
    long = check(s, " ".join(["w"] * 15))
    assert long.value == pytest.approx(0.5) and "at most 10" in long.reasons[0]
    assert check(LengthScorer(max_chars=10), "x" * 30).value == 0.0


def test_required_fields_and_sections() -> None:
    sections = RequiredScorer(sections=["Summary", "Action", "Risk"])
    score = check(sections, SUMMARY)
    assert score.value == pytest.approx(2 / 3) and score.reasons == ["missing section Risk"]
    korean = check(RequiredScorer(sections=["요약"]), "[요약]\n주문이 파손되었습니다")
    assert korean.value == 1.0
    fields = RequiredScorer(fields=["summary", "customer.tier"])
    assert check(fields, '{"summary": "x", "customer": {"tier": "gold"}}').value == 1.0
    half = check(fields, '{"summary": "x", "customer": {"tier": ""}}')
    assert half.value == 0.5 and half.reasons == ["missing field customer.tier"]


def test_language_by_script() -> None:
    ko = LanguageScorer("ko")
    assert check(ko, "주문 A-1001이 파손된 상태로 도착했습니다. 환불을 요청합니다.").value == 1.0
    english = check(ko, "The order arrived broken; the customer wants a refund.")
    assert english.value == 0.0 and "mostly latin" in english.reasons[0]
    assert check(LanguageScorer("en"), "The order arrived broken.").value == 1.0
    assert check(LanguageScorer("ja"), "注文が壊れて届きました。").value == 1.0
    assert check(LanguageScorer("ja"), "订单损坏").value == 0.0  # Han alone is not Japanese
    mixed = script_ratios("환불 refund")
    assert mixed["hangul"] == pytest.approx(2 / 8) and mixed["latin"] == pytest.approx(6 / 8)
    with pytest.raises(ValueError, match="known"):
        LanguageScorer("xx")


def test_forbidden_phrases() -> None:
    s = ForbiddenScorer(["as an AI", "I cannot help"])
    assert check(s, SUMMARY).value == 1.0
    hit = check(s, "As an ai model, I cannot help.")
    assert hit.value == 0.0 and hit.reasons == [
        "forbidden phrase 'I cannot help'",
        "forbidden phrase 'as an AI'",
    ]


def test_pii_leak_counts_only_what_the_source_lacks_and_never_shows_values() -> None:
    s = PiiLeakScorer()
    assert check(s, "Reply sent to hong@example.com", source=TICKET).value == 1.0
    leak = check(s, "Also CC kim@example.org and call 010-1234-5678", source=TICKET)
    assert leak.value == 0.0
    assert sorted(leak.reasons) == [
        "1 email value(s) not in the source",
        "1 phone value(s) not in the source",
    ]
    assert "kim@example.org" not in " ".join(leak.reasons)
    strict = PiiLeakScorer(allow_from_source=False)
    assert check(strict, "Reply sent to hong@example.com", source=TICKET).value == 0.0


def test_overlap_with_source() -> None:
    s = OverlapScorer(min_ratio=0.5)
    grounded = check(s, "Order A-1001 arrived broken; refund or replacement.", source=TICKET)
    assert grounded.value == 1.0 and grounded.parts["ratio"] > 0.8
    stray = check(s, "Weather in Paris is lovely this spring season.", source=TICKET)
    assert stray.value < 0.3 and "in the source" in stray.reasons[0]
    copied = check(OverlapScorer(min_ratio=0.1, max_ratio=0.5), TICKET, source=TICKET)
    assert copied.value == 0.0 and "copied" in copied.reasons[0]
    assert check(s, "anything").reasons == ["no source text to compare with"]


def polite(sample: Sample) -> tuple[float, list[str]]:
    ok = "please" in sample.answer.lower()
    return (1.0 if ok else 0.2), ([] if ok else ["not polite"])


async def async_len(sample: Sample) -> dict[str, object]:
    return {"value": min(1.0, len(sample.answer) / 10), "parts": {"chars": len(sample.answer)}}


def test_python_callable_by_reference_and_async(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_scorers.py").write_text(
        "def shouty(sample):\n    return sample.answer.isupper()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert check(CallableScorer("my_scorers:shouty"), "HELLO").value == 1.0
    assert check(CallableScorer(polite), "no").reasons == ["not polite"]
    assert check(CallableScorer(async_len), "12345").value == 0.5
    with pytest.raises(ValueError, match="module:function"):
        CallableScorer("no_colon")
    with pytest.raises(ValueError, match="has no function"):
        CallableScorer("my_scorers:missing")
    sys.modules.pop("my_scorers", None)


def test_combined_weights_parts_reasons_and_a_failing_part() -> None:
    def broken(sample: Sample) -> float:
        raise RuntimeError("model down")

    combined = CombinedScorer(
        [
            (ContainsScorer(["refund"]), 3.0),
            (LengthScorer(max_words=2), 1.0),
            (CallableScorer(broken, name="judge"), 0.0),
        ]
    )
    score = check(combined, "offer a refund now")
    # contains 1.0 (w 3), length 0.0 (4 words vs 2: 1 - 2/2) (w 1), judge 0 with weight 0.
    assert score.value == pytest.approx(3 / 4)
    assert score.parts == {"contains": 1.0, "length": 0.0, "judge": 0.0}
    assert "judge: failed: RuntimeError: model down" in score.reasons
    assert any(r.startswith("length: 4 words") for r in score.reasons)
    assert not combined.is_rules
    with pytest.raises(TypeError):
        combined.check(Sample(answer="x"))
    rules = CombinedScorer([(ContainsScorer(["a"]), 1), (ForbiddenScorer(["b"]), 1)])
    assert rules.is_rules and rules.check(Sample(answer="ab")).value == 0.5
    with pytest.raises(ValueError, match="names must differ"):
        CombinedScorer([(ExactScorer(), 1), (ExactScorer(), 1)])


def test_specs_from_yaml_build_the_same_scorers(tmp_path: Path) -> None:
    (tmp_path / "rubric.md").write_text("Is it faithful to the ticket?")
    path = tmp_path / "scorers.yaml"
    path.write_text(
        """
scorers:
  - {type: contains, values: [refund], weight: 2}
  - {type: regex, pattern: 'A-\\d{4}', name: order_id}
  - type: rules
    name: style
    rules: [{type: length, max_words: 40}, {type: forbidden, phrases: [sorry]}]
  - {type: json_schema, schema: {type: object}, weight: 0}
  - {type: judge, rubric_file: rubric.md, weight: 0}
"""
    )
    specs = load_specs(path)
    scorer = build_scorer(specs, base=tmp_path)
    assert scorer.names == ["contains", "order_id", "style", "json_schema", "judge"]
    judge = scorer.scorers[-1][0]
    assert asyncio.run(judge.rubric_text()) == "Is it faithful to the ticket?"  # type: ignore[attr-defined]
    rules_only = CombinedScorer(scorer.scorers[:4])
    score = rules_only.check(Sample(answer=SUMMARY))
    assert score.parts == {"contains": 1.0, "order_id": 1.0, "style": 1.0, "json_schema": 0.0}
    assert score.value == 1.0  # json_schema has weight 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"type": "regex"}], "pattern"),
        ([{"type": "nope"}], "does not match any of the expected tags"),
        ([{"type": "exact", "colour": 1}], "Extra inputs are not permitted"),
        ([{"type": "length"}], "give min_chars"),
        ([{"type": "judge"}], "exactly one of rubric"),
        ([{"type": "contains", "weight": -1}], "greater than or equal to 0"),
    ],
)
def test_bad_specs_are_refused_with_the_entry_named(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_specs(data)
    assert "scorers[0" in str(info.value)


def test_rubric_prompt_needs_a_registry() -> None:
    specs = parse_specs([{"type": "judge", "rubric_prompt": "grader@production"}])
    with pytest.raises(ValueError, match="no prompt registry"):
        build_scorer(specs)
    scorer = build_scorer(specs, rubrics=lambda ref: f"text of {ref}")
    judge = scorer.scorers[0][0]
    assert asyncio.run(judge.rubric_text()) == "text of grader@production"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("reply", "scale", "value", "reasons"),
    [
        ('{"score": 0.8, "reasons": ["misses the date"]}', 1.0, 0.8, ["misses the date"]),
        ('Sure!\n```json\n{"score": 4, "reason": "ok"}\n```', 5.0, 0.8, ["ok"]),
        ("Score: 7/10 - decent", 1.0, 0.7, []),
        ('{"rating": "9"}', 10.0, 0.9, []),
        ('{"score": 12}', 10.0, 1.0, ["the judge gave 12, above the scale of 10: clamped"]),
        ("I like it", 1.0, 0.0, ["the judge's reply holds no score"]),
    ],
)
def test_judge_replies_are_read_robustly(
    reply: str, scale: float, value: float, reasons: list[str]
) -> None:
    score = parse_verdict(reply, scale)
    assert score.value == pytest.approx(value) and score.reasons == reasons
