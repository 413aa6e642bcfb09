"""Turn LangGraph stream chunks into Agent Server SSE events.

Names follow what langgraph-sdk parses: the mode name, ``mode|ns`` for
subgraphs, ``messages`` for ``messages-tuple`` and ``messages/partial`` /
``messages/metadata`` / ``messages/complete`` for ``messages``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk

from dockyard.providers.registry import MODELS_KEY
from dockyard.runtime.serde import dumps

STREAM_MODES = (
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "events",
    "debug",
    "custom",
    "tasks",
    "checkpoints",
)

Publish = Callable[[str, bytes], None]


def langgraph_modes(requested: Sequence[str]) -> list[str]:
    """The stream modes to ask LangGraph for. ``values`` is always there: the
    run's result and the thread's values come from it."""
    modes: set[str] = {"values"}
    for m in requested:
        if m in ("messages", "messages-tuple"):
            modes.add("messages")
            if m == "messages":
                modes.add("updates")  # to know when a streamed message is complete
        elif m != "events":
            modes.add(m)
    return sorted(modes)


class EventTranslator:
    def __init__(self, requested: Sequence[str], publish: Publish) -> None:
        self.requested = set(requested)
        self.publish = publish
        self.last_values: Any = None
        self.subgraphs = False
        self._partial: dict[str, BaseMessageChunk] = {}

    def _name(self, mode: str, ns: tuple[str, ...]) -> str:
        return "|".join((mode, *ns)) if ns else mode

    def chunk(self, ns: tuple[str, ...], mode: str, data: Any) -> None:
        if ns and not self.subgraphs:
            if mode != "messages":
                return
            ns = ()
        if mode == "values" and not ns:
            self.last_values = data
        if mode == "messages":
            self._message(ns, data)
            return
        if mode == "updates" and "messages" in self.requested:
            self._complete_from_update(ns, data)
        if mode in self.requested:
            if mode in ("checkpoints", "debug"):
                data = _without_models(mode, data)
            self.publish(self._name(mode, ns), dumps(data))

    def _message(self, ns: tuple[str, ...], data: Any) -> None:
        msg, meta = data
        if "messages-tuple" in self.requested:
            self.publish(self._name("messages", ns), dumps([msg, meta]))
        if "messages" not in self.requested:
            return
        msg_id = getattr(msg, "id", None) or ""
        if isinstance(msg, BaseMessageChunk):
            prev = self._partial.get(msg_id)
            if prev is None:
                self.publish(
                    self._name("messages/metadata", ns), dumps({msg_id: {"metadata": meta}})
                )
                acc = msg
            else:
                acc = prev + msg
            self._partial[msg_id] = acc
            self.publish(self._name("messages/partial", ns), dumps([acc]))
        elif isinstance(msg, BaseMessage):
            self._partial.pop(msg_id, None)
            self.publish(self._name("messages/metadata", ns), dumps({msg_id: {"metadata": meta}}))
            self.publish(self._name("messages/complete", ns), dumps([msg]))

    def _complete_from_update(self, ns: tuple[str, ...], update: Any) -> None:
        if not self._partial or not isinstance(update, dict):
            return
        for node_update in update.values():
            msgs = node_update.get("messages") if isinstance(node_update, dict) else None
            if msgs is None:
                continue
            for m in msgs if isinstance(msgs, list) else [msgs]:
                mid = getattr(m, "id", None)
                if mid is not None and mid in self._partial:
                    del self._partial[mid]
                    self.publish(self._name("messages/complete", ns), dumps([m]))

    def event(self, ev: dict[str, Any]) -> None:
        """One ``astream_events`` v2 event; the root's stream chunks carry the other modes."""
        if ev["event"] == "on_chain_stream" and not ev.get("parent_ids"):
            ns, mode, data = ev["data"]["chunk"]
            self.chunk(ns, mode, data)
            return
        if "events" in self.requested:
            self.publish("events", dumps(ev))


def _without_models(mode: str, data: Any) -> Any:
    """A checkpoint event without the run's model registry, which LangGraph leaves in the
    configs it shows (``config``, ``parent_config``): it is this process's, not the run's."""
    if not isinstance(data, dict):
        return data
    if mode == "debug":
        payload = data.get("payload")
        if data.get("type") != "checkpoint" or not isinstance(payload, dict):
            return data
        return {**data, "payload": _without_models("checkpoints", payload)}
    out = dict(data)
    for key in ("config", "parent_config"):
        config = out.get(key)
        configurable = config.get("configurable") if isinstance(config, dict) else None
        if isinstance(configurable, dict) and MODELS_KEY in configurable:
            rest = {k: v for k, v in configurable.items() if k != MODELS_KEY}
            out[key] = {**config, "configurable": rest}  # type: ignore[dict-item]
    return out
