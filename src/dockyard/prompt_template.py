"""A prompt version and its template syntax: ``{{ name }}`` fields, nothing else.

The syntax is deliberately tiny (no loops, filters, attribute access or code): a prompt
is data written by people who may not be allowed to run code on the server, so
rendering only substitutes values. A field is ``{{`` an identifier ``}}`` with optional
spaces; any other brace text is kept as written (``{"json": 1}`` and ``{{ 1 }}`` stay).

A version declares its variables. Rendering checks the values given against them: one
missing or one not declared is an error naming it (``prompt_variables``, 422), so that
a typo in a graph fails loudly instead of sending a prompt with a hole in it.

This module is a leaf (it imports only ``errors``): the storage layer stores these
versions and the graph-side ``dockyard.prompt`` renders them, without either importing
the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from dockyard.errors import InvalidRequestError

PromptKind = Literal["text", "chat"]
KINDS: tuple[PromptKind, ...] = ("text", "chat")
ROLES = ("system", "user", "assistant", "human", "ai")

FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Prompt and label names go into URLs, file names and CLI arguments (`name@3`, `name:prod`).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
LATEST = "latest"


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class PromptVersion:
    """One immutable version of a named prompt: ``template`` for a text prompt,
    ``messages`` for a chat prompt; ``sample``: variables it must render with before it
    can take a label."""

    name: str
    version: int
    kind: PromptKind
    template: str | None
    messages: tuple[Message, ...]
    variables: tuple[str, ...]
    sample: Mapping[str, Any] | None
    message: str
    author: str
    created_at: datetime
    config: Mapping[str, Any] = field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        """What makes two versions the same prompt (a push of unchanged content is no
        new version): everything but the number, the commit message, author and time."""
        return {
            "kind": self.kind,
            "template": self.template,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "variables": sorted(self.variables),
            "sample": dict(self.sample) if self.sample is not None else None,
            "config": dict(self.config),
        }

    def source(self) -> str:
        """The version as text, for diffs: the template, or each message under its role."""
        if self.kind == "text":
            return self.template or ""
        return "\n".join(f"[{m.role}]\n{m.content}" for m in self.messages)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            **self.content(),
            "message": self.message,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
        }


def fields(text: str) -> list[str]:
    """The variable names ``text`` uses, in order of first use."""
    return list(dict.fromkeys(FIELD.findall(text)))


def check_version(
    kind: str,
    template: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
    variables: Sequence[str] | None,
) -> tuple[tuple[Message, ...], tuple[str, ...]]:
    """Validate a new version's content; returns its messages and its variables (the
    declared ones, or the ones its text uses when none are declared)."""
    if kind not in KINDS:
        raise InvalidRequestError(
            f"prompt type {kind!r}: expected 'text' or 'chat'", code="invalid_prompt", param="type"
        )
    msgs: tuple[Message, ...] = ()
    if kind == "text":
        if not isinstance(template, str) or not template or messages:
            raise InvalidRequestError(
                "a text prompt has a non-empty `template` and no `messages`",
                code="invalid_prompt",
                param="template",
            )
        texts = [template]
    else:
        if not messages or template is not None:
            raise InvalidRequestError(
                "a chat prompt has `messages` ([{role, content}, ...]) and no `template`",
                code="invalid_prompt",
                param="messages",
            )
        out = []
        for i, m in enumerate(messages):
            if not isinstance(m, Mapping):
                m = {"role": None}
            role, content = m.get("role"), m.get("content")
            if role not in ROLES or not isinstance(content, str) or set(m) - {"role", "content"}:
                raise InvalidRequestError(
                    f"messages[{i}]: expected {{role, content}} with role one of "
                    f"{', '.join(ROLES)} and content a string",
                    code="invalid_prompt",
                    param=f"messages[{i}]",
                )
            out.append(Message(role, content))
        msgs = tuple(out)
        texts = [m.content for m in msgs]
    used = list(dict.fromkeys(n for t in texts for n in fields(t)))
    if variables is None:
        return msgs, tuple(used)
    declared = tuple(dict.fromkeys(variables))
    for name in declared:
        if not isinstance(name, str) or not FIELD.fullmatch("{{" + name + "}}"):
            raise InvalidRequestError(
                f"variable {name!r} is not a name (letters, digits, _)",
                code="invalid_prompt",
                param="variables",
            )
    if undeclared := [n for n in used if n not in declared]:
        raise InvalidRequestError(
            f"the template uses {', '.join(undeclared)} but `variables` does not declare "
            f"{'it' if len(undeclared) == 1 else 'them'}",
            code="invalid_prompt",
            param="variables",
        )
    return msgs, declared


def check_values(version: PromptVersion, values: Mapping[str, Any]) -> None:
    """A missing or an undeclared variable is an error naming it."""
    for name in version.variables:
        if name not in values:
            raise InvalidRequestError(
                f"prompt {version.name!r} v{version.version}: variable {name!r} is missing "
                f"(declared: {', '.join(version.variables)})",
                code="prompt_variables",
                param=name,
            )
    for name in values:
        if name not in version.variables:
            declared = ", ".join(version.variables) or "none"
            raise InvalidRequestError(
                f"prompt {version.name!r} v{version.version}: variable {name!r} is not "
                f"declared (declared: {declared})",
                code="prompt_variables",
                param=name,
            )


def substitute(text: str, values: Mapping[str, Any]) -> str:
    # Values go in as str(value), once: a value holding "{{ x }}" is not rendered again.
    return FIELD.sub(lambda m: str(values[m.group(1)]), text)


def render(version: PromptVersion, values: Mapping[str, Any]) -> str | list[dict[str, str]]:
    """The text, or the messages as ``[{role, content}]``, with ``values`` filled in."""
    check_values(version, values)
    if version.kind == "text":
        return substitute(version.template or "", values)
    return [{"role": m.role, "content": substitute(m.content, values)} for m in version.messages]


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``name``, ``name@3`` or ``name:production`` as (name, version, label)."""
    if "@" in ref:
        name, _, number = ref.rpartition("@")
        if not number.isdigit() or int(number) < 1:
            raise InvalidRequestError(f"{ref!r}: expected NAME@VERSION with VERSION >= 1")
        return name, int(number), None
    if ":" in ref:
        name, _, label = ref.rpartition(":")
        return name, None, label
    return ref, None, None


__all__ = [
    "FIELD",
    "KINDS",
    "LABEL",
    "LATEST",
    "NAME",
    "ROLES",
    "Message",
    "PromptKind",
    "PromptVersion",
    "check_values",
    "check_version",
    "fields",
    "parse_ref",
    "render",
    "substitute",
]
