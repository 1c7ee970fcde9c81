"""Teacher and student rewards (method.md §4).  Pure functions of the student pass rate ``p``."""

from __future__ import annotations

import math


def learnability(p: float, a: float = 1.0, b: float = 1.0) -> float:
    """Generalised learnability ``r(p; a, b) = p^a (1-p)^b / (p*^a (1-p*)^b)`` with ``p* = a/(a+b)``.

    Peaks at ``p*`` with value 1; 0 at ``p = 0`` and ``p = 1``.  ``(1, 1)`` is ``4 p (1 - p)``.
    """
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"pass rate must be in [0, 1], got {p}")
    if a <= 0 or b <= 0:
        raise ValueError(f"exponents must be positive, got a={a}, b={b}")
    peak = a / (a + b)
    return (p**a * (1.0 - p) ** b) / (peak**a * (1.0 - peak) ** b)


def peak(a: float, b: float) -> float:
    """The pass rate at which :func:`learnability` is maximal."""
    return a / (a + b)


def proposal_reward(p: float | None, a: float, b: float, format_penalty: float = -1.0) -> float:
    """Reward of a GASP lemma / lift / one-step proposal: learnability of its pass rate, or the
    format penalty when the proposal was malformed or invalid (``p is None``)."""
    return format_penalty if p is None else learnability(p, a, b)


def azr_proposer_reward(p: float | None, invalid_reward: float = -1.0, extreme_reward: float = -0.5) -> float:
    """Absolute Zero's proposer reward (the AZR code's ``one_minus`` conversion)::

        r = invalid_reward   (-1)    the proposal failed to parse or a validity check (p is None)
        r = extreme_reward   (-0.5)  valid, but every or no solver attempt solved it (p in {0, 1})
        r = 1 - p                    otherwise

    (AZR: ``accuracy = 1 - p if p > 0 else 0``, then a well-formed proposal with accuracy 0 gets
    -0.5 and a malformed / invalid one -1.)
    """
    if p is None:
        return invalid_reward
    if p <= 0.0 or p >= 1.0:
        return extreme_reward
    return 1.0 - p


#: Outcome of one student answer: solved, well formed but wrong, or not parseable (format error).
CORRECT, WRONG, FORMAT_ERROR = "correct", "wrong", "format_error"


def azr_solver_reward(outcome: str, wrong_reward: float = -0.5, format_reward: float = -1.0) -> float:
    """Absolute Zero's solver reward: ``1`` if correct, ``wrong_reward`` (-0.5) if well formed but
    wrong, ``format_reward`` (-1) if the answer could not be parsed (a format error)."""
    if outcome == CORRECT:
        return 1.0
    if outcome == WRONG:
        return wrong_reward
    if outcome == FORMAT_ERROR:
        return format_reward
    raise ValueError(f"unknown student outcome {outcome!r}")


def student_reward(correct: bool) -> float:
    """1 if the answer is correct, else 0 (format errors are wrong answers)."""
    return 1.0 if correct else 0.0


def pass_rate(results: list[bool]) -> float:
    """Fraction of student attempts that passed."""
    if not results:
        raise ValueError("pass rate of zero attempts is undefined")
    return sum(bool(r) for r in results) / len(results)


def in_band(p: float, band: tuple[float, float]) -> bool:
    """The acceptance band check of method.md §3: ``lo <= p <= hi``."""
    lo, hi = band
    return lo <= p <= hi
