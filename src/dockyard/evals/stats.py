"""Summary statistics and the paired test of a comparison, with no SciPy.

Two variants scored on the same items give pairs; the question is whether their mean
difference could be chance. The paired permutation (sign-flip) test answers it without
assuming a distribution (scores in 0..1 are anything but normal): under "no difference"
each pair's difference is as likely to have either sign, so the p-value is the share of
the 2^n sign assignments whose mean difference is at least as far from 0 as the one
observed. Exact up to ``EXACT_MAX`` pairs, a seeded Monte Carlo sample of them beyond
(reproducible: the same scores give the same p-value). Effect size: Cohen's d_z (mean
difference over the differences' standard deviation).
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

EXACT_MAX = 16
SAMPLES = 20_000
_EPS = 1e-12


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100), linear between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low, high = math.floor(k), math.ceil(k)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


@dataclass(frozen=True)
class PairedTest:
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float  # b - a
    p_value: float
    effect_size: float | None  # Cohen's d_z; None when every difference is the same
    method: str
    wins_b: int
    wins_a: int
    ties: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_permutation_test(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> PairedTest:
    """Two-sided paired permutation test of mean(b - a) against 0."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    n = len(a)
    if n == 0:
        raise ValueError("no pairs to compare")
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    observed = abs(sum(diffs))
    nonzero = [d for d in diffs if abs(d) > _EPS]
    if not nonzero:
        p, method = 1.0, "paired permutation (all pairs tied)"
    elif len(nonzero) <= EXACT_MAX:
        # Tied pairs flip to themselves: only the non-zero differences matter.
        extreme = sum(
            1
            for signs in itertools.product((1, -1), repeat=len(nonzero))
            if abs(sum(s * d for s, d in zip(signs, nonzero, strict=True))) >= observed - _EPS
        )
        p, method = extreme / 2 ** len(nonzero), "paired permutation (exact)"
    else:
        rng = random.Random(seed)
        extreme = sum(
            1
            for _ in range(SAMPLES)
            if abs(sum(d if rng.random() < 0.5 else -d for d in nonzero)) >= observed - _EPS
        )
        # +1 on both sides: the observed assignment is one of them (never p = 0).
        p, method = (extreme + 1) / (SAMPLES + 1), f"paired permutation ({SAMPLES} samples)"
    sd = statistics.stdev(diffs) if n > 1 else 0.0
    mean_diff = sum(diffs) / n
    return PairedTest(
        n=n,
        mean_a=sum(a) / n,
        mean_b=sum(b) / n,
        mean_diff=mean_diff,
        p_value=min(1.0, p),
        effect_size=mean_diff / sd if sd > _EPS else None,
        method=method,
        wins_b=sum(1 for d in diffs if d > _EPS),
        wins_a=sum(1 for d in diffs if d < -_EPS),
        ties=sum(1 for d in diffs if abs(d) <= _EPS),
    )


def describe(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None, "stdev": None, "min": None, "max": None}
    return {
        "mean": sum(values) / len(values),
        "median": percentile(values, 50),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }
