"""An LLM judge: a model reads a rubric, the input, the reference and the answer, and
replies with a JSON score and reasons.

The rubric is text, or a callable returning it (sync or async), so that it can come
from the prompt registry and follow its labels without rebuilding the scorer. The model
is any configured model: by default ``dockyard.chat_model(name)`` (the calling run's
registry, or the project's outside a run); a caller with its own ``ModelRegistry``
passes ``models=registry.get``.

Models do not always answer as asked: the reply is read as JSON (bare, fenced, or the
outermost object in prose), then as "score: 7/10" text; a number above the scale is
clamped; an unreadable reply scores 0 with the reason saying so.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from dockyard.quality.base import Sample, Score, text_of
from dockyard.quality.schema import parse_json_answer

Rubric = str | Callable[[], str | Awaitable[str]]
ModelLookup = Callable[[str], BaseChatModel]

SYSTEM = (
    "You grade answers against a rubric. Reply with one JSON object and nothing else: "
    '{{"score": <a number from 0 to {scale:g}>, "reasons": ["<short reason>", ...]}}. '
    "Give reasons for every point taken off."
)
_SCORE_TEXT = re.compile(
    r"score\W{0,3}(\d+(?:\.\d+)?)(?:\s*(?:/|out of)\s*(\d+(?:\.\d+)?))?", re.IGNORECASE
)
PLACEHOLDERS = ("{answer}", "{source}", "{expected}")


def _default_models(name: str) -> BaseChatModel:
    from dockyard.providers.registry import chat_model

    return chat_model(name)


class JudgeScorer:
    def __init__(
        self,
        rubric: Rubric,
        *,
        model: str = "default",
        models: ModelLookup | None = None,
        scale: float = 1.0,
        name: str = "judge",
    ) -> None:
        if scale <= 0:
            raise ValueError("judge: scale must be positive")
        self.rubric = rubric
        self.model = model
        self.models = models or _default_models
        self.scale = scale
        self.name = name

    async def rubric_text(self) -> str:
        if isinstance(self.rubric, str):
            return self.rubric
        text = self.rubric()
        if inspect.isawaitable(text):
            text = await text
        return str(text)

    async def messages(self, sample: Sample) -> list[Any]:
        rubric = await self.rubric_text()
        expected = "" if sample.expected is None else text_of(sample.expected)
        if any(p in rubric for p in PLACEHOLDERS):
            # A rubric that places the texts itself; replace(), not format(): a rubric
            # may hold JSON braces.
            body = (
                rubric.replace("{answer}", sample.answer)
                .replace("{source}", sample.source)
                .replace("{expected}", expected)
            )
        else:
            body = f"# Rubric\n{rubric}\n\n# Input\n{sample.source}\n\n"
            if expected:
                body += f"# Reference answer\n{expected}\n\n"
            body += f"# Answer to grade\n{sample.answer}"
        return [SystemMessage(SYSTEM.format(scale=self.scale)), HumanMessage(body)]

    async def score(self, sample: Sample) -> Score:
        model = self.models(self.model)
        reply = await model.ainvoke(await self.messages(sample))
        return parse_verdict(text_of(reply), self.scale)


def parse_verdict(text: str, scale: float = 1.0) -> Score:
    """The judge's reply as a Score (value divided by ``scale``, clamped to 0..1)."""
    parsed, value = parse_json_answer(text)
    raw: Any = None
    reasons: list[str] = []
    if parsed and isinstance(value, Mapping):
        for key in ("score", "rating", "value", "grade"):
            if key in value:
                raw = value[key]
                break
        given = value.get("reasons", value.get("reason", value.get("explanation")))
        if isinstance(given, str):
            reasons = [given]
        elif isinstance(given, list):
            reasons = [str(r) for r in given]
    out_of = scale
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        try:
            raw = float(raw) if isinstance(raw, str) else None
        except ValueError:
            raw = None
    if raw is None:
        match = _SCORE_TEXT.search(text)
        if match is None:
            return Score(0.0, ["the judge's reply holds no score"], {"judge_parsed": 0.0})
        raw = float(match.group(1))
        if match.group(2):
            out_of = float(match.group(2)) or scale
    value_ = float(raw) / out_of
    if value_ > 1.0:
        reasons.append(f"the judge gave {raw:g}, above the scale of {out_of:g}: clamped")
    return Score(value_, reasons, {"judge_parsed": 1.0})
