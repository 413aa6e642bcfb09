"""A graph that answers with the registry prompt it was served (as a user's graph reads
its prompt): ``prompt(NAME, label="production")``, NAME from the input (default
``ticket-summary``); the answer says which version it got."""

from __future__ import annotations

from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from dockyard import chat_model, prompt


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


# Another graph asks a model; a model rollout sends the candidate's calls to another one.
model = chat_model("default")


def talk(state: State) -> State:
    return {"messages": [model.invoke(state["messages"])], "used": "model"}


chat_builder = StateGraph(State)
chat_builder.add_node("talk", talk)
chat_builder.add_edge(START, "talk")
chat_builder.add_edge("talk", END)
chat = chat_builder.compile()
