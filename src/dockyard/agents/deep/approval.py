"""Which of the deep agent's tool calls wait for a human: the approval policy, with defaults.

``DeepApproval`` is dockyard's ``ConfiguredApproval`` (``policies.approval``, read on each
call from the process running the graph) over three defaults the guide asks for in
production: every ``write_file`` and ``edit_file`` waits, and ``execute`` waits when its
command matches ``DANGEROUS_COMMANDS``. A project's ``policies.approval.tools`` entry for
one of these tools replaces its default (its own ``when`` patterns, decisions and
description); entries for other tools add to them. LangChain's
``HumanInTheLoopMiddleware`` does the pausing and the approve / edit / reject resume.
"""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware import InterruptOnConfig
from langchain_core.messages import ToolCall
from langgraph.runtime import Runtime

from dockyard.providers.approval import ConfiguredApproval, interrupt_on
from dockyard.settings import ApprovalConfig, ApprovalRule

MEMORIES = "/memories/"
"""Files under this path are kept in dockyard's store; all others live in the thread."""

DANGEROUS_COMMANDS = (
    r"(^|[\s;&|(`])(rm|rmdir|mv|dd|mkfs|shred|truncate|chmod|chown|kill|pkill|shutdown|reboot)"
    r"(\s|$)|(?i:\b(drop|delete|truncate)\b)"
)
"""``execute`` commands that wait for a human unless ``policies.approval`` says otherwise:
the guide's ``rm`` / ``delete`` / ``drop`` / ``truncate`` and their relatives. A
regular expression searched in the command: program names case-sensitively, as shells run
them; the SQL-ish words in any case."""

DEFAULTS = ApprovalConfig(
    tools={
        "write_file": ApprovalRule(),
        "edit_file": ApprovalRule(),
        "execute": ApprovalRule(
            when={"command": DANGEROUS_COMMANDS},
            description="A command that deletes or changes things; run it?",
        ),
    }
)
"""The deep agent's own approval rules, under any ``policies.approval`` of the project."""


def _write_text(tool_call: ToolCall, state: Any, runtime: Runtime[Any]) -> str:
    args = tool_call["args"]
    path, content = str(args.get("file_path", "?")), str(args.get("content", ""))
    size = f"{len(content.splitlines())} lines, {len(content.split())} words"
    if path.startswith(MEMORIES):
        return f"Save {path} ({size}) to long-term memory, kept across conversations?"
    return f"Write {path} ({size}) in this conversation's files?"


def _edit_text(tool_call: ToolCall, state: Any, runtime: Runtime[Any]) -> str:
    args = tool_call["args"]
    every = " (every occurrence)" if args.get("replace_all") else ""
    return (
        f"Edit {args.get('file_path', '?')}: replace {_clip(args.get('old_string'))} "
        f"with {_clip(args.get('new_string'))}{every}?"
    )


def _clip(value: object, limit: int = 60) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# The defaults describe each call to the reviewer (a project's own rule keeps its text).
_DEFAULT_INTERRUPTS = interrupt_on(DEFAULTS)
_DEFAULT_INTERRUPTS["write_file"]["description"] = _write_text
_DEFAULT_INTERRUPTS["edit_file"]["description"] = _edit_text


class DeepApproval(ConfiguredApproval):
    """``policies.approval`` over the deep agent's ``DEFAULTS`` (module docstring)."""

    @property  # type: ignore[override]
    def interrupt_on(self) -> dict[str, InterruptOnConfig]:
        return {**_DEFAULT_INTERRUPTS, **super().interrupt_on}

    @interrupt_on.setter
    def interrupt_on(self, value: dict[str, InterruptOnConfig]) -> None:
        if value:
            raise TypeError("DeepApproval takes its tools from policies.approval and DEFAULTS")
