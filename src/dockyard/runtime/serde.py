"""JSON for everything a graph can put in its state or stream."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum
from typing import Any

import orjson
from langgraph.types import Command, Interrupt, Send
from pydantic import BaseModel


def _default(obj: Any) -> Any:
    if isinstance(obj, Interrupt):
        return {"value": obj.value, "id": obj.id}
    if isinstance(obj, BaseModel):
        # LangChain messages are pydantic models: their dump is what the SDK expects.
        return obj.model_dump(mode="json")
    if isinstance(obj, Send):
        return {"node": obj.node, "arg": obj.arg}
    if isinstance(obj, Command):
        return {
            k: v
            for k, v in (
                ("graph", obj.graph),
                ("update", obj.update),
                ("resume", obj.resume),
                ("goto", obj.goto),
            )
            if v is not None and v != ()
        }
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, bytes | bytearray):
        return obj.decode(errors="replace")
    if hasattr(obj, "to_json") and callable(obj.to_json):
        return obj.to_json()
    return repr(obj)


# Dataclasses go through _default so Interrupt comes out as {value, id}, as on LangGraph's server.
_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=_OPTS)


def to_jsonable(obj: Any) -> Any:
    """A value made only of JSON types (for JSON columns and FastAPI responses)."""
    return orjson.loads(dumps(obj))
