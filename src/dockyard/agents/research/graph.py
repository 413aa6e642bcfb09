"""The research team's graph: a supervisor that hands off to a researcher and a writer.

::

    START -> supervisor --transfer_to_researcher--> researcher -> supervisor
                        --transfer_to_writer------> writer -> END
                        --(no handoff)------------> END

Each of the three is a LangChain ``create_agent`` agent run inside its node, so each is
a subgraph: ``client.runs.stream(..., stream_subgraphs=True)`` shows its model and tool
steps under its namespace (``researcher:<task id>``). The supervisor's handoff tools
return at once (``return_direct``); its node reads which one was called and goes there
(``Command(goto=...)``). The researcher gets a fresh conversation (the question and its
task), so its tool calls stay in its subgraph; what comes back to the parent is its
notes and the sources its tools found. The writer gets the notes and the numbered
sources; its node appends the list of the sources the text cites, built from the
records the tools returned, so the report can only cite what was retrieved.

Each agent's system prompt comes from the prompt registry when the project has it
(``research-supervisor``, ``research-researcher``, ``research-writer`` at label
``production``; ``prompts.py``). Policies are dockyard's: every agent has
``dockyard.middleware()`` (``policies.limits``: model and tool calls per agent, ``exit:
end`` or ``error``; ``policies.approval``, ``policies.pii``, ``policies.summarization``),
every model is ``chat_model(...)`` (routing, cache, retries, usage and cost), the run's
``recursion_limit`` bounds the steps of the team and of each agent, and
``policies.budget`` holds each run's estimated cost at admission.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Any, NotRequired, TypedDict

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from dockyard import middleware
from dockyard.agents.research.corpus import Corpus
from dockyard.agents.research.offline import OfflineResearchModel
from dockyard.agents.research.prompts import PROMPTS, RegistryPrompt
from dockyard.agents.research.tools import Source, research_tools, sources_of
from dockyard.providers.offline.research import TO_RESEARCHER, TO_WRITER
from dockyard.providers.registry import DEFAULT, chat_model
from dockyard.providers.search import ArxivSearch, SearchAdapter, TavilySearch

log = logging.getLogger("dockyard.agents.research")

BACK_TO_SUPERVISOR = "transfer_back_to_supervisor"

_CITATION = re.compile(r"\[(\d{1,3})\]")


class Report(TypedDict):
    """The finished report: its text (with its sources list) and what it cites."""

    question: str
    text: str
    citations: list[Source]  # the sources the text cites, in the order of their numbers
    uncited: list[str]  # refs of sources found but not cited
    unknown_citations: list[int]  # numbers cited that name no source (a model's mistake)


class ResearchState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    sources: NotRequired[list[Source]]
    report: NotRequired[Report | None]


# -- helpers -------------------------------------------------------------------------


def _turn(messages: list[AnyMessage]) -> tuple[str, list[AnyMessage]]:
    """The latest question and the messages since it."""
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], HumanMessage):
            return messages[i].text, messages[i + 1 :]
    return "", list(messages)


def _task(messages: list[AnyMessage], handoff: str) -> str:
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call["name"] == handoff:
                    return str(call["args"].get("task", ""))
    return ""


def _handoff_tool(name: str, agent: str) -> BaseTool:
    def handoff(task: str) -> str:
        return f"Handed off to the {agent}: {task}"

    return StructuredTool.from_function(
        handoff,
        name=name,
        description=f"Hand the task to the {agent}, with a precise description of it.",
        return_direct=True,
    )


def _model(model: BaseChatModel | str | None) -> BaseChatModel:
    if model is None:
        return chat_model(DEFAULT)
    return chat_model(model) if isinstance(model, str) else model


def _agent(
    model: BaseChatModel | str | None, tools: list[BaseTool], name: str
) -> CompiledStateGraph[Any, Any, Any, Any]:
    prompt_name = f"research-{name}"
    return create_agent(
        _model(model),
        tools=tools,
        system_prompt=PROMPTS[prompt_name],
        # The offline swap sits innermost: the policies' middleware sees chat_model(...)
        # and leaves its guards to the model chain the swapped-in model is wrapped in.
        middleware=[RegistryPrompt(prompt_name), *middleware(), OfflineResearchModel()],
        name=name,
    )


def _source_list(sources: list[Source]) -> str:
    lines = []
    for n, s in enumerate(sources, 1):
        # One line per source; its headings are in the title already.
        body = (line for line in s["excerpt"].splitlines() if not line.lstrip().startswith("#"))
        excerpt = " ".join(" ".join(body).split())[:600]
        lines.append(f"[{n}] {s['title']} ({s['ref']}): {excerpt}")
    return "\n".join(lines)


def make_report(question: str, text: str, sources: list[Source]) -> Report:
    """The report of ``text``: its citations checked against ``sources``, and the list of
    the cited ones appended."""
    cited: list[int] = []
    unknown: list[int] = []
    for n in (int(m) for m in _CITATION.findall(text)):
        bucket = cited if 1 <= n <= len(sources) else unknown
        if n not in bucket:
            bucket.append(n)
    if unknown:
        log.warning("the writer cited sources that do not exist: %s", unknown)
    cited.sort()
    listed = "\n".join(f"[{n}] {sources[n - 1]['title']}: {sources[n - 1]['ref']}" for n in cited)
    full = f"{text.rstrip()}\n\n## Sources\n\n{listed}" if cited else text
    refs = {sources[n - 1]["ref"] for n in cited}
    return Report(
        question=question,
        text=full,
        citations=[sources[n - 1] for n in cited],
        uncited=[s["ref"] for s in sources if s["ref"] not in refs],
        unknown_citations=unknown,
    )


# -- the graph -----------------------------------------------------------------------


def make_graph(
    docs_dir: Path | str,
    *,
    web: SearchAdapter | None = None,
    arxiv: SearchAdapter | None = None,
    supervisor_model: BaseChatModel | str | None = None,
    researcher_model: BaseChatModel | str | None = None,
    writer_model: BaseChatModel | str | None = None,
    passages: int = 4,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The research team over the documents in ``docs_dir``.

    ``web`` / ``arxiv``: the search adapters (default: ``TavilySearch()``, on when
    ``TAVILY_API_KEY`` is set, and ``ArxivSearch()``, on when arXiv can be reached).
    ``*_model``: a ``models:`` name or a chat model per role (default:
    ``chat_model("default")``, offline the scripted ``offline:research`` roles).
    ``passages``: how many passages (from as many documents) a search returns.
    """
    corpus = Corpus(Path(docs_dir))
    tools = research_tools(
        corpus,
        web if web is not None else TavilySearch(),
        arxiv if arxiv is not None else ArxivSearch(),
        k=passages,
    )
    handoffs = [
        _handoff_tool(TO_RESEARCHER, "researcher"),
        _handoff_tool(TO_WRITER, "writer"),
    ]
    supervisor_agent = _agent(supervisor_model, handoffs, "supervisor")
    researcher_agent = _agent(researcher_model, tools, "researcher")
    writer_agent = _agent(writer_model, [], "writer")
    targets = {TO_RESEARCHER: "researcher", TO_WRITER: "writer"}

    async def supervisor(state: ResearchState, config: RunnableConfig) -> Command[str]:
        messages = state["messages"]
        result = await supervisor_agent.ainvoke({"messages": messages}, config)
        new: list[BaseMessage] = result["messages"][len(messages) :]
        goto = END
        for message in reversed(new):
            if isinstance(message, ToolMessage) and message.name in targets:
                goto = targets[message.name]
                break
        update: dict[str, Any] = {"messages": new}
        _, turn = _turn(messages)
        if not any(isinstance(m, ToolMessage) and m.name == TO_RESEARCHER for m in turn):
            update["sources"] = []  # a new question: its own sources
            update["report"] = None
        if goto != END:
            log.info("supervisor hands off to the %s", goto)
        return Command(goto=goto, update=update)

    async def researcher(state: ResearchState, config: RunnableConfig) -> dict[str, Any]:
        question, turn = _turn(state["messages"])
        task = _task(turn, TO_RESEARCHER) or question
        brief = HumanMessage(f"Question: {question}\nTask: {task}")
        result = await researcher_agent.ainvoke({"messages": [brief]}, config)
        found = sources_of([m.artifact for m in result["messages"] if isinstance(m, ToolMessage)])
        known = list(state.get("sources") or [])
        refs = {s["ref"] for s in known}
        known.extend(s for s in found if s["ref"] not in refs)
        notes = result["messages"][-1].text
        # The handback is a tool call and its answer, as langgraph-supervisor writes it:
        # the supervisor's next prompt ends on a tool result, which every provider takes.
        call_id = f"call_back_{len(state['messages'])}"
        back = AIMessage(
            content="",
            name="researcher",
            tool_calls=[{"name": BACK_TO_SUPERVISOR, "args": {}, "id": call_id}],
        )
        return {
            "messages": [
                AIMessage(content=notes, name="researcher"),
                back,
                ToolMessage(
                    "Back to the supervisor.", name=BACK_TO_SUPERVISOR, tool_call_id=call_id
                ),
            ],
            "sources": known,
        }

    async def writer(state: ResearchState, config: RunnableConfig) -> dict[str, Any]:
        question, turn = _turn(state["messages"])
        task = _task(turn, TO_WRITER) or f"Answer: {question}"
        # Every report the researcher made on this question (it may have been sent twice).
        notes = "\n\n".join(
            m.text for m in turn if isinstance(m, AIMessage) and m.name == "researcher" and m.text
        )
        sources = list(state.get("sources") or [])
        brief = HumanMessage(
            f"Question: {question}\nTask: {task}\n\nResearch notes:\n{notes or '(none)'}\n\n"
            f"Sources (cite as [n]):\n{_source_list(sources) or '(none)'}"
        )
        result = await writer_agent.ainvoke({"messages": [brief]}, config)
        report = make_report(question, result["messages"][-1].text, sources)
        return {"messages": [AIMessage(content=report["text"], name="writer")], "report": report}

    builder = StateGraph(ResearchState)
    builder.add_node("supervisor", supervisor, destinations=("researcher", "writer", END))
    builder.add_node("researcher", researcher)
    builder.add_node("writer", writer)
    builder.add_edge(START, "supervisor")
    builder.add_edge("researcher", "supervisor")
    builder.add_edge("writer", END)
    return builder.compile(name="research")
