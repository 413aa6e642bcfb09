"""The text of a run request, and the limits on its size (``policies.input.max_chars`` and
``max_tokens``).

Which text counts, from the typed :class:`~dockyard.run_spec.RunSpec` (the OpenAI-compatible
routes and ``/chat`` build one like the Agent Server routes do, so their messages arrive
here as ``input.messages``):

* ``input.messages[*].content``: a string or text content blocks (``{"type": "text"}``);
  a message may be a dict (``role`` or ``type``), a ``[role, content]`` pair or a bare
  string; ``input.messages`` may also be one message instead of a list;
* ``command.resume``: every string in it (a reply, or replies keyed by interrupt id);
* the string values of the top-level input keys named in ``policies.input.text_fields``.

Every piece counts toward the limits. Prompt-injection rules read the pieces a user or a
tool wrote (user and tool messages, resume strings, ``text_fields``), not assistant or
system messages, which are the agent's or the operator's own words.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InputTooLargeError
from dockyard.run_spec import RunSpec

# Roles whose words are the agent's or the operator's: counted, not scanned.
_OWN_ROLES = frozenset(
    {"ai", "assistant", "system", "developer", "AIMessage", "AIMessageChunk", "SystemMessage"}
)
_RESUME_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Text:
    """One piece of request text; ``where`` names its place (never its content)."""

    where: str
    text: str
    scanned: bool = True  # read by the prompt-injection rules


def request_texts(spec: RunSpec, text_fields: Sequence[str] = ()) -> list[Text]:
    """Every piece of text of the request that counts (see the module's docstring)."""
    out: list[Text] = []
    data = spec.input
    if isinstance(data, dict):
        if "messages" in data:
            out.extend(_messages(data["messages"]))
        for name in text_fields:
            value = data.get(name)
            if isinstance(value, str):
                out.append(Text(f"input.{name}", value))
            elif isinstance(value, list):
                out.extend(
                    Text(f"input.{name}[{i}]", v) for i, v in enumerate(value) if isinstance(v, str)
                )
    if spec.command is not None and spec.command.resume is not None:
        out.extend(_strings(spec.command.resume, "command.resume", _RESUME_DEPTH))
    return out


def _messages(value: Any) -> Iterator[Text]:
    items = value if isinstance(value, list | tuple) else [value]
    for i, msg in enumerate(items):
        role, content = _role_and_content(msg)
        text = _content_text(content)
        if text:
            yield Text(f"input.messages[{i}].content", text, scanned=role not in _OWN_ROLES)


def _role_and_content(msg: Any) -> tuple[str, Any]:
    if isinstance(msg, str):
        return "user", msg
    if isinstance(msg, list | tuple) and len(msg) == 2:
        return str(msg[0]), msg[1]
    if isinstance(msg, dict):
        if msg.get("lc") == 1 and isinstance(msg.get("kwargs"), dict):  # LangChain's dumpd()
            ident = msg.get("id")
            name = ident[-1] if isinstance(ident, list) and ident else "user"
            return str(name), msg["kwargs"].get("content")
        return str(msg.get("role") or msg.get("type") or "user"), msg.get("content")
    return "user", None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "\n".join(parts)
    return ""


def _strings(value: Any, where: str, depth: int) -> Iterator[Text]:
    if isinstance(value, str):
        yield Text(where, value)
    elif depth <= 0:
        return
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{where}.{k}", depth - 1)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]", depth - 1)


def estimate_tokens(text: str) -> int:
    """A cheap upper-leaning token count: a token per 4 ASCII characters (English runs
    about 4 characters a token in OpenAI's and Anthropic's tokenizers) plus one per other
    character (a Hangul syllable or a CJK character is about one token, often more than
    one in older tokenizers). No tokenizer is loaded: the model is not known here."""
    if text.isascii():
        return (len(text) + 3) // 4
    ascii_chars = len(text.encode("ascii", "ignore"))
    return (ascii_chars + 3) // 4 + len(text) - ascii_chars


def check_size(texts: Sequence[Text], *, max_chars: int | None, max_tokens: int | None) -> None:
    """Raise InputTooLargeError when the texts together pass a limit."""
    if max_chars is not None:
        _within("max_chars", max_chars, sum(len(t.text) for t in texts), "characters")
    if max_tokens is not None:
        tokens = sum(estimate_tokens(t.text) for t in texts)
        _within(
            "max_tokens",
            max_tokens,
            tokens,
            "tokens (estimated: a token per 4 ASCII characters, one per other character)",
        )


def _within(name: str, maximum: int, actual: int, unit: str) -> None:
    if actual > maximum:
        raise InputTooLargeError(
            f"the request's message text is {actual} {unit}, over the limit of {maximum} "
            f"(policies.input.{name}); send less text, e.g. a shorter message or fewer past "
            "messages",
            limit=f"policies.input.{name}",
            maximum=maximum,
            actual=actual,
        )


__all__ = ["Text", "check_size", "estimate_tokens", "request_texts"]
