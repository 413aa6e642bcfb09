"""The paired permutation test against values worked out by hand, and its edge cases."""

from __future__ import annotations

import itertools

import pytest

from dockyard.evals.stats import EXACT_MAX, paired_permutation_test, percentile


def brute_force_p(diffs: list[float]) -> float:
    observed = abs(sum(diffs))
    flips = list(itertools.product((1, -1), repeat=len(diffs)))
    extreme = sum(
        1
        for s in flips
        if abs(sum(a * d for a, d in zip(s, diffs, strict=True))) >= observed - 1e-12
    )
    return extreme / len(flips)


def test_exact_p_value_matches_enumeration_and_hand_values() -> None:
    a = [0.2, 0.4, 0.5, 0.1, 0.3]
    b = [0.9, 0.8, 0.9, 0.7, 0.8]
    test = paired_permutation_test(a, b)
    # Every difference positive: only all-plus and all-minus are as extreme: 2 / 32.
    assert test.p_value == pytest.approx(2 / 32)
    assert test.mean_diff == pytest.approx(0.52) and test.wins_b == 5 and test.ties == 0
    assert test.method == "paired permutation (exact)"
    assert test.effect_size is not None and test.effect_size > 3

    a2 = [0.5, 0.6, 0.7, 0.4, 0.9, 0.5]
    b2 = [0.6, 0.5, 0.9, 0.4, 0.8, 0.9]
    diffs = [y - x for x, y in zip(a2, b2, strict=True)]
    t2 = paired_permutation_test(a2, b2)
    assert t2.p_value == pytest.approx(brute_force_p([d for d in diffs if abs(d) > 1e-12]))
    assert t2.ties == 1 and 0.05 < t2.p_value < 1


def test_no_difference_and_swapped_sides() -> None:
    same = paired_permutation_test([0.5, 0.7], [0.5, 0.7])
    assert same.p_value == 1.0 and same.effect_size is None and same.ties == 2
    a, b = [0.1, 0.2, 0.9, 0.4], [0.3, 0.2, 0.5, 0.8]
    forward, back = paired_permutation_test(a, b), paired_permutation_test(b, a)
    assert forward.p_value == back.p_value and forward.mean_diff == -back.mean_diff


def test_large_samples_use_a_seeded_monte_carlo() -> None:
    n = EXACT_MAX + 14
    a = [0.5] * n
    b = [0.5 + (0.1 if i % 3 else -0.05) for i in range(n)]
    first, again = paired_permutation_test(a, b), paired_permutation_test(a, b)
    assert first.method.startswith("paired permutation (20000 samples)")
    assert first.p_value == again.p_value  # reproducible
    assert 0 < first.p_value < 0.01
    null = paired_permutation_test(a, [0.5 + (0.1 if i % 2 else -0.1) for i in range(n)])
    assert null.p_value > 0.5


def test_bad_input_and_percentiles() -> None:
    with pytest.raises(ValueError):
        paired_permutation_test([1.0], [1.0, 0.5])
    with pytest.raises(ValueError):
        paired_permutation_test([], [])
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([], 50) is None
    assert percentile([10, 20], 95) == pytest.approx(19.5)
