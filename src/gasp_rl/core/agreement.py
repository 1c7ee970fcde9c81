"""Execution agreement for Sol-Ver (method.md §9.3-§9.4): which self-generated solutions and tests to
trust, judged only from the pass matrix, and which preference pairs to build from them.

Everything here is pure (numpy on booleans, indices in, indices out): the algorithm runs the
sandbox, this module only decides.

The pass matrix
---------------
``P[i, j]`` is True when solution ``i`` passes test ``j``.  Solutions or tests that could not be
parsed are marked invalid (``solution_valid`` / ``test_valid``); their rows / columns count as
all-False and they are never trusted.

The selection rule (exact)
--------------------------
1. *Test weight* ``c_j`` = number of valid solutions that pass test ``j``: a test is as credible
   as the number of independent solutions that agree with it.
2. *Solution score* ``s_i = sum_j P[i, j] * c_j``: the tests a solution passes, each weighted by
   how many solutions pass it (an integer, so ties are exact).  This is ``|S| x`` the "tests
   passed, weighted by the fraction of solutions passing each test" of the issue.
3. If no valid solution passes any valid test (``max s = 0``) the problem is dropped
   (``no_agreement``).
4. The *top* solutions are the valid ones with ``s_i = max s``.  If they do not all have the same
   pass row, the evidence is split between incompatible behaviours and the problem is dropped
   (``tie``): picking one side would be a coin flip presented as a label.  Top solutions with an
   identical row are simply all trusted (they agree with each other).
5. *Trusted solutions* = the top solutions; *trusted tests* = the tests they pass (all of them,
   since they share one row).  Fewer than ``min_trusted_solutions`` trusted solutions or
   ``min_trusted_tests`` trusted tests drops the problem (``weak_agreement``).
6. *Rejected solutions* = every other solution: each one fails at least one trusted test
   (a valid solution passing every trusted test would score at least ``max s``, with equality only
   for the same row) or is invalid.  *Rejected tests* = every other test: the trusted solutions
   fail it (a wrong or over-strict test), or it is invalid.

Why this rule: a wrong test passed only by wrong solutions gets the weight of the wrong camp,
but the right camp also collects the weight of every test it passes, so the larger-evidence camp
wins; when wrong solutions are the majority *and* pass as many tests, agreement alone cannot tell
and the rule follows the majority (a known limit of self-verification, tested explicitly).

Preference pairs
----------------
Chosen and rejected candidates are first de-duplicated by normalised text (first occurrence kept)
and a rejected text equal to a chosen text is dropped.  Pairs are then formed round-robin,
``(chosen[k % |C|], rejected[k % |R|])`` for ``k < min(max_pairs, max(|C|, |R|))``, so that every
rejected candidate is used (and every chosen one) before any pair repeats a candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Why a problem yields no training data (``""`` = kept).
DROP_REASONS = ("no_valid_solutions", "no_valid_tests", "no_agreement", "tie", "weak_agreement")


@dataclass(frozen=True)
class Selection:
    """The decision for one problem.  All index tuples refer to rows / columns of the matrix."""

    trusted_solutions: tuple[int, ...] = ()
    trusted_tests: tuple[int, ...] = ()
    rejected_solutions: tuple[int, ...] = ()
    rejected_tests: tuple[int, ...] = ()
    test_weights: tuple[int, ...] = ()
    solution_scores: tuple[int, ...] = ()
    reason: str = ""

    @property
    def kept(self) -> bool:
        """True when the problem contributes trusted data."""
        return not self.reason


def _as_bool_matrix(pass_matrix: np.ndarray | Sequence[Sequence[bool]]) -> np.ndarray:
    m = np.asarray(pass_matrix, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"pass matrix must be 2-D (solutions x tests), got shape {m.shape}")
    return m


def _mask(valid: Sequence[bool] | np.ndarray | None, n: int, what: str) -> np.ndarray:
    if valid is None:
        return np.ones(n, dtype=bool)
    v = np.asarray(valid, dtype=bool)
    if v.shape != (n,):
        raise ValueError(f"{what} mask has shape {v.shape}, expected ({n},)")
    return v


def select_by_agreement(
    pass_matrix: np.ndarray | Sequence[Sequence[bool]],
    solution_valid: Sequence[bool] | np.ndarray | None = None,
    test_valid: Sequence[bool] | np.ndarray | None = None,
    *,
    min_trusted_solutions: int = 1,
    min_trusted_tests: int = 1,
) -> Selection:
    """Apply the selection rule of the module docstring to one problem's pass matrix."""
    raw = _as_bool_matrix(pass_matrix)
    n_sol, n_test = raw.shape
    sol_ok = _mask(solution_valid, n_sol, "solution_valid")
    test_ok = _mask(test_valid, n_test, "test_valid")
    p = raw & sol_ok[:, None] & test_ok[None, :]

    weights = p.sum(axis=0).astype(np.int64)  # c_j
    scores = (p.astype(np.int64) * weights[None, :]).sum(axis=1)  # s_i
    base = {"test_weights": tuple(int(w) for w in weights), "solution_scores": tuple(int(s) for s in scores)}
    everyone_rejected = {
        "rejected_solutions": tuple(range(n_sol)),
        "rejected_tests": tuple(range(n_test)),
    }

    if not sol_ok.any():
        return Selection(reason="no_valid_solutions", **base, **everyone_rejected)
    if not test_ok.any():
        return Selection(reason="no_valid_tests", **base, **everyone_rejected)
    best = int(scores.max())
    if best == 0:
        return Selection(reason="no_agreement", **base, **everyone_rejected)

    top = np.flatnonzero((scores == best) & sol_ok)
    if len({p[i].tobytes() for i in top}) > 1:
        return Selection(reason="tie", **base, **everyone_rejected)

    trusted_tests = np.flatnonzero(p[top[0]])
    if len(top) < min_trusted_solutions or len(trusted_tests) < min_trusted_tests:
        return Selection(reason="weak_agreement", **base, **everyone_rejected)

    top_set = set(top.tolist())
    trusted_test_set = set(trusted_tests.tolist())
    return Selection(
        trusted_solutions=tuple(int(i) for i in top),
        trusted_tests=tuple(int(j) for j in trusted_tests),
        rejected_solutions=tuple(i for i in range(n_sol) if i not in top_set),
        rejected_tests=tuple(j for j in range(n_test) if j not in trusted_test_set),
        **base,
    )


