"""The answer's language, told by its script: a heuristic, not a language detector.

Letters are counted per script (Hangul, Kana, Han, Latin, Cyrillic); the answer "is in"
a language when that language's scripts hold at least ``min_ratio`` of its letters.
Korean counts Hangul (and Han, which Korean text uses for some words); Japanese, Kana
and Han; Chinese, Han; English and the other Latin-script languages, Latin — so this
tells Korean from English from Japanese, but not English from French. Digits, spaces,
punctuation and symbols count for nothing.
"""

from __future__ import annotations

from collections import Counter

from dockyard.quality.base import RuleScorer, Sample, Score

SCRIPTS = ("hangul", "kana", "han", "latin", "cyrillic")


def _script(ch: str) -> str | None:
    o = ord(ch)
    if 0xAC00 <= o <= 0xD7A3 or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
        return "hangul"
    if 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF:
        return "kana"
    if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF:
        return "han"
    if ch.isascii():
        return "latin" if ch.isalpha() else None
    if 0x00C0 <= o <= 0x024F:
        return "latin" if ch.isalpha() else None
    if 0x0400 <= o <= 0x04FF:
        return "cyrillic"
    return None


LANGUAGES: dict[str, tuple[str, ...]] = {
    "ko": ("hangul", "han"),
    "ja": ("kana", "han"),
    "zh": ("han",),
    "ru": ("cyrillic",),
    **{code: ("latin",) for code in ("en", "fr", "de", "es", "it", "pt", "nl", "vi", "id")},
}


def script_ratios(text: str) -> dict[str, float]:
    """Each script's share of the letters of ``text`` (empty when it has none)."""
    counts = Counter(s for s in map(_script, text) if s is not None)
    total = sum(counts.values())
    return {s: counts[s] / total for s in SCRIPTS if counts[s]} if total else {}


class LanguageScorer(RuleScorer):
    """1 when the letters of ``language``'s scripts make at least ``min_ratio`` of the
    answer's letters, less in proportion below it. For Japanese, the answer must also
    hold Kana (Han alone reads as Chinese)."""

    def __init__(self, language: str, *, min_ratio: float = 0.6, name: str = "language") -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language {language!r}: known {', '.join(sorted(LANGUAGES))}")
        self.language = language
        self.scripts = LANGUAGES[language]
        self.min_ratio = min_ratio
        self.name = name

    def check(self, sample: Sample) -> Score:
        ratios = script_ratios(sample.answer)
        if not ratios:
            return Score(0.0, ["no letters to tell the language by"])
        share = sum(ratios.get(s, 0.0) for s in self.scripts)
        if self.language == "ja" and not ratios.get("kana"):
            share = 0.0
        parts = {s: round(r, 4) for s, r in ratios.items()}
        if share >= self.min_ratio:
            return Score(1.0, [], parts)
        main = max(ratios, key=lambda s: ratios[s])
        return Score(
            share / self.min_ratio,
            [f"{share:.0%} of the letters are {self.language} script(s), mostly {main}"],
            parts,
        )
