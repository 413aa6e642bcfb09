"""A graph that answers with the registry prompt it was served (as a user's graph reads
its prompt): ``prompt(NAME, label="production")``, NAME from the input (default
``ticket-summary``); the answer says which version it got."""

from __future__ import annotations

from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from dockyard import prompt


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    prompt: str
    used: str


def answer(state: State) -> State:
    p = prompt(state.get("prompt", "ticket-summary"), label="production")
    used = f"{p.name}@{p.version}"
    text = p.render(ticket=str(state["messages"][-1].content))
    return {"messages": [AIMessage(f"{used}: {text}")], "used": used}


builder = StateGraph(State)
builder.add_node("answer", answer)
builder.add_edge(START, "answer")
builder.add_edge("answer", END)
graph = builder.compile()