def normalise_text(text: str) -> str:
    """Whitespace-insensitive identity of a candidate (two samples differing only in blank lines
    or trailing spaces are the same training example)."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines() if line.strip())


def distinct(indices: Sequence[int], texts: Sequence[str]) -> list[int]:
    """``indices`` with later duplicates (same normalised text) and empty texts removed, order kept."""
    seen: set[str] = set()
    out: list[int] = []
    for i in indices:
        key = normalise_text(texts[i])
        if key and key not in seen:
            seen.add(key)
            out.append(i)
    return out


def preference_pairs(
    chosen: Sequence[int], rejected: Sequence[int], texts: Sequence[str], max_pairs: int
) -> list[tuple[int, int]]:
    """Round-robin (chosen, rejected) index pairs as described in the module docstring."""
    if max_pairs <= 0:
        return []
    c = distinct(chosen, texts)
    chosen_keys = {normalise_text(texts[i]) for i in c}
    r = [i for i in distinct(rejected, texts) if normalise_text(texts[i]) not in chosen_keys]
    if not c or not r:
        return []
    n = min(max_pairs, max(len(c), len(r)))
    return [(c[k % len(c)], r[k % len(r)]) for k in range(n)]


@dataclass
class RoleData:
    """Training data of one role (solver or verifier) for one problem, as candidate indices."""

    sft: list[int] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)


def training_indices(
    selection: Selection,
    solution_texts: Sequence[str],
    test_texts: Sequence[str],
    *,
    max_sft: int,
    max_pairs: int,
) -> tuple[RoleData, RoleData]:
    """(solver, verifier) training data of a problem: SFT on distinct trusted candidates (at most
    ``max_sft`` each), DPO pairs chosen = trusted, rejected = failing solution / wrong test."""
    if not selection.kept:
        return RoleData(), RoleData()
    solver = RoleData(
        sft=distinct(selection.trusted_solutions, solution_texts)[:max_sft],
        pairs=preference_pairs(
            selection.trusted_solutions, selection.rejected_solutions, solution_texts, max_pairs
        ),
    )
    verifier = RoleData(
        sft=distinct(selection.trusted_tests, test_texts)[:max_sft],
        pairs=preference_pairs(selection.trusted_tests, selection.rejected_tests, test_texts, max_pairs),
    )
    return solver, verifier


def matrix_stats(pass_matrix: np.ndarray | Sequence[Sequence[bool]]) -> dict[str, float]:
    """Per-problem statistics of a pass matrix: overall pass rate, and the fraction of solutions
    passing at least one test / tests passed by at least one solution."""
    p = _as_bool_matrix(pass_matrix)
    if p.size == 0:
        return {"pass_rate": 0.0, "solutions_passing_any": 0.0, "tests_passed_by_any": 0.0}
    return {
        "pass_rate": float(p.mean()),
        "solutions_passing_any": float(p.any(axis=1).mean()),
        "tests_passed_by_any": float(p.any(axis=0).mean()),
    }
