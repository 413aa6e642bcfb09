"""A scorer written in Python, named ``module:function``.

The function takes a ``Sample`` and returns a number (0..1), a ``Score``, a
``(value, reasons)`` pair or a ``{"value": ..., "reasons": [...], "parts": {...}}``
dict; it may be async. The module is imported from ``sys.path`` (the CLI puts the
project's folder on it).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.quality.base import Sample, Score


def load_function(ref: str) -> Callable[..., Any]:
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{ref!r}: expected module:function (e.g. my_scorers:polite)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"{ref!r}: cannot import {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"{ref!r}: {module_name} has no function {attr!r}")
    return fn  # type: ignore[no-any-return]


def as_score(result: Any, where: str) -> Score:
    if isinstance(result, Score):
        return result
    if isinstance(result, bool):
        return Score(1.0 if result else 0.0)
    if isinstance(result, int | float):
        return Score(float(result))
    if isinstance(result, tuple) and len(result) == 2:
        value, reasons = result
        return Score(float(value), [str(r) for r in reasons])
    if isinstance(result, Mapping) and "value" in result:
        parts = {str(k): float(v) for k, v in (result.get("parts") or {}).items()}
        return Score(float(result["value"]), [str(r) for r in result.get("reasons") or []], parts)
    raise TypeError(f"{where} returned {type(result).__name__}; expected a number or a Score")


class CallableScorer:
    def __init__(self, function: str | Callable[..., Any], *, name: str | None = None) -> None:
        self.ref = function if isinstance(function, str) else getattr(function, "__name__", "fn")
        self.fn = load_function(function) if isinstance(function, str) else function
        self.name = name or self.ref.rpartition(":")[2]

    async def score(self, sample: Sample) -> Score:
        result = self.fn(sample)
        if inspect.isawaitable(result):
            result = await result
        return as_score(result, self.ref)
