"""``"offline:deep"``: the deep agent's offline model, which plays its whole flow.

No key, no network, and the same answer every time, so the example runs anywhere and the
tests can assert on each step. It reads the conversation and the tools it is given:

* as the **main agent** (it has ``task``), for "write a report on X":
  ``write_todos`` (the plan) → ``task`` to ``researcher`` → ``write_file /report.md``
  (a human approves, edits or rejects it) → ``execute wc -w`` on the report → ``write_file
  /memories/<x>.md`` with the key points (approved too) → ``write_todos`` (all done) → a
  final answer. A rejected report ends the turn there; a rejected memory is reported.
  For "run `cmd`" it calls ``execute`` with ``cmd``; for 'in /f.md replace "a" with
  "b"' it calls ``edit_file``; for "what do you remember about X" it lists
  ``/memories/`` and reads what is there;
* as the **researcher** (it has ``search_guide``): searches, then answers with the hits;
* as any other sub-agent: answers in one line.

Each step is decided by the number of tool-calling answers it has given since the last
human message, so a run resumed from a checkpoint (after an approval, or on another
worker after a crash) takes up exactly where it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec, tool_name

REPORT_PATH = "/report.md"
_QUOTED_COMMAND = re.compile(r"`([^`]+)`")
_COMMAND = re.compile(r"^\s*(?:please\s+)?(?:run|execute)\s+(.+?)\s*$", re.I | re.S)
_EDIT = re.compile(
    r"(?P<path>/[\w.\-/]+).*?\breplace\s+\"(?P<old>[^\"]+)\"\s+with\s+\"(?P<new>[^\"]*)\"",
    re.I | re.S,
)
_RECALL = re.compile(r"\b(remember|recall|memories|memory)\b", re.I)
_TOPIC = re.compile(r"\b(?:on|about|regarding)\s+(.+?)[\s.?!]*$", re.I | re.S)
_WORD = re.compile(r"[a-z0-9]+")
_PATH = re.compile(r"/[\w.\-/]+")
_STOP = frozenset(("a", "an", "and", "for", "in", "of", "on", "or", "the", "to", "with", "about"))
_REJECTED = "User rejected the tool call"


def topic_of(request: str) -> str:
    """What a request is about: the words after on / about, else the whole request."""
    match = _TOPIC.search(request)
    return (match.group(1) if match else request).strip().rstrip(".?!") or "notes"


def slug(text: str) -> str:
    """A file-name form of ``text``: its first four words that say something."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP][:4]
    return "-".join(words) or "notes"


def memory_path(topic: str) -> str:
    return f"/memories/{slug(topic)}.md"


class DeepOfflineModel(FakeChatModelBase):
    """``"offline:deep"`` (module docstring)."""

    model_name: str = "offline-deep"

    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        names = {tool_name(t) for t in tools}
        request, turn = _current_turn(messages)
        if "task" in names:
            return _main(request, turn)
        if "search_guide" in names:
            return _researcher(request, turn)
        return AIMessage(content=f"Done: {request.strip()[:200]}")


def _current_turn(messages: list[BaseMessage]) -> tuple[str, list[BaseMessage]]:
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return messages[index].text, messages[index + 1 :]
    return "", list(messages)


