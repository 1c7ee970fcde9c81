"""Pure math of method.md §4, §6 and §8: learnability family, proposer rewards, TRR++/GRPO, novelty."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gasp_rl.core.advantages import group_normalize, grpo, trr_plus_plus, zero_variance_groups
from gasp_rl.core.novelty import VectorBuffer, buffer_dissimilarity, max_cosine
from gasp_rl.core.rewards import (
    CORRECT,
    FORMAT_ERROR,
    WRONG,
    azr_proposer_reward,
    azr_solver_reward,
    in_band,
    learnability,
    pass_rate,
    peak,
    proposal_reward,
    student_reward,
)


@pytest.mark.parametrize("a,b", [(1, 1), (1, 3), (2, 2), (3, 1), (0.5, 2)])
def test_learnability_peak_is_one_at_p_star_and_zero_at_ends(a, b):
    p_star = peak(a, b)
    assert learnability(p_star, a, b) == pytest.approx(1.0)
    assert learnability(0.0, a, b) == 0.0 and learnability(1.0, a, b) == 0.0
    grid = np.linspace(0, 1, 1001)
    values = [learnability(p, a, b) for p in grid]
    assert grid[int(np.argmax(values))] == pytest.approx(p_star, abs=1e-3)
    assert max(values) <= 1.0 + 1e-12


def test_presets_match_spec():
    assert peak(1, 1) == 0.5 and peak(1, 3) == 0.25
    for p in (0.1, 0.3, 0.77):
        assert learnability(p, 1, 1) == pytest.approx(4 * p * (1 - p))  # Rutherford et al.
    # lift reward: p (1-p)^3 normalised by its value at 1/4
    assert learnability(0.5, 1, 3) == pytest.approx(0.5 * 0.125 / (0.25 * 0.75**3))


def test_learnability_rejects_bad_input():
    with pytest.raises(ValueError):
        learnability(1.5)
    with pytest.raises(ValueError):
        learnability(0.5, 0, 1)
    with pytest.raises(ValueError):
        learnability(math.nan)


def test_proposal_and_azr_rewards():
    assert proposal_reward(None, 1, 1, format_penalty=-1.0) == -1.0
    assert proposal_reward(0.5, 1, 1) == 1.0
    assert student_reward(True) == 1.0 and student_reward(False) == 0.0
    assert pass_rate([True, False, False, True]) == 0.5
    with pytest.raises(ValueError):
        pass_rate([])


# The AZR code's proposer reward (absolute_zero_reasoner/rewards/reward_managers.py, HEAD of
# LeapLabTHU/Absolute-Zero-Reasoner): accuracy = 1 - p if p > 0 else 0 (lines 819-820); then a
# well-formed valid proposal gets accuracy if accuracy > 0 else -0.5, a malformed / invalid one -1
# (lines 393-437; invalid programs have format_score 0, lines 230-233).  Transcribed as a table:
def _azr_code_proposer(valid: bool, p: float) -> float:
    accuracy = (1 - p) if p > 0 else 0.0
    if not valid:
        return -1.0
    return accuracy if accuracy > 0 else -0.5


# ... and its solver reward (lines 513-520): format ok -> acc if acc > 0 else -0.5; else -1.
def _azr_code_solver(well_formed: bool, correct: bool) -> float:
    acc = 1.0 if correct else 0.0
    if not well_formed:
        return -1.0
    return acc if acc > 0 else -0.5


def test_azr_proposer_reward_matches_the_azr_code():
    assert azr_proposer_reward(None) == -1.0
    assert azr_proposer_reward(0.0) == -0.5 and azr_proposer_reward(1.0) == -0.5
    assert azr_proposer_reward(0.25) == 0.75
    for p in [0.0, 0.125, 0.25, 0.5, 0.875, 1.0]:
        assert azr_proposer_reward(p) == pytest.approx(_azr_code_proposer(True, p))
    assert azr_proposer_reward(None) == _azr_code_proposer(False, 0.0)
    assert azr_proposer_reward(None, invalid_reward=-2.0, extreme_reward=-0.1) == -2.0
    assert azr_proposer_reward(1.0, invalid_reward=-2.0, extreme_reward=-0.1) == -0.1


def test_azr_solver_reward_matches_the_azr_code():
    assert azr_solver_reward(CORRECT) == 1.0 == _azr_code_solver(True, True)
    assert azr_solver_reward(WRONG) == -0.5 == _azr_code_solver(True, False)
    assert azr_solver_reward(FORMAT_ERROR) == -1.0 == _azr_code_solver(False, False)
    assert azr_solver_reward(WRONG, wrong_reward=-0.25) == -0.25
    with pytest.raises(ValueError):
        azr_solver_reward("maybe")


def test_band_check_is_inclusive():
    assert in_band(0.25, (0.25, 0.75)) and in_band(0.75, (0.25, 0.75))
    assert not in_band(0.2, (0.25, 0.75)) and not in_band(0.8, (0.25, 0.75))


def test_trr_plus_plus_against_hand_computation():
    rewards = [1.0, 0.0, 0.0, 0.5, -1.0, 0.5, 1.0]
    types = ["induction", "induction", "deduction", "induction", "induction", "deduction", "abduction"]
    roles = ["student", "student", "student", "teacher", "teacher", "student", "student"]
    adv = trr_plus_plus(rewards, types, roles, eps=0.0)
    # (induction, student): [1, 0] mean .5, sample std sqrt(.5)
    s = math.sqrt(0.5)
    assert adv[0] == pytest.approx(0.5 / s) and adv[1] == pytest.approx(-0.5 / s)
    # (deduction, student): [0, .5] -> same magnitude
    assert adv[2] == pytest.approx(-0.25 / math.sqrt(0.125)) and adv[5] == pytest.approx(
        0.25 / math.sqrt(0.125)
    )
    # (induction, teacher): [.5, -1] mean -.25, std sqrt(1.125)
    assert adv[3] == pytest.approx(0.75 / math.sqrt(1.125)) and adv[4] == pytest.approx(
        -0.75 / math.sqrt(1.125)
    )
    # a singleton group carries no signal
    assert adv[6] == 0.0


def test_grpo_groups_by_prompt_and_zero_variance():
    rewards = [1, 0, 0, 0, 1, 1, 1, 1]
    prompts = ["a", "a", "a", "a", "b", "b", "b", "b"]
    adv = grpo(rewards, prompts, eps=1e-6)
    assert adv[:4].sum() == pytest.approx(0.0, abs=1e-9) and adv[0] > 0 > adv[1]
    assert np.all(adv[4:] == 0.0)
    assert zero_variance_groups(rewards, prompts) == {"b"}
    unscaled = grpo(rewards, prompts, scale_by_std=False)
    assert unscaled[0] == pytest.approx(0.75) and unscaled[1] == pytest.approx(-0.25)
    with pytest.raises(ValueError):
        group_normalize([1.0], ["a", "b"])


def test_novelty_similarity_and_dissimilarity():
    buf = VectorBuffer()
    assert buf.max_similarity(np.ones((1, 3))).tolist() == [-1.0]
    buf.add(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
    for _ in range(40):  # growth keeps contents
        buf.add(np.array([[0, 1.0, 0]]))
    assert len(buf) == 42
    sims = buf.max_similarity(np.array([[1.0, 0, 0], [0, 0, 2.0], [1.0, 1.0, 0]]))
    assert sims == pytest.approx([1.0, 0.0, math.sqrt(0.5)])
    assert max_cosine(np.array([[3.0, 4.0]]), np.array([[3.0, 4.0]]))[0] == pytest.approx(1.0)
    batch = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    assert buffer_dissimilarity(batch, buf.matrix) == pytest.approx(1 - 0.5)
    assert math.isnan(buffer_dissimilarity(batch, np.zeros((0, 3))))


def test_vector_search_stays_fast_with_a_large_buffer():
    rng = np.random.default_rng(0)
    buf = VectorBuffer()
    buf.add(rng.normal(size=(20000, 384)).astype(np.float32))
    q = rng.normal(size=(16, 384)).astype(np.float32)
    sims = buf.max_similarity(q)
    brute = max(float(np.dot(q[0] / np.linalg.norm(q[0]), r / np.linalg.norm(r))) for r in buf.matrix[:20000])
    assert sims[0] == pytest.approx(brute, abs=1e-5)
