"""Agreement selection (Sol-Ver, method.md §9.3) on hand-built pass matrices, and pair building."""

from __future__ import annotations

import numpy as np
import pytest

from gasp_rl.core.agreement import (
    distinct,
    matrix_stats,
    preference_pairs,
    select_by_agreement,
    training_indices,
)

T, F = True, False


def test_all_agree_trusts_everything_and_rejects_nothing() -> None:
    sel = select_by_agreement(np.ones((3, 4), dtype=bool))
    assert sel.kept
    assert sel.trusted_solutions == (0, 1, 2)
    assert sel.trusted_tests == (0, 1, 2, 3)
    assert sel.rejected_solutions == () and sel.rejected_tests == ()
    assert sel.test_weights == (3, 3, 3, 3)
    assert sel.solution_scores == (12, 12, 12)


def test_none_agree_drops_the_problem() -> None:
    sel = select_by_agreement(np.zeros((4, 4), dtype=bool))
    assert not sel.kept
    assert sel.reason == "no_agreement"
    assert sel.trusted_solutions == () and sel.trusted_tests == ()


def test_wrong_test_passed_by_all_wrong_solutions_is_rejected() -> None:
    # solutions 0-2 correct, 3-4 share a bug; test 3 encodes that bug (only the wrong ones pass it);
    # test 2 is weak (everyone passes it).
    m = [
        [T, T, T, F],
        [T, T, T, F],
        [T, T, T, F],
        [F, F, T, T],
        [F, F, T, T],
    ]
    sel = select_by_agreement(m)
    assert sel.test_weights == (3, 3, 5, 2)
    assert sel.solution_scores == (11, 11, 11, 7, 7)
    assert sel.trusted_solutions == (0, 1, 2)
    assert sel.trusted_tests == (0, 1, 2)
    assert sel.rejected_solutions == (3, 4)
    assert sel.rejected_tests == (3,)


def test_evidence_not_headcount_decides() -> None:
    # one correct solution passing three tests vs three wrong ones passing one shared wrong test
    m = [
        [T, T, T, F],
        [F, F, F, T],
        [F, F, F, T],
        [F, F, F, T],
    ]
    sel = select_by_agreement(m)
    assert sel.solution_scores == (3, 3, 3, 3)
    # equal scores, different rows -> ambiguous
    assert sel.reason == "tie"
    m[0][3] = F
    m.append([T, F, F, F])  # a second solution agreeing with test 0
    sel = select_by_agreement(m)
    assert sel.trusted_solutions == (0,)
    assert sel.trusted_tests == (0, 1, 2)
    assert sel.rejected_tests == (3,)


def test_majority_of_wrong_solutions_wins_when_evidence_is_larger() -> None:
    # the documented limit of agreement: 3 wrong solutions agreeing on 2 tests outweigh 1 correct
    m = [
        [T, T, F, F],
        [F, F, T, T],
        [F, F, T, T],
        [F, F, T, T],
    ]
    sel = select_by_agreement(m)
    assert sel.trusted_solutions == (1, 2, 3)
    assert sel.trusted_tests == (2, 3)
    assert sel.rejected_solutions == (0,)


def test_tie_between_different_behaviours_is_dropped() -> None:
    m = [
        [T, T, F, F],
        [T, T, F, F],
        [F, F, T, T],
        [F, F, T, T],
    ]
    sel = select_by_agreement(m)
    assert sel.reason == "tie"
    assert not sel.kept


def test_tie_between_identical_rows_trusts_them_all() -> None:
    m = [
        [T, F, T],
        [T, F, T],
        [F, F, F],
    ]
    sel = select_by_agreement(m)
    assert sel.trusted_solutions == (0, 1)
    assert sel.trusted_tests == (0, 2)
    assert sel.rejected_solutions == (2,)
    assert sel.rejected_tests == (1,)


