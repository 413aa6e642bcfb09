"""``policies.pii`` over LangChain messages: the model layer calls ``protect_input`` on
the messages it sends and ``protect_output`` on the message it gets back.

Which messages each stage covers: ``input``, the user's (``HumanMessage``);
``tool_results``, the tools' (``ToolMessage``); ``output``, the model's (``AIMessage``: its
text and its tool calls' arguments). System prompts are the developer's and pass as they
are: with ``block``, a support address in a prompt would refuse every call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from dockyard.policies.pii.policy import PiiPolicy
from dockyard.settings import PiiStage

M = TypeVar("M", bound=BaseMessage)


def _walk(value: Any, fix: Callable[[str], str]) -> Any:
    """``value`` (JSON-like) with ``fix`` applied to every string in it; the same object
    when nothing changed, so unchanged messages are not copied."""
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, list):
        items = [_walk(v, fix) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        out = {k: _walk(v, fix) for k, v in value.items()}
        return value if all(out[k] is v for k, v in value.items()) else out
    return value


def _content(content: Any, fix: Callable[[str], str]) -> Any:
    if isinstance(content, str):
        return fix(content)
    if not isinstance(content, list):
        return content
    blocks: list[Any] = []
    for block in content:
        if isinstance(block, str):
            blocks.append(fix(block))
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            text = fix(block["text"])
            blocks.append(block if text is block["text"] else {**block, "text": text})
        else:  # images, files: not text
            blocks.append(block)
    return content if all(a is b for a, b in zip(blocks, content, strict=True)) else blocks


def apply_message(policy: PiiPolicy, message: M, stage: PiiStage) -> M:
    """``message`` with the policy applied to its text (content strings and text blocks)
    and, for an AI message, its tool calls' arguments; the same object when it held none."""

    def fix(text: str) -> str:
        out = policy.apply(text, stage=stage)
        return text if out == text else out

    update: dict[str, Any] = {}
    content = _content(message.content, fix)
    if content is not message.content:
        update["content"] = content
    if isinstance(message, AIMessage):
        calls = [
            call if (args := _walk(call["args"], fix)) is call["args"] else {**call, "args": args}
            for call in message.tool_calls
        ]
        if any(a is not b for a, b in zip(calls, message.tool_calls, strict=True)):
            update["tool_calls"] = calls
        invalid = _walk(message.invalid_tool_calls, fix)
        if invalid is not message.invalid_tool_calls:
            update["invalid_tool_calls"] = invalid
    return message.model_copy(update=update) if update else message


def protect_input(policy: PiiPolicy, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages a model is about to get, with the stages the policy covers applied:
    user messages under ``input``, tool results under ``tool_results``."""
    out: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, HumanMessage) and policy.applies_to("input"):
            message = apply_message(policy, message, "input")
        elif isinstance(message, ToolMessage) and policy.applies_to("tool_results"):
            message = apply_message(policy, message, "tool_results")
        out.append(message)
    return out


def protect_output(policy: PiiPolicy, message: M) -> M:
    """The model's answer, with the policy applied when it covers ``output``."""
    if isinstance(message, AIMessage) and policy.applies_to("output"):
        return apply_message(policy, message, "output")
    return message


class PiiMessageGuard:
    """``policies.pii`` as a model registry message guard (providers/message_guard.py)."""

    def __init__(self, policy: PiiPolicy) -> None:
        self.policy = policy

    def model_input(self, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
        return protect_input(self.policy, messages)

    def model_output(self, message: AIMessage) -> AIMessage:
        return protect_output(self.policy, message)
