"""``"offline:research"``: the research team's offline model, one script per agent role.

The research team (``dockyard.agents.research``) runs three agents; with no API key each
runs on this model, which tells the roles apart by the tools it is given:

* **supervisor** (``transfer_to_researcher`` bound): writes a plan and hands off to the
  researcher; once the researcher has reported, hands off to the writer; then ends.
* **researcher** (``search_documents`` bound): searches the local documents for the
  question and, in the same turn, tries ``web_search`` (and ``arxiv_search`` when the
  question asks for papers); reads the best document; then reports its findings naming
  each document it used.
* **writer** (no tools): turns the numbered sources it is given into a short report
  that cites each of them as ``[n]``.

Everything it says is built from the messages it gets, so the same question gives the
same run: tests assert on the handoffs, the tool calls and the citations.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage

from dockyard.providers.offline.base import FakeChatModelBase, ToolSpec, tool_name

TO_RESEARCHER = "transfer_to_researcher"
TO_WRITER = "transfer_to_writer"
SEARCH_DOCUMENTS = "search_documents"
READ_DOCUMENT = "read_document"
WEB_SEARCH = "web_search"
ARXIV_SEARCH = "arxiv_search"

_PAPERS = re.compile(r"\b(papers?|arxiv|preprints?|literature)\b|논문", re.I)
_DOC_REF = re.compile(r"\[doc:([^\]\s]+)\]")
_SOURCE_LINE = re.compile(r"^\[(\d+)\] (.+?) \(([^()]*)\): (.*)$")
_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)", re.S)


def _field(text: str, name: str) -> str | None:
    match = re.search(rf"^{name}:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else None


def question_of(messages: list[BaseMessage]) -> str:
    """The user's question: the ``Question:`` line a sub-agent is given, else the last
    human message."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return _field(message.text, "Question") or message.text.strip()
    return ""


def _since_question(messages: list[BaseMessage]) -> list[BaseMessage]:
    """The messages after the latest human message: this question's work so far."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return messages[i + 1 :]
    return messages


def first_sentence(text: str) -> str:
    body = " ".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    body = " ".join(body.split())
    match = _SENTENCE.match(body)
    return (match.group(1) if match else body).strip()


def _tool_call(name: str, args: dict[str, Any]) -> ToolCall:
    return ToolCall(name=name, args=args, id="")


def _call(name: str, args: dict[str, Any], content: str = "") -> AIMessage:
    return AIMessage(content=content, tool_calls=[_tool_call(name, args)])


class ResearchOfflineModel(FakeChatModelBase):
    """``"offline:research"``: the scripted supervisor, researcher and writer."""

    model_name: str = "offline-research"

    def _reply(self, messages: list[BaseMessage], tools: list[ToolSpec]) -> AIMessage:
        names = {tool_name(t) for t in tools}
        if TO_RESEARCHER in names:
            return self._supervisor(messages, names)
        if SEARCH_DOCUMENTS in names:
            return self._researcher(messages, names)
        return self._writer(messages)

    # -- supervisor --------------------------------------------------------------------

    def _supervisor(self, messages: list[BaseMessage], names: set[str]) -> AIMessage:
        question = question_of(messages)
        done = {m.name for m in _since_question(messages) if isinstance(m, ToolMessage)}
        if TO_RESEARCHER not in done:
            plan = (
                f"Plan: (1) the researcher gathers evidence on {question!r} from the "
                "document folder and any web or arXiv search that is available; (2) the "
                "writer turns the findings into a short report citing every source used."
            )
            task = f"Find what the sources say about: {question}"
            return _call(TO_RESEARCHER, {"task": task}, plan)
        if TO_WRITER not in done and TO_WRITER in names:
            task = f"Write a short report answering {question!r}, citing each source as [n]."
            return _call(TO_WRITER, {"task": task}, "The findings are in; on to the writer.")
        return AIMessage(content="The report is complete.")

    # -- researcher --------------------------------------------------------------------

    def _researcher(self, messages: list[BaseMessage], names: set[str]) -> AIMessage:
        question = question_of(messages)
        results = [m for m in messages if isinstance(m, ToolMessage)]
        called = {m.name for m in results}
        if SEARCH_DOCUMENTS not in called:
            # One turn, the searches side by side, as a provider's parallel tool calls:
            # each agent step is several graph steps (the middleware's hooks), and the
            # run's recursion_limit (25 by default) bounds them all.
            calls = [_tool_call(SEARCH_DOCUMENTS, {"query": question})]
            if WEB_SEARCH in names:
                calls.append(_tool_call(WEB_SEARCH, {"query": question}))
            if ARXIV_SEARCH in names and _PAPERS.search(question):
                calls.append(_tool_call(ARXIV_SEARCH, {"query": question}))
            return AIMessage(content="", tool_calls=calls)
        found = [m for m in results if m.name == SEARCH_DOCUMENTS]
        docs = _DOC_REF.findall(found[0].text) if found else []
        if READ_DOCUMENT in names and READ_DOCUMENT not in called and docs:
            return _call(READ_DOCUMENT, {"doc_id": docs[0]})
        return AIMessage(content=_notes(question, results))

    # -- writer ------------------------------------------------------------------------

    def _writer(self, messages: list[BaseMessage]) -> AIMessage:
        prompt = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        question = question_of(messages)
        sources = [m for m in map(_SOURCE_LINE.match, prompt.splitlines()) if m]
        if not sources:
            return AIMessage(
                content=f"# {question}\n\nThe research found no sources on this question, "
                "so there is nothing to report without guessing."
            )
        lines = [f"{first_sentence(m.group(4))} [{m.group(1)}]" for m in sources[:4]]
        body = " ".join(lines)
        return AIMessage(
            content=f"# {question}\n\n{body}\n\n"
            f"In short: the {len(lines)} sources above agree on the points cited."
        )


def _notes(question: str, results: list[ToolMessage]) -> str:
    lines = [f"Findings on {question!r}:"]
    for message in results:
        if message.name == SEARCH_DOCUMENTS:
            for block in message.text.split("\n\n"):
                ref = _DOC_REF.search(block)
                if ref:
                    passage = block.split("\n", 1)[1] if "\n" in block else ""
                    lines.append(f"- {first_sentence(passage)} [doc:{ref.group(1)}]")
        elif message.name in (WEB_SEARCH, ARXIV_SEARCH):
            lines.append(f"- {message.name}: {first_sentence(message.text)}")
    if len(lines) == 1:
        lines.append("- the documents hold nothing on this question.")
    return "\n".join(lines)
