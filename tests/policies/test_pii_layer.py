"""``policies.pii`` in the model chain: a model from the registry (what ``chat_model(...)``
resolves to) never sends the personal data it was given, and hands on a masked answer, on
every call path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from dockyard.policies.chain import model_wrap
from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec
from dockyard.providers.registry import ModelRegistry
from dockyard.settings import load_settings

PERSONAL = "write to hong@example.co.kr or 010-1234-5678"


class Recorder(FakeChatModelBase):
    """Keeps what it was sent; answers with an e-mail address of its own."""

    seen: list[str] = []

    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        self.seen.append(messages[-1].text)
        return AIMessage(content="reach us at desk@example.com today")


def registry(tmp_path: Path, **pii: Any) -> tuple[ModelRegistry, Recorder]:
    settings = load_settings(None, project_dir=tmp_path, policies={"pii": pii} if pii else {})
    model = Recorder()
    model.seen = []
    return ModelRegistry({"default": model}, tmp_path, wrap=model_wrap(settings)), model


@pytest.mark.parametrize("path", ["ainvoke", "invoke", "astream", "stream"])
async def test_the_model_gets_masked_input_and_the_answer_is_masked(
    tmp_path: Path, path: str
) -> None:
    models, recorder = registry(tmp_path, action="redact")
    model = models.get("default")
    messages = [HumanMessage(PERSONAL)]
    if path == "ainvoke":
        answer = (await model.ainvoke(messages)).text
    elif path == "invoke":
        answer = model.invoke(messages).text
    elif path == "astream":
        answer = "".join([c.text async for c in model.astream(messages)])
    else:
        answer = "".join(c.text for c in model.stream(messages))
    (seen,) = recorder.seen
    assert "hong@example.co.kr" not in seen and "010-1234-5678" not in seen
    assert "[REDACTED_EMAIL]" in seen and "[REDACTED_PHONE]" in seen
    assert "desk@example.com" not in answer and "[REDACTED_EMAIL]" in answer


async def test_without_the_block_the_model_is_handed_out_as_built(tmp_path: Path) -> None:
    models, recorder = registry(tmp_path)
    model = models.get("default")
    assert model is models.raw("default")
    await model.ainvoke([HumanMessage(PERSONAL)])
    assert recorder.seen == [PERSONAL]
