"""The scorer contract: a ``Sample`` in, a ``Score`` out.

A scorer looks at one answer (its text, and the messages when there are any) beside what
produced it (``source``: the input or document the answer is about) and what was expected
of it (``expected``, ``metadata``: a dataset item's, or none on live traffic). It returns a
``Score``: a value in 0..1, the reasons it is not 1 (never the personal data it found),
and its parts (sub-scores by name, each 0..1 too).

Every scorer is awaited (``await scorer.score(sample)``): the LLM judge calls a model.
The rule scorers do their work in a plain method, ``check``, so a caller on a hot path
(the quality gate) can call them without an event loop hop; ``RuleScorer`` gives them
``score``.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    reasons: list[str] = field(default_factory=list)
    parts: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", clamp(self.value))

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "reasons": list(self.reasons), "parts": dict(self.parts)}


def clamp(value: float) -> float:
    """``value`` in 0..1; NaN is 0 (a scorer that cannot tell gives no credit)."""
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, float(value)))


@dataclass(frozen=True, slots=True)
class Sample:
    """One answer to score. ``answer`` is its text; ``messages`` the conversation it ends,
    as LangChain messages or role/content dicts, when the caller has them."""

    answer: str
    source: str = ""
    expected: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    messages: Sequence[Any] = ()

    @classmethod
    def of(
        cls,
        answer: Any,
        source: Any = "",
        expected: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Sample:
        """A sample from loose values: an answer given as messages is scored on the last
        one's text; a source given as a dict or messages on its text."""
        messages: Sequence[Any] = answer if isinstance(answer, list) else ()
        return cls(
            answer=text_of(answer),
            source=text_of(source),
            expected=expected,
            metadata=dict(metadata or {}),
            messages=messages,
        )


def text_of(value: Any) -> str:
    """The text a value stands for: a string as is; a message (LangChain or dict) its
    content; a list of messages the last one's; ``{"messages": [...]}`` likewise; content
    blocks joined; anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    content = getattr(value, "content", None)
    if content is not None:
        return _content_text(content)
    if isinstance(value, Mapping):
        if "content" in value and ("role" in value or "type" in value):
            return _content_text(value["content"])
        if isinstance(value.get("messages"), list) and value["messages"]:
            return text_of(value["messages"][-1])
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return text_of(value[-1])
    return json.dumps(value, ensure_ascii=False, default=str)


def _is_message(value: Any) -> bool:
    return hasattr(value, "content") or (
        isinstance(value, Mapping) and "content" in value and ("role" in value or "type" in value)
    )


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b if isinstance(b, str) else str(b.get("text", "")) if isinstance(b, Mapping) else ""
            for b in content
        )
    return str(content)


@runtime_checkable
class Scorer(Protocol):
    """Scores one sample. ``name`` labels its part in a combination and in reports."""

    name: str

    async def score(self, sample: Sample) -> Score: ...


class RuleScorer(ABC):
    """A scorer that needs no I/O: its work is ``check``, a plain call."""

    name: str = "rule"

    @abstractmethod
    def check(self, sample: Sample) -> Score:
        """The sample's score, computed in place."""

    async def score(self, sample: Sample) -> Score:
        return self.check(sample)


def expected_text(sample: Sample, given: str | None) -> str | None:
    """The reference a comparing scorer uses: its own setting, else the item's expected
    value as text (None when neither is there)."""
    if given is not None:
        return given
    if sample.expected is None:
        return None
    return text_of(sample.expected)
