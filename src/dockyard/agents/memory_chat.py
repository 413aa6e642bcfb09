"""A support chat that remembers each user across sessions (guide 001).

Serve it with ``graphs: {memory_chat: dockyard.agents.memory_chat:graph}`` (see
``examples/memory-chat``) and talk to it with ``POST /chat {user_id, session_id, message}``:
each session is its own thread, and what the agent learns about a user lives in dockyard's
store under ``("memories", user_id)``, so every session of that user recalls it and no
other user ever does (and, with tenancy, no other tenant: the runtime scopes the store).

Each turn:

1. ``LongTermMemory.abefore_agent`` searches the user's memories with the turn's message
   (semantic search: the store's ``store.index`` embeddings, sqlite-vec on SQLite,
   pgvector or the exact scan on PostgreSQL) and keeps the best ``top_k`` whose similarity
   reaches ``min_score``, in the thread's ``recalled_memories``;
2. every model call gets them appended to its system prompt (never to the messages, so
   summarization neither repeats nor loses them);
3. the agent answers, with the support agent's ``lookup_order`` and ``search_faq``;
4. ``LongTermMemory.aafter_agent`` asks the model for durable facts in the user's message
   (``UserFacts``: a topic and a first-person sentence each) and puts each in the store,
   keyed by its topic, so a newer fact on a topic replaces the older one.

``dockyard.middleware()`` adds the platform's policies; with ``policies.summarization``
(``examples/memory-chat``: 75% of the context window, keeping the last 50 messages) long
threads are summarized while the facts stay in the store.

The user comes from the run's context (``context={"user_id": ...}``) or, as ``/chat`` sets
it, the run's metadata ``user_id``. Without one the agent chats with no long-term memory.

The model is ``chat_model("default")``: ``models.default``, else Claude or GPT-4o mini
when their key is set, else ``offline:memory`` (``MemoryOfflineModel``), a scripted model
that extracts and recalls facts with rules, so the whole flow runs with no key.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, NotRequired

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, AgentState
from langchain.agents.middleware.types import ModelCallResult, ModelRequest, ModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from pydantic import BaseModel, Field

from dockyard import chat_model, middleware
from dockyard.agents.support import lookup_order, search_faq
from dockyard.providers.offline.memory import FACTS_TOOL, MEMORY_HEADER, MemoryOfflineModel

__all__ = [
    "MEMORY_HEADER",
    "NAMESPACE",
    "OFFLINE_MODEL",
    "SYSTEM_PROMPT",
    "LongTermMemory",
    "MemoryOfflineModel",
    "UserFact",
    "UserFacts",
    "graph",
    "make_graph",
    "user_namespace",
]

log = logging.getLogger("dockyard.agents.memory_chat")

OFFLINE_MODEL = "offline:memory"
NAMESPACE = "memories"
"""A user's memories live under ``(NAMESPACE, user_id)`` in the store."""

SYSTEM_PROMPT = """\
You are the customer-support agent of Harbor & Co., an online outfitter, and you remember
your customers between conversations.
- For anything about a specific order, call lookup_order with the order id first.
- For general questions (shipping, returns, refunds, cancellations, warranty, payment),
  call search_faq and answer from what it returns.
- Use what you remember about the customer (below, when there is anything) to personalise
  your answer; never claim to remember anything that is not listed.
- Never invent order details or policies. Be brief and friendly."""

EXTRACTION_PROMPT = """\
Extract durable facts about the user from their message: facts worth remembering in later
conversations (their name, where they live, how they want to be contacted, allergies,
sizes, diet, lasting preferences). Write each as a short first-person sentence in the
user's words ("My name is Mina Park.", "I live in Busan.") under a short snake_case topic
(name, location, contact, allergy, shoe_size, diet, ...); one fact per topic. Questions,
requests and one-off details of an order are not facts. No facts: an empty list."""


class UserFact(BaseModel):
    topic: str = Field(description="snake_case topic, e.g. name, location, contact, allergy")
    text: str = Field(description="the fact as a short first-person sentence")


class UserFacts(BaseModel):
    """Durable facts about the user found in their message."""

    facts: list[UserFact] = Field(default_factory=list)


assert UserFacts.__name__ == FACTS_TOOL  # the offline model recognises the schema by name


class MemoryState(AgentState[Any]):
    recalled_memories: NotRequired[list[str]]


def user_namespace(user_id: str) -> tuple[str, str]:
    return (NAMESPACE, user_id)


