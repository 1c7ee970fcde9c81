"""Test-generation accuracy of a verifier (Sol-Ver, method.md §9.5): do the unit tests it writes
accept a known-correct solution and reject a known-wrong one?

The known-wrong solution is the reference with its result perturbed (``not r``, ``r + 1``,
``r + "?"``, one extra element...): wrong on every input, yet with the right signature, so only
a test that checks the value rejects it.  A problem whose perturbed reference still passes the
official tests is left out of the rejection rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gasp_rl.core.jobs import Job, Limits
from gasp_rl.core.tasks import Problem
from gasp_rl.seams import Executor

#: Wraps a reference solution so that it is wrong on every input but keeps its signature:
#: ``{entry}`` is re-bound to a function returning a perturbed result.
_WRONG_WRAPPER = """

_gasp_reference = {entry}


def {entry}(*args, **kwargs):
    r = _gasp_reference(*args, **kwargs)
    if isinstance(r, bool):
        return not r
    if isinstance(r, (int, float)):
        return r + 1
    if isinstance(r, str):
        return r + "?"
    if isinstance(r, (list, tuple)):
        return type(r)(list(r) + [None])
    if r is None:
        return 0
    return None
"""


def reference_program(problem: Problem) -> str | None:
    """The known-correct program of a problem (HumanEval: prompt + canonical solution)."""
    canonical = problem.meta.get("canonical_solution") or ""
    if problem.kind != "check" or not canonical.strip():
        return None
    return problem.prompt + canonical


def wrong_program(problem: Problem) -> str | None:
    """A known-wrong program: the reference with every result perturbed."""
    ref = reference_program(problem)
    return None if ref is None else ref.rstrip("\n") + "\n" + _WRONG_WRAPPER.format(entry=problem.entry_point)


def verifier_accuracy(
    executor: Executor,
    problems: Sequence[Problem],
    tests: Sequence[Sequence[Any]],
    limits: Limits | None = None,
) -> dict[str, Any]:
    """method.md §9.5: of the generated tests (each with a ``code``, ``None`` when it did not parse: a
    failure), the fraction the
    known-correct solution passes, the fraction that reject the known-wrong one, and the fraction
    that do both (a test that separates right from wrong).  One executor batch."""
    jobs: list[Job] = []
    slots: list[tuple[str, int, int]] = []  # (what, problem, test)
    usable = []
    for p, prob in enumerate(problems):
        ref, bad = reference_program(prob), wrong_program(prob)
        if ref is None or bad is None:
            continue
        usable.append(p)
        jobs.append(
            Job("check", code=bad, test_code=prob.check_code, entry_point=prob.entry_point, limits=limits)
        )
        slots.append(("wrong_is_wrong", p, -1))
        for j, t in enumerate(tests[p]):
            if t.code is None:
                continue
            jobs.append(Job("check", code=ref, test_code=t.code, entry_point="", limits=limits))
            slots.append(("correct", p, j))
            jobs.append(Job("check", code=bad, test_code=t.code, entry_point="", limits=limits))
            slots.append(("wrong", p, j))
    verdicts = executor.run(jobs) if jobs else []
    passed = {(w, p, j): v.passed for (w, p, j), v in zip(slots, verdicts)}
    n_tests = accept = reject = both = 0
    n_reject_base = 0
    for p in usable:
        wrong_really_wrong = not passed.get(("wrong_is_wrong", p, -1), True)
        for j, t in enumerate(tests[p]):
            n_tests += 1
            ok = t.code is not None and passed.get(("correct", p, j), False)
            rej = t.code is not None and not passed.get(("wrong", p, j), True)
            accept += ok
            if wrong_really_wrong:
                n_reject_base += 1
                reject += rej
                both += ok and rej

    def frac(a: int, b: int) -> float | None:
        return a / b if b else None

    return {
        "problems": len(usable),
        "tests": n_tests,
        "valid": sum(1 for p in usable for t in tests[p] if t.code is not None),
        "correct_passes": frac(accept, n_tests),
        "rejects_wrong": frac(reject, n_reject_base),
        "discriminating": frac(both, n_reject_base),
    }
