"""Rule scorers on the answer's text: length bounds, required fields or sections,
forbidden phrases, personal data leaked, overlap with the source text.

Each is cheap (microseconds on a typical answer, bench/scorer_bench.py) so that the
quality gate can run them on every answer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from dockyard.policies.pii.detect import ENTITIES, Scanner, builtin_detectors
from dockyard.quality.base import RuleScorer, Sample, Score
from dockyard.quality.schema import parse_json_answer

_WORD = re.compile(r"\w+")


def _within(value: int, low: int | None, high: int | None) -> float:
    """1 inside the bounds, falling linearly to 0 at twice the distance of the bound
    (half the minimum, or double the maximum)."""
    if low is not None and value < low:
        return value / low
    if high is not None and value > high:
        return max(0.0, 1.0 - (value - high) / max(high, 1))
    return 1.0


class LengthScorer(RuleScorer):
    """Length bounds in characters and / or words (``\\w+`` runs, so a Korean word with
    its particle counts once)."""

    def __init__(
        self,
        *,
        min_chars: int | None = None,
        max_chars: int | None = None,
        min_words: int | None = None,
        max_words: int | None = None,
        name: str = "length",
    ) -> None:
        self.chars = (min_chars, max_chars)
        self.words = (min_words, max_words)
        self.name = name

    def check(self, sample: Sample) -> Score:
        text = sample.answer.strip()
        parts: dict[str, float] = {}
        reasons: list[str] = []
        for unit, count, (low, high) in (
            ("chars", len(text), self.chars),
            ("words", len(_WORD.findall(text)), self.words),
        ):
            if low is None and high is None:
                continue
            parts[unit] = _within(count, low, high)
            if parts[unit] < 1.0:
                bound = f"at least {low}" if low is not None and count < low else f"at most {high}"
                reasons.append(f"{count} {unit}, expected {bound}")
        return Score(min(parts.values(), default=1.0), reasons, parts)


def _has_field(value: object, path: str) -> bool:
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return value not in (None, "", [], {})


def _section_pattern(section: str) -> re.Pattern[str]:
    # A heading ("## Summary"), a label ("Summary:", "**Summary**"), or a bracketed one
    # ("[요약]") at the start of a line.
    name = re.escape(section)
    return re.compile(
        rf"^\s*(?:#+\s*|\*\*|\[|\u3010)?{name}(?:\*\*|\]|\u3011)?\s*(?::|\uff1a|$|\n)",
        re.IGNORECASE | re.MULTILINE,
    )


class RequiredScorer(RuleScorer):
    """The share of required JSON ``fields`` (dotted paths, non-empty) and text
    ``sections`` (a heading or label at the start of a line) the answer has."""

    def __init__(
        self,
        *,
        fields: Sequence[str] = (),
        sections: Sequence[str] = (),
        name: str = "required",
    ) -> None:
        if not fields and not sections:
            raise ValueError("required: give fields, sections or both")
        self.fields = list(fields)
        self.sections = [(s, _section_pattern(s)) for s in sections]
        self.name = name

    def check(self, sample: Sample) -> Score:
        missing: list[str] = []
        if self.fields:
            parsed, value = parse_json_answer(sample.answer)
            missing += [f"field {f}" for f in self.fields if not parsed or not _has_field(value, f)]
        missing += [
            f"section {s}" for s, pattern in self.sections if not pattern.search(sample.answer)
        ]
        total = len(self.fields) + len(self.sections)
        return Score((total - len(missing)) / total, [f"missing {m}" for m in missing])


class ForbiddenScorer(RuleScorer):
    """0 when the answer holds any of the ``phrases`` (case-insensitive by default)."""

    def __init__(
        self, phrases: Sequence[str], *, case_sensitive: bool = False, name: str = "forbidden"
    ) -> None:
        if not phrases:
            raise ValueError("forbidden: give at least one phrase")
        self.phrases = list(phrases)
        flags = 0 if case_sensitive else re.IGNORECASE
        self._any = re.compile("|".join(re.escape(p) for p in self.phrases), flags)
        self.case_sensitive = case_sensitive
        self.name = name

    def check(self, sample: Sample) -> Score:
        found = {m.group(0) for m in self._any.finditer(sample.answer)}
        if not found:
            return Score(1.0)
        norm = (lambda s: s) if self.case_sensitive else str.casefold
        hit = sorted({p for p in self.phrases if any(norm(p) == norm(f) for f in found)})
        return Score(0.0, [f"forbidden phrase {p!r}" for p in hit])


class PiiLeakScorer(RuleScorer):
    """0 when the answer holds personal data (dockyard's PII detector, policies/pii) that
    the source does not: an answer may repeat the customer's own e-mail given to it, but
    not produce another one. Reasons name the entity and count, never the value."""

    def __init__(
        self,
        *,
        entities: Sequence[str] = ENTITIES,
        allow_from_source: bool = True,
        name: str = "pii",
    ) -> None:
        every = builtin_detectors()
        unknown = [e for e in entities if e not in every]
        if unknown:
            raise ValueError(f"pii: unknown entities {unknown}; known: {', '.join(every)}")
        self.scanner = Scanner({e: every[e] for e in entities})
        self.allow_from_source = allow_from_source
        self.name = name

    def check(self, sample: Sample) -> Score:
        found = self.scanner.scan(sample.answer)
        if self.allow_from_source and found and sample.source:
            known = {f.text for f in self.scanner.scan(sample.source)}
            found = [f for f in found if f.text not in known]
        if not found:
            return Score(1.0)
        counts = Counter(f.entity for f in found)
        return Score(
            0.0, [f"{n} {entity} value(s) not in the source" for entity, n in counts.items()]
        )


def _tokens(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if len(w) > 1}


class OverlapScorer(RuleScorer):
    """How much of the answer's vocabulary (words of two or more characters, case-folded)
    comes from the source text. Below ``min_ratio`` the answer strays from the source
    (the value falls in proportion); above ``max_ratio`` it copies it (falls likewise)."""

    def __init__(
        self,
        *,
        min_ratio: float = 0.3,
        max_ratio: float | None = None,
        name: str = "overlap",
    ) -> None:
        if max_ratio is not None and max_ratio < min_ratio:
            raise ValueError("overlap: max_ratio below min_ratio")
        self.min_ratio = min_ratio
        self.max_ratio = max_ratio
        self.name = name

    def check(self, sample: Sample) -> Score:
        answer = _tokens(sample.answer)
        if not answer:
            return Score(0.0, ["empty answer"], {"ratio": 0.0})
        if not sample.source:
            return Score(0.0, ["no source text to compare with"], {"ratio": 0.0})
        ratio = len(answer & _tokens(sample.source)) / len(answer)
        parts = {"ratio": round(ratio, 4)}
        if ratio < self.min_ratio:
            return Score(
                ratio / self.min_ratio if self.min_ratio else 1.0,
                [f"{ratio:.0%} of the answer's words are in the source, want {self.min_ratio:.0%}"],
                parts,
            )
        if self.max_ratio is not None and ratio > self.max_ratio:
            value = 1.0 - (ratio - self.max_ratio) / max(1.0 - self.max_ratio, 1e-9)
            return Score(
                value, [f"{ratio:.0%} copied from the source, at most {self.max_ratio:.0%}"], parts
            )
        return Score(1.0, [], parts)