def _user_id(runtime: Runtime[Any]) -> str | None:
    context = runtime.context
    value = context.get("user_id") if isinstance(context, dict) else None
    if value is None:
        value = (get_config().get("metadata") or {}).get("user_id")
    return str(value) if value else None


def _last_user_text(messages: Sequence[BaseMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text
    return ""


_TOPIC = re.compile(r"[^a-z0-9_]+")


def _topic_key(topic: str) -> str:
    return _TOPIC.sub("_", topic.strip().lower()).strip("_")[:64] or "fact"


class LongTermMemory(AgentMiddleware[MemoryState, Any]):
    """Recall before the turn, facts after it, in the store under ``("memories", user)``.

    ``top_k`` memories at most, each at least ``min_score`` similar to the user's message
    (cosine; measured for ``local:all-MiniLM-L6-v2`` in docs/perf.md, where a question and
    the fact answering it score 0.28-0.54 and unrelated pairs mostly below 0.2). A store
    without ``store.index`` has no scores: the newest ``top_k`` memories are used.
    """

    state_schema = MemoryState

    def __init__(
        self, model: BaseChatModel | None = None, *, top_k: int = 4, min_score: float = 0.25
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= 20:
            raise ValueError(f"top_k must be between 1 and 20, got {top_k}")
        self.top_k = top_k
        self.min_score = min_score
        self._extractor = (model or chat_model(offline=OFFLINE_MODEL)).with_structured_output(
            UserFacts
        )

    async def abefore_agent(self, state: MemoryState, runtime: Runtime[Any]) -> dict[str, Any]:
        user_id, store = _user_id(runtime), runtime.store
        query = _last_user_text(state["messages"])
        if user_id is None or store is None or not query:
            return {"recalled_memories": []}
        items = await store.asearch(user_namespace(user_id), query=query, limit=self.top_k)
        recalled = [
            str(item.value.get("text"))
            for item in items
            if item.value.get("text") and (item.score is None or item.score >= self.min_score)
        ]
        return {"recalled_memories": recalled}

    async def awrap_model_call(self, request: ModelRequest[Any], handler: Any) -> ModelCallResult:
        found = request.state.get("recalled_memories")
        memories = [str(m) for m in found] if isinstance(found, list) else []
        if not memories:
            result: ModelResponse | ModelCallResult = await handler(request)
            return result
        block = "\n".join([MEMORY_HEADER, *(f"- {m}" for m in memories)])
        base = request.system_message.text if request.system_message is not None else ""
        system = SystemMessage(f"{base}\n\n{block}" if base else block)
        return await handler(request.override(system_message=system))  # type: ignore[no-any-return]

    async def aafter_agent(self, state: MemoryState, runtime: Runtime[Any]) -> None:
        user_id, store = _user_id(runtime), runtime.store
        text = _last_user_text(state["messages"])
        if user_id is None or store is None or not text:
            return None
        try:
            found = await self._extractor.ainvoke(
                [SystemMessage(EXTRACTION_PROMPT), HumanMessage(text)]
            )
        except GraphBubbleUp:
            raise
        except Exception as exc:
            # The user has their answer already; a failed extraction (a provider error, a
            # reply that is not UserFacts) costs this turn's facts, not the turn.
            log.warning("fact extraction failed (%s): this turn's facts are not stored", exc)
            return None
        facts = found.facts if isinstance(found, UserFacts) else []
        await _remember(store, user_id, facts)
        return None


async def _remember(store: BaseStore, user_id: str, facts: list[UserFact]) -> None:
    for fact in facts:
        if fact.text.strip():
            # One item per topic: "I moved to Seoul" replaces "I live in Busan".
            await store.aput(
                user_namespace(user_id),
                _topic_key(fact.topic),
                {"text": fact.text.strip(), "topic": fact.topic},
                index=["text"],
            )
    if facts:
        log.debug("remembered %d fact(s) for a user", len(facts))


def make_graph(
    model: BaseChatModel | None = None, *, top_k: int = 4, min_score: float = 0.25
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The memory chat; ``model`` (default ``chat_model("default")``) answers and extracts."""
    model = model or chat_model(offline=OFFLINE_MODEL)
    return create_agent(
        model,
        tools=[lookup_order, search_faq],
        system_prompt=SYSTEM_PROMPT,
        middleware=[LongTermMemory(model, top_k=top_k, min_score=min_score), *middleware()],
        name="memory_chat",
    )


graph = make_graph()
"""The memory chat on ``chat_model("default")``; what ``examples/memory-chat`` serves."""
