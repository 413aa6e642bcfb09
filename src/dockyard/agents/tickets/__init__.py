"""The ticket summarizer (guide 000): a help-desk ticket in, a structured summary out,
as validated JSON (``summary``) and as Markdown (``markdown``).

Serve it with ``graphs: {tickets: dockyard.agents.tickets:graph}`` (see
``examples/tickets``) and run it with the ticket as input::

    client.runs.wait(None, "tickets", input={"ticket": {...}, "priority": "high"})

(the top-level ``priority`` is what ``policies.routing`` reads; the ticket's own is used
when it is left out of a client's input by the batch CLI ``dockyard agents summarize``,
which sets it). The graph does one thing per ticket: render the registry's prompt
(``prompts.NAME``) with the ticket, call ``chat_model("default")`` once, and validate the
answer against ``TicketSummary``. Everything else is the platform's, configured in the
project's ``dockyard.yaml``: the model tier by priority and size (``policies.routing``),
the quality gate with retry and fallback (``policies.quality``), the response cache that
keeps only good answers (``policies.cache.min_quality``), PII masked before the model
(``policies.pii``), and the run's usage, cost and verdict on ``runs.get``.

With no model configured and no key, ``chat_model`` stands in ``offline:tickets``
(``TicketsOfflineModel``), an extractive model, so the whole flow runs offline.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph

from dockyard import chat_model
from dockyard.agents.tickets import prompts
from dockyard.agents.tickets.schema import (
    SUMMARY_SCHEMA,
    Ticket,
    TicketSummary,
    parse_summary,
    to_markdown,
)
from dockyard.errors import InvalidRequestError
from dockyard.providers.offline.tickets import is_korean, render_ticket

__all__ = [
    "OFFLINE_MODEL",
    "SUMMARY_SCHEMA",
    "Ticket",
    "TicketSummary",
    "graph",
    "make_graph",
    "parse_summary",
    "to_markdown",
]

OFFLINE_MODEL = "offline:tickets"
MODEL = chat_model("default", offline=OFFLINE_MODEL)


class State(TypedDict, total=False):
    ticket: dict[str, Any]
    """The input: a ``Ticket`` as JSON."""
    priority: str
    """The run's priority for ``policies.routing``; the ticket's when not given."""
    messages: Annotated[list[AnyMessage], add_messages]
    """The model's answer (its JSON), the last message: what ``dockyard eval`` scores."""
    summary: dict[str, Any] | None
    """The validated summary (``TicketSummary``), or null when the answer did not validate."""
    markdown: str | None
    error: str | None
    """Why there is no summary: the answer was not JSON or broke the schema."""


def _ticket(state: State) -> Ticket:
    raw = state.get("ticket")
    if not isinstance(raw, dict):
        raise InvalidRequestError(
            "the input needs a `ticket` object (subject, description, conversation, "
            "attachments, priority, tags)",
            code="invalid_ticket",
        )
    try:
        return Ticket.model_validate(raw)
    except ValueError as e:
        raise InvalidRequestError(f"the ticket is not valid: {e}", code="invalid_ticket") from None


async def summarize(state: State) -> dict[str, Any]:
    ticket = _ticket(state)
    text = render_ticket(ticket.model_dump(mode="json"))
    values = prompts.variables(
        text,
        priority=state.get("priority") or ticket.priority,
        tags=ticket.tags,
        korean=is_korean(ticket.subject + ticket.description),
    )
    answer = await MODEL.ainvoke(prompts.messages(values))
    message = answer if isinstance(answer, AIMessage) else AIMessage(content=str(answer))
    try:
        summary = parse_summary(message.text)
    except ValueError as e:
        # The quality gate kept its best answer and it still is not a summary: say so on
        # the run's values instead of failing it, so a batch carries on.
        return {"messages": [message], "summary": None, "markdown": None, "error": str(e)}
    return {
        "messages": [message],
        "summary": summary.model_dump(mode="json"),
        "markdown": to_markdown(summary, ticket),
        "error": None,
    }


def make_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    """The summarizer: one node, one model call per ticket."""
    builder = StateGraph(State)
    builder.add_node("summarize", summarize)
    builder.add_edge(START, "summarize")
    builder.add_edge("summarize", END)
    return builder.compile(name="tickets")


graph = make_graph()
"""What ``examples/tickets`` serves."""
