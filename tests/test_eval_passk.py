"""pass@k against exact combinatorics."""

from __future__ import annotations

import math

import pytest

from localcoder.evaluate.passk import mean_pass_at_k, pass_at_k


def exact(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_matches_math_comb_for_every_small_case() -> None:
    cases = 0
    for n in range(1, 31):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(exact(n, c, k), abs=1e-12), (n, c, k)
                cases += 1
    assert cases == sum(n * (n + 1) for n in range(1, 31))


@pytest.mark.parametrize("n, c, k", [(200, 3, 1), (200, 3, 10), (200, 3, 100), (1000, 1, 100), (500, 250, 50)])
def test_matches_math_comb_for_paper_sized_n(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(exact(n, c, k), rel=1e-10, abs=1e-12)


def test_edges() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 10) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 1, 5) == 1.0  # n - c < k: every draw of 5 includes the correct one


@pytest.mark.parametrize("n, c, k", [(3, 4, 1), (3, -1, 1), (3, 1, 4), (3, 1, 0)])
def test_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_mean_over_tasks() -> None:
    assert mean_pass_at_k([(10, 0), (10, 10), (10, 5)], 1) == pytest.approx(0.5)
    assert mean_pass_at_k([(4, 1), (4, 2)], 2) == pytest.approx((exact(4, 1, 2) + exact(4, 2, 2)) / 2)
    assert mean_pass_at_k([], 1) == 0.0
