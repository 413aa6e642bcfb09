"""Scorers combined by weights: the value is the weighted mean of theirs; each one's
value is a part (by name), its reasons come prefixed with its name.

A scorer that raises scores 0 in the combination, with the error as its reason: one
broken scorer (a judge whose model is down) must not hide the others' verdicts. A
weight of 0 keeps a scorer in the report without moving the value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from dockyard.quality.base import RuleScorer, Sample, Score, Scorer


class CombinedScorer:
    def __init__(self, scorers: Sequence[tuple[Scorer, float]], *, name: str = "combined") -> None:
        if not scorers:
            raise ValueError("combine at least one scorer")
        if any(w < 0 for _, w in scorers):
            raise ValueError("scorer weights must not be negative")
        names = [s.name for s, _ in scorers]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"scorer names must differ (give each a name): {', '.join(dupes)}")
        self.scorers = list(scorers)
        self.name = name

    @property
    def names(self) -> list[str]:
        return [s.name for s, _ in self.scorers]

    @property
    def is_rules(self) -> bool:
        """True when every part is a rule (``check`` needs no event loop)."""
        return all(
            s.is_rules if isinstance(s, CombinedScorer) else isinstance(s, RuleScorer)
            for s, _ in self.scorers
        )

    async def score(self, sample: Sample) -> Score:
        results = await asyncio.gather(
            *(s.score(sample) for s, _ in self.scorers), return_exceptions=True
        )
        scores = [
            r if isinstance(r, Score) else Score(0.0, [f"failed: {type(r).__name__}: {r}"])
            for r in results
        ]
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, Exception):
                raise r
        return self._combine(scores)

    def check(self, sample: Sample) -> Score:
        """The combined score of rule scorers, called directly (``is_rules`` must hold)."""
        if not self.is_rules:
            raise TypeError(f"{self.name} holds scorers that are not rules: await score()")
        scores: list[Score] = []
        for s, _ in self.scorers:
            assert isinstance(s, RuleScorer | CombinedScorer)
            try:
                scores.append(s.check(sample))
            except Exception as e:
                scores.append(Score(0.0, [f"failed: {type(e).__name__}: {e}"]))
        return self._combine(scores)

    def _combine(self, scores: list[Score]) -> Score:
        weights = [w for _, w in self.scorers]
        total = sum(weights)
        value = (
            sum(w * s.value for w, s in zip(weights, scores, strict=True)) / total
            if total
            else sum(s.value for s in scores) / len(scores)
        )
        reasons = [
            f"{sc.name}: {r}"
            for (sc, _), s in zip(self.scorers, scores, strict=True)
            for r in s.reasons
        ]
        parts = {sc.name: s.value for (sc, _), s in zip(self.scorers, scores, strict=True)}
        return Score(value, reasons, parts)
