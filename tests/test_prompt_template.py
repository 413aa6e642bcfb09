"""The ``{{ name }}`` template syntax and its checks (``dockyard.prompt_template``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dockyard.errors import InvalidRequestError
from dockyard.prompt_source import Prompt
from dockyard.prompt_template import PromptVersion, check_version, parse_ref, render


def version(kind: str = "text", **content: object) -> PromptVersion:
    messages, variables = check_version(
        kind,
        content.get("template"),  # type: ignore[arg-type]
        content.get("messages"),  # type: ignore[arg-type]
        content.get("variables"),  # type: ignore[arg-type]
    )
    return PromptVersion(
        name="p",
        version=1,
        kind=kind,  # type: ignore[arg-type]
        template=content.get("template"),  # type: ignore[arg-type]
        messages=messages,
        variables=variables,
        sample=None,
        message="",
        author="t",
        created_at=datetime.now(UTC),
    )


def test_fields_are_filled_once_and_other_braces_stay() -> None:
    v = version(template='{"id": {{ id }}} {{x}} {{ 1 }} {{ id }}')
    assert v.variables == ("id", "x")
    assert render(v, {"id": 7, "x": "{{ id }}"}) == '{"id": 7} {{ id }} {{ 1 }} 7'


def test_missing_and_undeclared_values_are_named() -> None:
    v = version(template="{{ a }} {{ b }}")
    with pytest.raises(InvalidRequestError) as missing:
        render(v, {"a": 1})
    assert missing.value.code == "prompt_variables" and missing.value.param == "b"
    with pytest.raises(InvalidRequestError) as unknown:
        render(v, {"a": 1, "b": 2, "c": 3})
    assert unknown.value.param == "c" and "not declared" in unknown.value.message


def test_declared_variables_must_cover_the_template() -> None:
    with pytest.raises(InvalidRequestError, match="uses b but"):
        version(template="{{ a }} {{ b }}", variables=["a"])
    # declared and unused is allowed (a variable a later version will use)
    assert version(template="{{ a }}", variables=["a", "z"]).variables == ("a", "z")


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        ("text", {"template": ""}),
        ("text", {"template": "x", "messages": [{"role": "user", "content": "x"}]}),
        ("chat", {"messages": []}),
        ("chat", {"messages": [{"role": "robot", "content": "x"}]}),
        ("chat", {"messages": [{"role": "user", "content": "x", "name": "n"}]}),
        ("chat", {"messages": ["hello"]}),
        ("text", {"template": "{{ a }}", "variables": [True]}),
        ("html", {"template": "x"}),
    ],
)
def test_malformed_versions_are_refused(kind: str, content: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError) as e:
        version(kind, **content)
    assert e.value.code == "invalid_prompt"


def test_chat_prompt_renders_langchain_messages() -> None:
    v = version(
        "chat",
        messages=[
            {"role": "system", "content": 'Reply as JSON {"tone": "{{ tone }}"}'},
            {"role": "user", "content": "{{ q }}"},
        ],
    )
    p = Prompt(v, "production")
    messages = p.render(tone="dry", q="hi")
    assert [(m.type, m.content) for m in messages] == [
        ("system", 'Reply as JSON {"tone": "dry"}'),
        ("human", "hi"),
    ]
    lc = p.langchain().invoke({"tone": "dry", "q": "hi"}).to_messages()
    assert [m.content for m in lc] == [m.content for m in messages]


def test_refs() -> None:
    assert parse_ref("a") == ("a", None, None)
    assert parse_ref("a@3") == ("a", 3, None)
    assert parse_ref("a:production") == ("a", None, "production")
    with pytest.raises(InvalidRequestError):
        parse_ref("a@x")
