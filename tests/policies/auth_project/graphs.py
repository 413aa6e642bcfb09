"""memo: keeps the input's text in the store under ("notes",) / "last" and answers what
was there before: a tenant's runs see their own namespaces only."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph


class Memo(TypedDict, total=False):
    text: str
    before: Any


async def _remember(state: Memo) -> Memo:
    store = get_store()
    item = await store.aget(("notes",), "last")
    await store.aput(("notes",), "last", {"text": state.get("text", "")})
    return {"before": item.value["text"] if item is not None else None}


_g = StateGraph(Memo)
_g.add_node("remember", _remember)
_g.add_edge(START, "remember")
_g.add_edge("remember", END)
memo = _g.compile()