def _call(name: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": None}])


def _results(turn: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in turn if isinstance(m, ToolMessage)]


def _steps(turn: list[BaseMessage]) -> int:
    return sum(1 for m in turn if isinstance(m, AIMessage) and m.tool_calls)


def _rejected(message: ToolMessage) -> str | None:
    """The reviewer's reason, when ``message`` answers a rejected call."""
    text = message.text
    if not text.startswith(_REJECTED):
        return None
    reason = text.split("with reason:", 1)
    return reason[1].strip() if len(reason) == 2 else "no reason given"


def _output(message: ToolMessage) -> str:
    """A tool's own output, without the note LangChain puts before an edited call's."""
    text = message.text
    return text.split("Tool response:", 1)[1].strip() if "Tool response:" in text else text


def _researcher(request: str, turn: list[BaseMessage]) -> AIMessage:
    results = _results(turn)
    if not results:
        return _call("search_guide", query=request)
    found = _output(results[-1])
    return AIMessage(content=f"Findings on {topic_of(request)!r}:\n{found}")


def _main(request: str, turn: list[BaseMessage]) -> AIMessage:
    if _RECALL.search(request):
        return _recall(request, turn)
    edit = _EDIT.search(request)
    if edit:
        return _edit(edit, turn)
    command = _QUOTED_COMMAND.search(request) or _COMMAND.search(request)
    if command:
        return _run(command.group(1), turn)
    return _report(request, turn)


def _run(command: str, turn: list[BaseMessage]) -> AIMessage:
    results = _results(turn)
    if not results:
        return _call("execute", command=command)
    reason = _rejected(results[-1])
    if reason is not None:
        return AIMessage(content=f"I did not run `{command}`: the reviewer rejected it ({reason}).")
    return AIMessage(content=f"Ran `{command}`:\n{_output(results[-1])}")


def _edit(edit: re.Match[str], turn: list[BaseMessage]) -> AIMessage:
    results = _results(turn)
    path = edit.group("path")
    if not results:
        return _call(
            "edit_file", file_path=path, old_string=edit.group("old"), new_string=edit.group("new")
        )
    reason = _rejected(results[-1])
    if reason is not None:
        return AIMessage(content=f"I did not edit {path}: the reviewer rejected it ({reason}).")
    return AIMessage(content=_output(results[-1]))


def _recall(request: str, turn: list[BaseMessage]) -> AIMessage:
    results = _results(turn)
    if not results:
        return _call("ls", path="/memories/")
    listed = [p for p in _PATH.findall(_output(results[0])) if p.endswith(".md")]
    wanted = set(_WORD.findall(topic_of(request).lower())) - _STOP
    chosen = [p for p in listed if wanted & set(_WORD.findall(p.lower()))] or listed
    chosen = chosen[:3]
    read = results[1:]
    if len(read) < len(chosen):
        return _call("read_file", file_path=chosen[len(read)])
    if not chosen:
        return AIMessage(content="I have nothing under /memories/ yet.")
    parts = [f"From {path}:\n{_file_text(m)}" for path, m in zip(chosen, read, strict=False)]
    return AIMessage(content="Here is what I remember.\n\n" + "\n\n".join(parts))


def _file_text(message: ToolMessage) -> str:
    """``read_file``'s output without its ``@@ lines 1-4 of 4 @@`` window header."""
    lines = _output(message).splitlines()
    return "\n".join(line for line in lines if not line.startswith("@@ ")).strip()


def _plan(statuses: tuple[str, str, str, str]) -> list[dict[str, str]]:
    steps = (
        "Research the topic with the researcher sub-agent",
        f"Write the report to {REPORT_PATH}",
        "Check the report's length",
        "Save the key points under /memories/",
    )
    return [{"content": c, "status": s} for c, s in zip(steps, statuses, strict=True)]


def _report(request: str, turn: list[BaseMessage]) -> AIMessage:
    topic = topic_of(request)
    results = _results(turn)
    by_name = {m.name: m for m in results}  # the last result of each tool
    last = results[-1] if results else None
    report_writes = sum(1 for m in results if m.name == "write_file")
    if last is not None and last.name == "write_file" and report_writes == 1:
        reason = _rejected(last)
        if reason is not None:  # the report itself: nothing to check or remember
            return AIMessage(
                content=f"I did not write the report on {topic}: the reviewer rejected it "
                f"({reason}). Nothing was saved."
            )
    step = _steps(turn)
    script: list[Callable[[], AIMessage]] = [
        lambda: _call("write_todos", todos=_plan(("in_progress", "pending", "pending", "pending"))),
        lambda: _call(
            "task",
            subagent_type="researcher",
            description=f"What does the production deployment guide say about {topic}?",
        ),
        lambda: _call("write_file", file_path=REPORT_PATH, content=_report_text(topic, by_name)),
        lambda: _call("execute", command=f"wc -w {_written(by_name) or REPORT_PATH}"),
        lambda: _call(
            "write_file", file_path=memory_path(topic), content=_memory_text(topic, by_name)
        ),
        lambda: _call("write_todos", todos=_plan(("completed",) * 4)),  # type: ignore[arg-type]
    ]
    if step < len(script):
        return script[step]()
    return AIMessage(content=_summary(topic, turn))


def _findings(by_name: dict[str | None, ToolMessage]) -> list[str]:
    task = by_name.get("task")
    lines = _output(task).splitlines() if task else []
    return [line for line in lines if line.startswith("- ")]


def _report_text(topic: str, by_name: dict[str | None, ToolMessage]) -> str:
    findings = _findings(by_name) or ["- The guide has nothing on this."]
    return (
        f"# {topic[:1].upper()}{topic[1:]}\n\n"
        "What the production deployment guide advises:\n\n" + "\n".join(findings) + "\n"
    )


def _memory_text(topic: str, by_name: dict[str | None, ToolMessage]) -> str:
    findings = _findings(by_name)[:2] or ["- nothing found in the guide"]
    return f"# {topic}\n" + "\n".join(findings) + f"\n(report: {REPORT_PATH})\n"


def _written(by_name: dict[str | None, ToolMessage]) -> str | None:
    """The path the (first) approved ``write_file`` wrote, edits included."""
    message = by_name.get("write_file")
    if message is None or _rejected(message) is not None:
        return None
    paths = _PATH.findall(_output(message))
    return paths[0] if paths else None


def _summary(topic: str, turn: list[BaseMessage]) -> str:
    writes = [m for m in _results(turn) if m.name == "write_file"]
    executes = [m for m in _results(turn) if m.name == "execute"]
    found = _findings({m.name: m for m in _results(turn) if m.name == "task"})
    report = writes[0] if writes else None
    report_path = _written({"write_file": report}) if report else None
    lines = [f"Done: {len(found)} points from the guide on {topic}."]
    if report_path:
        words = re.match(r"\s*(\d+)", _output(executes[0])) if executes else None
        size = f" ({words.group(1)} words)" if words else ""
        lines.append(f"The report is at {report_path}{size}.")
    memory = writes[1] if len(writes) > 1 else None
    if memory is not None and (reason := _rejected(memory)) is not None:
        lines.append(
            f"The key points were not saved to memory: the reviewer rejected it ({reason})."
        )
    elif memory is not None:
        paths = _PATH.findall(_output(memory))
        where = paths[0] if paths else memory_path(topic)
        lines.append(f"The key points are saved in {where}, kept across conversations.")
    return " ".join(lines)
