"""Which text of a run request counts, and the character and token limits at their boundary."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.errors import InputTooLargeError
from dockyard.policies.input_limits import Text, check_size, estimate_tokens, request_texts
from dockyard.run_spec import RunCommand, RunSpec


def _spec(input: Any = None, resume: Any = None) -> RunSpec:
    command = RunCommand(resume=resume) if resume is not None else None
    return RunSpec(assistant_id="a", input=input, command=command)


def test_message_shapes() -> None:
    spec = _spec(
        {
            "messages": [
                {"role": "user", "content": "plain"},
                {"type": "human", "content": [{"type": "text", "text": "a"}, "b", {"x": 1}]},
                ["user", "pair"],
                "bare",
                {"role": "assistant", "content": "the agent's words"},
                {"role": "system", "content": "the operator's words"},
                {"role": "tool", "content": "a web page", "tool_call_id": "1"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
                {
                    "lc": 1,
                    "type": "constructor",
                    "id": ["langchain", "schema", "messages", "HumanMessage"],
                    "kwargs": {"content": "dumped"},
                },
            ],
            "other": "not counted",
        }
    )
    assert request_texts(spec) == [
        Text("input.messages[0].content", "plain"),
        Text("input.messages[1].content", "a\nb"),
        Text("input.messages[2].content", "pair"),
        Text("input.messages[3].content", "bare"),
        Text("input.messages[4].content", "the agent's words", scanned=False),
        Text("input.messages[5].content", "the operator's words", scanned=False),
        Text("input.messages[6].content", "a web page"),
        Text("input.messages[8].content", "dumped"),
    ]


def test_one_message_instead_of_a_list_and_text_fields() -> None:
    spec = _spec({"messages": "hello", "question": "why?", "tags": ["a", 1, "b"], "n": 3})
    assert request_texts(spec, ["question", "tags", "n", "missing"]) == [
        Text("input.messages[0].content", "hello"),
        Text("input.question", "why?"),
        Text("input.tags[0]", "a"),
        Text("input.tags[2]", "b"),
    ]


def test_resume_strings() -> None:
    assert request_texts(_spec(resume="yes")) == [Text("command.resume", "yes")]
    spec = _spec(resume={"id1": "approve", "id2": {"decisions": [{"type": "edit", "msg": "x"}]}})
    assert request_texts(spec) == [
        Text("command.resume.id1", "approve"),
        Text("command.resume.id2.decisions[0].type", "edit"),
        Text("command.resume.id2.decisions[0].msg", "x"),
    ]
    assert request_texts(_spec(input=[1, 2], resume=3)) == []


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("abcd", 1),
        ("abcde", 2),
        ("안녕하세요", 5),  # a token per Hangul syllable
        ("hi 안녕", 3),  # 3 ASCII characters → 1, 2 syllables → 2
    ],
)
def test_token_estimate(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_limits_at_the_boundary() -> None:
    texts = [Text("a", "x" * 60), Text("b", "y" * 40)]  # 100 characters, 25 tokens
    check_size(texts, max_chars=100, max_tokens=25)
    check_size(texts, max_chars=None, max_tokens=None)
    with pytest.raises(InputTooLargeError) as err:
        check_size(texts, max_chars=99, max_tokens=None)
    e = err.value
    assert (e.status_code, e.code, e.limit, e.maximum, e.actual) == (
        413,
        "input_too_large",
        "policies.input.max_chars",
        99,
        100,
    )
    assert "policies.input.max_chars" in e.message
    assert e.to_body() == {
        "detail": e.message,
        "code": "input_too_large",
        "limit": "policies.input.max_chars",
        "max": 99,
        "actual": 100,
    }
    with pytest.raises(InputTooLargeError) as err:
        check_size(texts, max_chars=100, max_tokens=24)
    assert (err.value.limit, err.value.actual) == ("policies.input.max_tokens", 25)
    # Korean text costs more tokens per character than English.
    check_size([Text("k", "가" * 25)], max_chars=None, max_tokens=25)
    with pytest.raises(InputTooLargeError):
        check_size([Text("k", "가" * 26)], max_chars=None, max_tokens=25)
