"""A graph that reads its prompt from the registry on each run, as a user's would."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from dockyard import prompt


class State(TypedDict, total=False):
    ticket: str
    label: str
    version: int
    extra: dict[str, Any]
    text: str
    used: str


def summarize_node(state: State) -> State:
    p = prompt(
        "ticket-summary",
        label=None if "version" in state else state.get("label", "production"),
        version=state.get("version"),
    )
    text = p.render(ticket=state["ticket"], **state.get("extra", {}))
    return {"text": text, "used": f"{p.name}@{p.version}"}


builder = StateGraph(State)
builder.add_node("summarize", summarize_node)
builder.add_edge(START, "summarize")
builder.add_edge("summarize", END)
summarize = builder.compile()
