"""Scorers that compare the answer with a reference: exact, contains, regex."""

from __future__ import annotations

import re
from collections.abc import Sequence

from dockyard.quality.base import RuleScorer, Sample, Score, expected_text, text_of
from dockyard.quality.schema import parse_json_answer

_SPACE = re.compile(r"\s+")


def _norm(text: str, *, case_sensitive: bool, collapse_space: bool) -> str:
    text = text.strip()
    if collapse_space:
        text = _SPACE.sub(" ", text)
    return text if case_sensitive else text.casefold()


class ExactScorer(RuleScorer):
    """1 when the answer equals the reference (the item's ``expected`` unless ``value``
    is given), after trimming and, by default, collapsing runs of whitespace; an
    ``expected`` object or list is compared with the answer read as JSON."""

    def __init__(
        self,
        value: str | None = None,
        *,
        case_sensitive: bool = True,
        collapse_space: bool = True,
        name: str = "exact",
    ) -> None:
        self.value = value
        self.case_sensitive = case_sensitive
        self.collapse_space = collapse_space
        self.name = name

    def check(self, sample: Sample) -> Score:
        if self.value is None and isinstance(sample.expected, dict | list):
            # Structured: equal as JSON values, whatever the spacing or key order.
            parsed, value = parse_json_answer(sample.answer)
            if parsed and value == sample.expected:
                return Score(1.0)
            return Score(0.0, ["answer differs from the expected JSON value"])
        reference = expected_text(sample, self.value)
        if reference is None:
            return Score(0.0, ["no expected value to compare with"])
        opts = {"case_sensitive": self.case_sensitive, "collapse_space": self.collapse_space}
        if _norm(sample.answer, **opts) == _norm(reference, **opts):
            return Score(1.0)
        return Score(0.0, ["answer differs from the expected value"])


class ContainsScorer(RuleScorer):
    """The share of the required strings the answer contains (``mode="all"``), or 1 when
    it contains any of them (``mode="any"``). The strings: ``values``, else the item's
    ``expected`` (a list: each element; a string: that string)."""

    def __init__(
        self,
        values: Sequence[str] | None = None,
        *,
        mode: str = "all",
        case_sensitive: bool = False,
        name: str = "contains",
    ) -> None:
        if mode not in ("all", "any"):
            raise ValueError(f"mode {mode!r}: use 'all' or 'any'")
        self.values = list(values) if values is not None else None
        self.mode = mode
        self.case_sensitive = case_sensitive
        self.name = name

    def _wanted(self, sample: Sample) -> list[str]:
        if self.values is not None:
            return self.values
        if isinstance(sample.expected, list):
            return [text_of(v) for v in sample.expected]
        reference = expected_text(sample, None)
        return [reference] if reference else []

    def check(self, sample: Sample) -> Score:
        wanted = self._wanted(sample)
        if not wanted:
            return Score(0.0, ["no expected strings to look for"])
        answer = sample.answer if self.case_sensitive else sample.answer.casefold()
        found = [v for v in wanted if (v if self.case_sensitive else v.casefold()) in answer]
        missing = [v for v in wanted if v not in found]
        if self.mode == "any":
            return Score(1.0 if found else 0.0, [] if found else ["none of the strings found"])
        reasons = [f"missing {v!r}" for v in missing]
        return Score(len(found) / len(wanted), reasons)


class RegexScorer(RuleScorer):
    """1 when ``pattern`` is found in the answer (``re.search``); with ``must_match``
    False, 1 when it is not (a pattern the answer must not contain)."""

    def __init__(
        self,
        pattern: str,
        *,
        must_match: bool = True,
        ignore_case: bool = False,
        name: str = "regex",
    ) -> None:
        flags = re.MULTILINE | (re.IGNORECASE if ignore_case else 0)
        self.pattern = re.compile(pattern, flags)
        self.must_match = must_match
        self.name = name

    def check(self, sample: Sample) -> Score:
        found = self.pattern.search(sample.answer) is not None
        if found == self.must_match:
            return Score(1.0)
        what = "not found" if self.must_match else "found, and must not be"
        return Score(0.0, [f"pattern {self.pattern.pattern!r} {what}"])
