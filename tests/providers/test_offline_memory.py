"""``offline:memory`` (the memory chat's scripted model) and ``chat_model(offline=...)``."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from dockyard.providers import load_chat_model
from dockyard.providers.offline.memory import (
    MEMORY_HEADER,
    MemoryOfflineModel,
    extract_facts,
    second_person,
)
from dockyard.providers.offline.models import OfflineChatModel
from dockyard.providers.registry import ModelRegistry, chat_model


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        (
            "Hi, my name is Mina Park and I live in Busan. Please contact me by email.",
            {
                "name": "My name is Mina Park.",
                "location": "I live in Busan.",
                "contact": "I prefer to be contacted by email.",
            },
        ),
        (
            "I'm allergic to wool, I wear size 42 shoes and I am vegan",
            {
                "allergy": "I am allergic to wool.",
                "shoe_size": "My shoe size is 42.",
                "diet": "I am vegan.",
            },
        ),
        (
            "제 이름은 민아입니다. 서울에 살아요.",
            {"name": "My name is 민아.", "location": "I live in 서울."},
        ),
        ("What is my name? Where is my order A1001?", {}),
    ],
)
def test_fact_rules(text: str, facts: dict[str, str]) -> None:
    assert {f["topic"]: f["text"] for f in extract_facts(text)} == facts


def test_second_person() -> None:
    assert second_person("My name is Mina.") == "your name is Mina"
    assert second_person("I am allergic to wool.") == "you are allergic to wool"
    assert second_person("I live in Busan.") == "you live in Busan"


def test_answers_from_the_memories_in_its_system_prompt() -> None:
    model = MemoryOfflineModel().bind_tools([_tool()])
    system = SystemMessage(f"You help.\n\n{MEMORY_HEADER}\n- My name is Mina Park.")
    answer = model.invoke([system, HumanMessage("What do you remember about me?")])
    assert (
        answer.content == "From our earlier conversations I remember that your name is Mina Park."
    )
    answer = model.invoke([SystemMessage("You help."), HumanMessage("What is my name?")])
    assert str(answer.content).startswith("I don't have anything about you on record yet")


def test_offline_models_write_an_extractive_summary() -> None:
    prompt = (
        "Summarize.\n<messages>\nMessages to summarize:\n"
        '<message type="human">My name is Mina &amp; I live in Busan.</message>\n'
        '<message type="ai">Thanks!</message>\n</messages>'
    )
    summary = OfflineChatModel().invoke(prompt)
    assert isinstance(summary, AIMessage)
    assert summary.content == "## SUMMARY\nThe user said:\n- My name is Mina & I live in Busan."


def test_offline_stand_in_only_when_nothing_chose_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    model = chat_model(offline="offline:memory")
    bare = ModelRegistry()
    assert isinstance(model.resolve(bare.run_config()), MemoryOfflineModel)  # type: ignore[attr-defined]
    assert type(chat_model().resolve(bare.run_config())).__name__ == "SupportOfflineModel"  # type: ignore[attr-defined]
    assert bare.names == ["default"]  # the stand-in is no `models:` name
    configured = ModelRegistry({"default": "offline:support"})
    assert configured.offline_stand_in("default", "offline:memory") == "default"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    keyed = ModelRegistry()
    assert keyed.offline_stand_in("default", "offline:memory") == "default"
    assert bare.offline_stand_in("fast", "offline:memory") == "fast"
    assert isinstance(load_chat_model("offline:memory"), MemoryOfflineModel)


def _tool() -> dict[str, object]:
    return {
        "type": "function",
        "function": {"name": "lookup_order", "description": "x", "parameters": {}},
    }