def test_invalid_rows_and_columns_never_count() -> None:
    # solution 2 "passes" everything but did not parse; test 2 is invalid
    m = [
        [T, F, T],
        [T, F, T],
        [T, T, T],
    ]
    sel = select_by_agreement(m, solution_valid=[T, T, F], test_valid=[T, T, F])
    assert sel.test_weights == (2, 0, 0)
    assert sel.trusted_solutions == (0, 1)
    assert sel.trusted_tests == (0,)
    assert sel.rejected_solutions == (2,)
    assert sel.rejected_tests == (1, 2)
    assert select_by_agreement(m, solution_valid=[F, F, F]).reason == "no_valid_solutions"
    assert select_by_agreement(m, test_valid=[F, F, F]).reason == "no_valid_tests"


def test_minimum_support_drops_weak_agreement() -> None:
    m = [[T, F], [F, F]]
    assert select_by_agreement(m).trusted_solutions == (0,)
    assert select_by_agreement(m, min_trusted_solutions=2).reason == "weak_agreement"
    assert select_by_agreement(m, min_trusted_tests=2).reason == "weak_agreement"


def test_bad_shapes_are_errors() -> None:
    with pytest.raises(ValueError, match="2-D"):
        select_by_agreement([T, F])
    with pytest.raises(ValueError, match="solution_valid"):
        select_by_agreement([[T, F]], solution_valid=[T, T])


def test_preference_pairs_round_robin_and_dedup() -> None:
    texts = ["A", "A  \n", "B", "x", "y", "y", "z", "B"]
    # chosen 0,1 (same text), 2; rejected 3,4,5 (dup of 4),6,7 (same as chosen 2)
    pairs = preference_pairs([0, 1, 2], [3, 4, 5, 6, 7], texts, max_pairs=10)
    assert pairs == [(0, 3), (2, 4), (0, 6)]
    assert preference_pairs([0, 1, 2], [3, 4, 5, 6, 7], texts, max_pairs=2) == [(0, 3), (2, 4)]
    assert preference_pairs([0], [], texts, max_pairs=5) == []
    assert preference_pairs([], [3], texts, max_pairs=5) == []
    assert preference_pairs([0], [3], texts, max_pairs=0) == []


def test_preference_pairs_use_every_chosen_when_rejected_are_few() -> None:
    texts = ["a", "b", "c", "bad"]
    assert preference_pairs([0, 1, 2], [3], texts, max_pairs=8) == [(0, 3), (1, 3), (2, 3)]


def test_distinct_drops_empty_texts() -> None:
    assert distinct([0, 1, 2], ["", "  \n", "ok"]) == [2]


def test_training_indices_for_both_roles() -> None:
    m = [
        [T, T, F],
        [T, T, F],
        [F, F, T],
    ]
    sel = select_by_agreement(m)
    sols = ["def f(): return 1", "def f():  return 1", "def f(): return 2"]
    tests = ["assert f() == 1", "assert f() > 0", "assert f() == 2"]
    solver, verifier = training_indices(sel, sols, tests, max_sft=4, max_pairs=4)
    assert solver.sft == [0, 1]  # whitespace inside a line is meaningful, so both are kept
    assert solver.pairs == [(0, 2), (1, 2)]
    assert verifier.sft == [0, 1]
    assert verifier.pairs == [(0, 2), (1, 2)]
    dropped = select_by_agreement(np.zeros((2, 2), dtype=bool))
    s, v = training_indices(dropped, ["a", "b"], ["c", "d"], max_sft=4, max_pairs=4)
    assert s.sft == [] and s.pairs == [] and v.sft == [] and v.pairs == []


def test_matrix_stats() -> None:
    st = matrix_stats([[T, F], [F, F]])
    assert st == {"pass_rate": 0.25, "solutions_passing_any": 0.5, "tests_passed_by_any": 0.5}
    assert matrix_stats(np.zeros((0, 0), dtype=bool))["pass_rate"] == 0.0
