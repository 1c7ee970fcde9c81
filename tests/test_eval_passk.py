"""pass@k (method.md §8, Chen et al. 2021) against values computed by hand."""

from __future__ import annotations

import math

import pytest

from gasp_rl.core.passk import mean_pass_at_k, pass_at_k
from gasp_rl.eval.runner import EvalOutcome, EvalSettings, ProblemRecord


def test_n_equals_k_is_any_correct() -> None:
    # with n = k every sample is drawn: pass@k is 1 if any sample passed, else 0
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(4, 0, 4) == 0.0
    assert pass_at_k(1, 1, 1) == 1.0


def test_n_greater_than_k_by_hand() -> None:
    # n=5, c=2, k=1: 1 - C(3,1)/C(5,1) = 1 - 3/5 = 0.4
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # n=10, c=3, k=4: 1 - C(7,4)/C(10,4) = 1 - 35/210 = 5/6
    assert pass_at_k(10, 3, 4) == pytest.approx(5 / 6)
    # n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)


def test_c_zero_and_c_n() -> None:
    for n, k in ((1, 1), (4, 1), (4, 4), (100, 20)):
        assert pass_at_k(n, 0, k) == 0.0
        assert pass_at_k(n, n, k) == 1.0


def test_large_n_matches_exact_binomials() -> None:
    n, c, k = 200, 7, 20
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-12)


def test_k_above_n_is_refused() -> None:
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    with pytest.raises(Exception, match="1 <= k <= n"):
        EvalSettings(n=4, ks=(1, 8))


def test_outcome_averages_over_problems() -> None:
    recs = [
        ProblemRecord("a", 4, 1, [], {"passed": True}, {}),
        ProblemRecord("b", 4, 0, [], {"passed": False}, {}),
        ProblemRecord("c", 4, 4, [], {"passed": True}, {}),
    ]
    out = EvalOutcome.from_records(recs, (1, 2, 4))
    # pass@1 = mean(1/4, 0, 1); pass@2 = mean(1/2, 0, 1); pass@4 = mean(1, 0, 1)
    assert out.pass_at_k[1] == pytest.approx((0.25 + 0 + 1) / 3)
    assert out.pass_at_k[2] == pytest.approx((0.5 + 0 + 1) / 3)
    assert out.pass_at_k[4] == pytest.approx(2 / 3)
    assert out.greedy_pass_at_1 == pytest.approx(2 / 3)
    assert out.pass_at_k[1] == mean_pass_at_k([4, 4, 4], [1, 0, 4], 1)
    assert out.solved == ["a", "c"]
