"""Deterministic stand-ins for tokenizers and embedding models.

The fake chat models and the mock provider servers share these, so a test sees the
same token counts and vectors whichever of them it talks to.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from functools import lru_cache

_WORD = re.compile(r"\w+", re.UNICODE)
# Without these, any two English sentences would look alike.
_STOPWORDS = frozenset(
    (  # noqa: SIM905
        "a an and are as at be by do does for from how i in is it my of on or our the this "
        "to was we what when where which who why with you your"
    ).split()
)
_STREAM_PIECE = re.compile(r"\s*\S+", re.UNICODE)


def count_tokens(text: str) -> int:
    """One token per whitespace-separated word: crude, but stable across runs and machines."""
    return len(text.split())


def stream_pieces(text: str) -> list[str]:
    """Split ``text`` into word-sized pieces that concatenate back to exactly ``text``."""
    if not text:
        return []
    pieces: list[str] = _STREAM_PIECE.findall(text)
    if not pieces:  # whitespace only
        return [text]
    trailing = len(text) - len(text.rstrip())
    if trailing:
        pieces[-1] += text[-trailing:]
    return pieces


@lru_cache(maxsize=4096)
def _word_vector(word: str, dims: int) -> tuple[float, ...]:
    seed = int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:8], "big")
    rng = random.Random(seed)
    return tuple(rng.uniform(-1.0, 1.0) for _ in range(dims))


def embed_text(text: str, dims: int) -> list[float]:
    """A unit vector for ``text``: the normalised sum of one pseudo-random vector per word.

    Summing per-word vectors (instead of hashing the whole string) keeps texts that share
    words close in cosine distance, so similarity search over fake embeddings still
    ranks related texts first.
    """
    if dims < 1:
        raise ValueError(f"embedding dimensions must be >= 1, got {dims}")
    words = [w.lower() for w in _WORD.findall(text)]
    words = [w for w in words if w not in _STOPWORDS] or words or [text]
    total = [0.0] * dims
    for word in words:
        for i, value in enumerate(_word_vector(word, dims)):
            total[i] += value
    norm = math.sqrt(sum(v * v for v in total)) or 1.0
    return [v / norm for v in total]
